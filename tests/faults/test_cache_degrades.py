"""The Redis cache answers as an empty cache while Redis is unreachable (regression: every API
request was a 500 during a Redis outage, from the token-revocation lookup and the throttles)."""

from apps.core.cache import ResilientRedisCache
from tests.faults.harness import free_port


def test_unreachable_redis_cache_is_an_empty_cache():
    cache = ResilientRedisCache(f"redis://127.0.0.1:{free_port()}/0", {"OPTIONS": {"socket_connect_timeout": 0.2}})
    assert cache.get("k", "dflt") == "dflt"
    assert cache.get_many(["a", "b"]) == {}
    cache.set("k", 1)
    assert cache.add("k", 1) is True
    assert cache.incr("k", 3) == 3
    assert cache.delete("k") is False


def test_settings_use_the_resilient_cache_with_short_timeouts(settings):
    backend = settings.CACHES["default"]
    assert backend["BACKEND"] == "apps.core.cache.ResilientRedisCache"
    assert backend["OPTIONS"]["socket_connect_timeout"] <= 2
