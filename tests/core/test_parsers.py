"""The API's parser (issue 17.5): any body it cannot take is a JSON 400, a body over
DATA_UPLOAD_MAX_MEMORY_SIZE a JSON 413 — unauthenticated (the token endpoint) and authenticated."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework_simplejwt.tokens import RefreshToken

DEEP_LIST = "[" * 1000 + "]" * 1000  # ~2 KB
DEEP_OBJECT = '{"subject": ' + '{"a": ' * 1000 + "1" + "}" * 1000 + "}"
DEEPISH = '{"subject": "x", "message": ' + "[" * 200 + "]" * 200 + "}"  # parses, then recursion in Python code


@pytest.fixture
def clients(world):
    token = RefreshToken.for_user(world.user("a", "customer")).access_token
    return {
        "/api/v1/auth/token": Client(),
        "/api/v1/tickets/": Client(HTTP_AUTHORIZATION=f"Bearer {token}"),
    }


def _json_error(response, status):
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["detail"]
    return body


@pytest.mark.parametrize("body", [DEEP_LIST, DEEP_OBJECT, DEEPISH], ids=["list", "object", "200-deep"])
@pytest.mark.parametrize("url", ["/api/v1/auth/token", "/api/v1/tickets/"])
def test_deeply_nested_body_is_a_json_400(clients, url, body):
    body = _json_error(clients[url].post(url, data=body, content_type="application/json"), 400)
    assert "nested" in body["detail"]


@pytest.mark.parametrize("raw", [b'{"a": ', b"\xff\xfe{}", b'{"a": NaN}', b"\x00"], ids=["truncated", "not-utf8", "nan", "nul"])
@pytest.mark.parametrize("url", ["/api/v1/auth/token", "/api/v1/tickets/"])
def test_unreadable_body_is_a_json_400(clients, url, raw):
    _json_error(clients[url].post(url, data=raw, content_type="application/json"), 400)


@pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded"])
@pytest.mark.parametrize("url", ["/api/v1/auth/token", "/api/v1/tickets/"])
def test_body_over_the_limit_is_a_json_413(clients, settings, url, content_type):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 4096
    if content_type == "application/json":
        data = '{"subject": "' + "x" * 5000 + '"}'
    else:
        data = "subject=" + "x" * 5000
    body = _json_error(clients[url].post(url, data=data, content_type=content_type), 413)
    assert "4096" in body["detail"]


def test_a_body_within_the_limits_still_works(clients, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 4096
    body = '{"subject": "Printer", "message": "' + "y" * 3000 + '", "priority": "low", "target_type": "tenant"}'
    response = clients["/api/v1/tickets/"].post("/api/v1/tickets/", data=body, content_type="application/json")
    assert response.status_code == 201, response.content


def test_depth_limit_is_exact():
    from rest_framework.exceptions import ParseError

    from apps.core.api.parsers import MAX_DEPTH, parse_json_body

    deepest = '{"a": ' * (MAX_DEPTH - 1) + "[1]" + "}" * (MAX_DEPTH - 1)
    assert parse_json_body(deepest.encode()) is not None
    with pytest.raises(ParseError, match="nested too deeply"):
        parse_json_body(("[" + deepest + "]").encode())
    wide = "[" + ",".join(["[[1]]"] * 500) + "]"  # many brackets, shallow
    assert len(parse_json_body(wide.encode())) == 500


def test_ingest_body_over_the_limit_is_a_json_413(world, settings):
    """Alert ingestion reads request.body itself: Django's RequestDataTooBig becomes the same 413."""
    from apps.alerts.services import ingest_token_create

    raw = ingest_token_create(actor=None, tenant=world.tenant("a"), name="am")[1]
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 4096
    body = '[{"labels": {"alertname": "' + "x" * 5000 + '"}}]'
    response = Client(HTTP_AUTHORIZATION=f"Bearer {raw}").post("/api/v1/alerts/ingest", data=body, content_type="application/json")
    assert _json_error(response, 413)["detail"].count("4096") == 1


@pytest.mark.parametrize(("path", "status"), [("/api/v1/anything", 413), ("/admin/", 400)])
def test_django_400_for_a_plain_view_is_json_413_under_api(rf, settings, path, status):
    from django.core.exceptions import RequestDataTooBig

    from apps.core.api.routing import handler400

    response = handler400(rf.post(path), RequestDataTooBig("too big"))
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json") == path.startswith("/api/")
