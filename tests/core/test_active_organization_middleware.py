"""ActiveOrganizationMiddleware puts a session user's chosen organization on the user; a request
without the session cookie has no session user, so it leaves the (lazy) user unevaluated — no
session read, no second-factor lookup for API-token and machine requests."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.http import HttpResponse
from django.test import RequestFactory
from django.utils.functional import SimpleLazyObject

from apps.core.middleware import SESSION_KEY, ActiveOrganizationMiddleware
from apps.core.tenancy import _CHOICE_ATTR

pytestmark = pytest.mark.django_db


class _Session(dict):
    pass


def _request(*, cookie: bool, user, org_header: str | None = None):
    extra = {"HTTP_X_ORGANIZATION": org_header} if org_header else {}
    request = RequestFactory().post("/api/v1/alerts/ingest", **extra)
    if cookie:
        request.COOKIES[settings.SESSION_COOKIE_NAME] = "k"
    request.session = _Session({SESSION_KEY: "acme"})
    request.user = user
    return request


def test_without_the_session_cookie_the_user_is_not_evaluated():
    evaluated = []
    user = SimpleLazyObject(lambda: evaluated.append(1))
    response = ActiveOrganizationMiddleware(lambda r: HttpResponse("ok"))(_request(cookie=False, user=user, org_header="acme"))
    assert response.status_code == 200 and evaluated == []


def test_a_session_user_gets_the_organization_from_the_header_or_the_session(world):
    user = world.user("a", "admin")
    ActiveOrganizationMiddleware(lambda r: HttpResponse())(_request(cookie=True, user=user))
    assert getattr(user, _CHOICE_ATTR) == "acme"
    ActiveOrganizationMiddleware(lambda r: HttpResponse())(_request(cookie=True, user=user, org_header="other"))
    assert getattr(user, _CHOICE_ATTR) == "other"
