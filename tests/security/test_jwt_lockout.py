"""JWT logins count towards django-axes' lockout as admin logins do: after AXES_FAILURE_LIMIT wrong
passwords the right one is refused (no tokens), other accounts are untouched, and a reset (the
cool-off, or an administrator) lets the person in again."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from tests.factories import PASSWORD


@pytest.fixture
def axes_on(settings):
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 3


def _login(username, password):
    return APIClient().post(reverse("auth-token"), {"username": username, "password": password}, format="json")


def test_jwt_login_locks_out_after_failures(world, axes_on):
    from axes.utils import reset

    for _ in range(2):
        assert _login("a-admin", "wrong").status_code == 401
    assert _login("a-admin", "wrong").status_code == 429  # the failure that reaches the limit says so
    locked = _login("a-admin", PASSWORD)
    assert locked.status_code == 429, locked.content
    assert "Too many failed logins" in locked.json()["detail"]
    assert "access" not in locked.json() and "refresh" not in locked.json()
    assert _login("a-viewer", PASSWORD).status_code == 200  # another account is not locked
    reset(username="a-admin")
    assert _login("a-admin", PASSWORD).status_code == 200


def test_jwt_failures_below_the_limit_do_not_lock(world, axes_on):
    for _ in range(2):
        assert _login("a-admin", "wrong").status_code == 401
    assert _login("a-admin", PASSWORD).status_code == 200
