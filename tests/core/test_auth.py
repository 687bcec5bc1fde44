from datetime import timedelta

import pytest
from django.urls import reverse
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from tests.factories import PASSWORD


@pytest.fixture
def tokens(world):
    client = APIClient()
    r = client.post(reverse("auth-token"), {"username": "a-viewer", "password": PASSWORD}, format="json")
    assert r.status_code == 200, r.content
    return r.json()


def _me(token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client.get(reverse("users-me"))


def test_login_gives_working_tokens(tokens):
    me = _me(tokens["access"])
    assert me.status_code == 200
    assert me.json()["acting_organization"] == "tenant-a"
    assert me.json()["acting_role"] == "viewer"


def test_wrong_password_is_401_with_message(world):
    r = APIClient().post(reverse("auth-token"), {"username": "a-viewer", "password": "nope"}, format="json")
    assert r.status_code == 401
    assert r.json()["detail"]


def test_invalid_jwt_is_401_and_says_so(world):
    r = _me("not.a.jwt")
    assert r.status_code == 401
    assert "not valid" in r.json()["detail"]


def test_expired_jwt_is_401_and_says_so(world):
    token = AccessToken.for_user(world.user("a", "viewer"))
    token.set_exp(lifetime=-timedelta(minutes=1))
    r = _me(str(token))
    assert r.status_code == 401
    assert "expired" in r.json()["detail"]


def test_refresh_rotates_and_blacklists_the_old_one(tokens):
    client = APIClient()
    r = client.post(reverse("auth-refresh"), {"refresh": tokens["refresh"]}, format="json")
    assert r.status_code == 200 and r.json()["refresh"] != tokens["refresh"]
    again = client.post(reverse("auth-refresh"), {"refresh": tokens["refresh"]}, format="json")
    assert again.status_code == 401
    assert "revoked" in again.json()["detail"]


def test_verify(tokens):
    client = APIClient()
    assert client.post(reverse("auth-verify"), {"token": tokens["access"]}, format="json").status_code == 200
    assert client.post(reverse("auth-verify"), {"token": "x"}, format="json").status_code == 401


def test_revoke_all_kills_refresh_and_access_tokens(tokens, world):
    import time

    time.sleep(1.05)  # iat has whole seconds; a token from the revocation's own second stays valid
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    r = client.post(reverse("auth-revoke-all"), {}, format="json")
    assert r.status_code == 200 and r.json()["revoked_refresh_tokens"] >= 1
    assert _me(tokens["access"]).status_code == 401
    refreshed = APIClient().post(reverse("auth-refresh"), {"refresh": tokens["refresh"]}, format="json")
    assert refreshed.status_code == 401


def test_only_platform_admin_revokes_others(world, api):
    victim = world.user("b", "viewer")
    r = api.as_user(world.user("a", "admin")).post(reverse("auth-revoke-all"), {"user_id": victim.pk}, format="json")
    assert r.status_code == 403
    r = api.as_user(world.user("platform", "admin")).post(reverse("auth-revoke-all"), {"user_id": victim.pk}, format="json")
    assert r.status_code == 200


def test_unknown_organization_header_is_403(world, api):
    r = api.as_user(world.user("a", "viewer"), organization="tenant-b").get(reverse("users-me"))
    assert r.status_code == 403
    assert "not a member" in r.json()["detail"]


def test_admin_login_locks_out_after_failures(world, client, settings):
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 3
    url = reverse("admin:login")
    for _ in range(3):
        client.post(url, {"username": "a-admin", "password": "wrong"})
    r = client.post(url, {"username": "a-admin", "password": PASSWORD})
    assert r.status_code == 429
