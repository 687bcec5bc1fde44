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



# -- per-process memos behind version tokens --------------------------------------------------
TOKEN_TTL = 86400  # a version token that expires only makes every process reload once


def version_token(key: str, ttl: int = TOKEN_TTL) -> str | None:
    """The token stored under `key`, starting a fresh one when there is none; None when the
    cache cannot keep one (unreachable, or it lost the key at once): then nothing is trusted."""
    token = cache.get(key)
    if token is None:
        cache.add(key, uuid.uuid4().hex, ttl)
        token = cache.get(key)
        if token is None:
            return None
    return token.decode() if isinstance(token, bytes) else str(token)


def bump_version_token(key: str, ttl: int = TOKEN_TTL) -> None:
    """A new token now and once more after the current transaction commits: the second stops a
    reader that loaded the old rows just before the commit from keeping them under the token in use."""

    def bump():
        cache.set(key, uuid.uuid4().hex, ttl)

    bump()
    transaction.on_commit(bump)


READ = object()


class ProcessMemo:
    """Values derived from database rows, kept in this process. Each belongs to a scope (a
    tenant, or one scope for all) whose version token lives in the shared cache: a value is
    trusted while its scope's token is the one it was loaded under and for at most `ttl`
    seconds. Whoever changes the rows calls `bump(scope)` (a new token now and after commit).
    With the cache unreachable every read sees no token, so nothing is trusted; `ttl` bounds a
    bump lost in such an outage. Only what may be stale for `ttl` belongs here."""

    def __init__(self, name: str, ttl: float, max_entries: int = 10000):
        self.name, self.ttl, self.max_entries = name, ttl, max_entries
        self._kept: dict[tuple, tuple[str, float, object]] = {}  # (scope, key) -> (token, loaded at, value)

    def token_key(self, scope="") -> str:
        return f"memo:{self.name}:{scope}:version"

    def token(self, scope="") -> str | None:
        return version_token(self.token_key(scope))

    def get(self, key, load, *, scope="", token=READ):
        """The kept value for `key`, or `load()` kept under the scope's token (read now unless
        given, None for none: pass it when one cache round trip already fetched it)."""
        if token is READ:
            token = self.token(scope)
        kept = self._kept.get((scope, key))
        now = time.monotonic()
        if kept is not None and token is not None and kept[0] == token and now - kept[1] < self.ttl:
            return kept[2]
        value = load()
        if token is None:
            self._kept.pop((scope, key), None)
        else:
            if len(self._kept) >= self.max_entries:
                self._kept.clear()
            self._kept[(scope, key)] = (token, now, value)
        return value

    def kept(self, key, *, scope=""):
        """Whatever is kept for `key`, trusted or not (None when nothing is)."""
        kept = self._kept.get((scope, key))
        return kept[2] if kept is not None else None

    def bump(self, scope="") -> None:
        for kept in [k for k in self._kept if k[0] == scope]:
            self._kept.pop(kept, None)
        bump_version_token(self.token_key(scope))

    def clear(self) -> None:
        self._kept.clear()


# -- counters: one round trip through redis-py's public API -------------------------------------
_counter_clients: dict[str, object] = {}


def _redis_for_counters():
    """A redis-py client for the default cache's Redis (None when the cache is not Redis)."""
    from django.conf import settings

    conf = settings.CACHES["default"]
    location = conf.get("LOCATION") if "redis" in conf.get("BACKEND", "").lower() else None
    if not location:
        return None
    location = location[0] if isinstance(location, (list, tuple)) else location.split(",")[0]
    client = _counter_clients.get(location)
    if client is None:
        import redis

        opts = conf.get("OPTIONS", {})
        client = _counter_clients[location] = redis.Redis.from_url(
            location, socket_timeout=opts.get("socket_timeout", 1.0), socket_connect_timeout=opts.get("socket_connect_timeout", 1.0))
    return client


def count(key: str, delta: int, ttl: int, *, also_get: str | None = None) -> tuple[int, int]:
    """Add `delta` to the counter `key` (expiring `ttl` seconds after its first count) and read
    the counter `also_get` in the same round trip: (new value, the other's value or 0). With the
    cache down: (delta, 0), as on an empty cache."""
    client = _redis_for_counters()
    if client is None:  # another cache backend: its public API, several calls
        try:
            value = cache.incr(key, delta)
        except ValueError:
            value = delta if cache.add(key, delta, ttl) else cache.incr(key, delta)
        return value, (int(cache.get(also_get) or 0) if also_get else 0)
    full = cache.make_key(key)
    try:
        pipe = client.pipeline(transaction=False)
        pipe.incrby(full, delta)
        pipe.expire(full, ttl, nx=True)
        if also_get:
            pipe.get(cache.make_key(also_get))
        results = pipe.execute()
    except _DOWN as exc:
        degraded("count", exc)
        return delta, 0
    return int(results[0]), int(results[2] or 0) if also_get else 0


def count_and_token(key: str, delta: int, ttl: int, *, token_key: str) -> tuple[int, str | None]:
    """`count(key, delta, ttl)` and `version_token(token_key)` in ONE round trip while the token
    exists (a second only to start one); with the cache down: (delta, None), as each alone."""
    client = _redis_for_counters()
    if client is None:
        return count(key, delta, ttl)[0], version_token(token_key)
    full = cache.make_key(key)
    try:
        pipe = client.pipeline(transaction=False)
        pipe.incrby(full, delta)
        pipe.expire(full, ttl, nx=True)
        pipe.get(cache.make_key(token_key))
        used, _expired, raw = pipe.execute()
    except _DOWN as exc:
        degraded("count", exc)
        return delta, None
    if raw is None:
        return int(used), version_token(token_key)
    token = cache._cache._serializer.loads(raw)  # as cache.get() decodes it
    return int(used), token.decode() if isinstance(token, bytes) else str(token)


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
