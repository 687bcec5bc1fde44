"""The per-user API rate limit (apps/core/api/throttling.py): a 429 past the rate, and a constant
amount of state per user whatever the rate."""

import pytest
import redis
from django.conf import settings
from rest_framework.settings import api_settings
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle
from rest_framework_simplejwt.tokens import RefreshToken

pytestmark = pytest.mark.django_db


def _client(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


def test_past_the_rate_is_429_with_retry_after(world, monkeypatch):
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {**api_settings.DEFAULT_THROTTLE_RATES, "user": "3/min"})
    client = _client(world.user("a", "viewer"))
    assert [client.get("/api/v1/users/me").status_code for _ in range(4)] == [200, 200, 200, 429]
    r = client.get("/api/v1/users/me")
    assert r.status_code == 429 and 1 <= int(r["Retry-After"]) <= 60
    assert _client(world.user("b", "viewer")).get("/api/v1/users/me").status_code == 200  # per user


def test_the_stored_state_does_not_grow_with_the_requests(world, monkeypatch):
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {**api_settings.DEFAULT_THROTTLE_RATES, "user": "100000/min"})
    user = world.user("a", "viewer")
    client = _client(user)
    server = redis.Redis.from_url(settings.REDIS_URL)
    sizes = []
    for n in range(60):
        assert client.get("/api/v1/users/me").status_code == 200
        if n in (9, 59):
            sizes.append(sum(len(server.dump(k) or b"") for k in server.keys(f"*throttle_user_{user.pk}*")))
    assert sizes[1] <= sizes[0] + 8, sizes  # a counter, not a list of every request time
