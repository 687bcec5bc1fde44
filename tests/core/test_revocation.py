"""Revocation that holds (issue 17 item 4): a revoke-all made while Redis is unreachable is not
undone when Redis comes back; reusing a rotated refresh token revokes the chain; the token
endpoint's lockout is a 429 like the admin's."""

import time
from datetime import datetime, timedelta

import pytest
from django.urls import reverse
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db
DEAD_REDIS = {"socket_connect_timeout": 0.2, "socket_timeout": 0.2}


def _me(token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client.get(reverse("users-me"))


def _login(username="a-viewer", password=PASSWORD):
    return APIClient().post(reverse("auth-token"), {"username": username, "password": password}, format="json")


def test_revoke_all_during_a_redis_outage_holds_once_redis_is_back(world, settings):
    user = world.user("a", "viewer")
    token = AccessToken.for_user(user)
    token.set_iat(at_time=datetime.now() - timedelta(seconds=10))
    assert _me(token).status_code == 200  # whatever the server keeps about this user is warm now
    healthy = settings.CACHES
    settings.CACHES = {"default": {**healthy["default"], "LOCATION": "redis://127.0.0.1:1/0", "OPTIONS": DEAD_REDIS}}
    client = APIClient()
    client.force_authenticate(user)
    assert client.post(reverse("auth-revoke-all"), format="json").status_code == 200
    assert _me(token).status_code == 401  # during the outage
    settings.CACHES = healthy  # Redis is back, with whatever it held before
    r = _me(token)
    assert r.status_code == 401 and r.json()["code"] == "token_revoked"


def test_revoke_all_holds_in_every_process_at_once(world, api):
    """A revoke-all whose cache write never arrived (another process, an outage) holds: the mark is read from the database."""

    user = world.user("a", "viewer")
    token = AccessToken.for_user(user)
    token.set_iat(at_time=datetime.now() - timedelta(seconds=10))
    assert _me(token).status_code == 200
    from apps.core.models import UserSecurity

    # a revoke-all written by a process whose cache write never arrived
    UserSecurity.objects.update_or_create(user=user, defaults={"tokens_revoked_at": datetime.now().astimezone()})
    assert _me(token).status_code == 401


def test_reusing_a_rotated_refresh_token_revokes_the_whole_chain(world):
    first = _login().json()
    client = APIClient()
    second = client.post(reverse("auth-refresh"), {"refresh": first["refresh"]}, format="json")
    assert second.status_code == 200, second.content
    second = second.json()
    assert _me(second["access"]).status_code == 200
    time.sleep(1.1)  # token times have whole seconds
    replay = client.post(reverse("auth-refresh"), {"refresh": first["refresh"]}, format="json")
    assert replay.status_code == 401
    # the legitimate holder's newer tokens are gone too (whoever replayed may have used them)
    assert client.post(reverse("auth-refresh"), {"refresh": second["refresh"]}, format="json").status_code == 401
    assert _me(second["access"]).status_code == 401
    # signing in again works
    assert _me(_login().json()["access"]).status_code == 200


def test_token_endpoint_lockout_is_429_like_the_admin(world, settings):
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 3
    assert [_login(password="wrong").status_code for _ in range(3)] == [401, 401, 429]  # the third failure locks
    r = _login()  # the right password does not open it
    assert r.status_code == 429, r.content
    assert r["Content-Type"] == "application/json" and "try again" in r.json()["detail"].lower()
