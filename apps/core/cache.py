"""A Redis cache that degrades to "always a miss" while Redis is unreachable.

The cache holds nothing that is not also in PostgreSQL (token revocation marks, throttle and
rate counters, short locks), so a Redis outage must not turn every API request into a 500: reads
miss (callers fall back to the database), writes are dropped, `add` and `incr` answer as on an
empty cache. Each failure is logged (at most once per 10 s per process) so the outage is visible.
"""

from __future__ import annotations

import logging
import time
import uuid

from django.core.cache import cache
from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from django.db import transaction
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)
_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)
_last_log = 0.0


def degraded(op: str, exc: Exception, *, what: str = "serving without it") -> None:
    """Log that Redis is unreachable, at most once per 10 s per process."""
    global _last_log
    if time.monotonic() - _last_log > 10:
        _last_log = time.monotonic()
        log.warning("cache unavailable (%s: %s); %s", op, exc, what)



# -- version tokens: per-process snapshots that every process drops when the rows change ------
def version_token(key: str, ttl: int) -> str:
    """The token stored under `key`, starting a fresh one when there is none. A process keeps
    what it derived from the rows together with the token it saw and trusts it while the token
    is unchanged. With the cache down every call answers a new token, so nothing is trusted."""
    token = cache.get(key)
    if token is None:
        fresh = uuid.uuid4().hex
        token = fresh if cache.add(key, fresh, ttl) else (cache.get(key) or fresh)
    return token.decode() if isinstance(token, bytes) else str(token)


def bump_version_token(key: str, ttl: int) -> None:
    """A new token now and once more after the current transaction commits: the second stops a
    reader that loaded the old rows just before the commit from keeping them under the token in use."""

    def bump():
        cache.set(key, uuid.uuid4().hex, ttl)

    bump()
    transaction.on_commit(bump)


class ReusingRedisCacheClient(RedisCacheClient):
    """Django's Redis cache client, keeping one `redis.Redis` per connection pool. Django's own
    builds a new `redis.Redis` for every cache operation (~160 µs of CPU each with redis-py 8,
    several per API request); a client is thread-safe and takes its connections from the pool,
    which redis-py resets in a forked child, so one per pool is enough."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients: dict[int, object] = {}

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            if index not in self._pools:
                self._pools[index] = self._pool_class.from_url(self._servers[index], **self._pool_options)
            client = self._clients[index] = self._client(connection_pool=self._pools[index])
        return client


class ResilientRedisCache(RedisCache):
    """The project's cache (settings: CACHES): Redis, one client per pool, misses while Redis is down."""

    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = ReusingRedisCacheClient

    def get(self, key, default=None, version=None):
        try:
            return super().get(key, default, version)
        except _DOWN as exc:
            degraded("get", exc)
            return default

    def get_many(self, keys, version=None):
        try:
            return super().get_many(keys, version)
        except _DOWN as exc:
            degraded("get_many", exc)
            return {}

    def has_key(self, key, version=None):
        try:
            return super().has_key(key, version)
        except _DOWN as exc:
            degraded("has_key", exc)
            return False

    def set(self, key, value, timeout=None, version=None):
        try:
            return super().set(key, value, timeout, version)
        except _DOWN as exc:
            degraded("set", exc)

    def set_many(self, data, timeout=None, version=None):
        try:
            return super().set_many(data, timeout, version)
        except _DOWN as exc:
            degraded("set_many", exc)
            return []

    def add(self, key, value, timeout=None, version=None):
        try:
            return super().add(key, value, timeout, version)
        except _DOWN as exc:
            degraded("add", exc)
            return True

    def touch(self, key, timeout=None, version=None):
        try:
            return super().touch(key, timeout, version)
        except _DOWN as exc:
            degraded("touch", exc)
            return False

    def incr(self, key, delta=1, version=None):
        try:
            return super().incr(key, delta, version)
        except _DOWN as exc:
            degraded("incr", exc)
            return delta

    def delete(self, key, version=None):
        try:
            return super().delete(key, version)
        except _DOWN as exc:
            degraded("delete", exc)
            return False

    def delete_many(self, keys, version=None):
        try:
            return super().delete_many(keys, version)
        except _DOWN as exc:
            degraded("delete_many", exc)
