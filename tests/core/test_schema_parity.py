"""API answers that agree with the schema (issue 18.6): local times, nullable actors, JSON 404
for malformed ids, and a 503 with Retry-After while the database cannot be reached."""

from __future__ import annotations

import socket
from datetime import time

import jsonschema_rs
import pytest
from django.db import connection
from django.test import Client
from drf_spectacular.generators import SchemaGenerator
from rest_framework_simplejwt.tokens import RefreshToken


@pytest.fixture(scope="module")
def components():
    return SchemaGenerator().get_schema(request=None, public=True)["components"]["schemas"]


def _validator(components, name):
    """The component as schemathesis checks a response: jsonschema-rs, formats validated,
    OpenAPI 3.0's `nullable` spelled as JSON Schema."""
    schema = _nullable({**components[name], "components": {"schemas": components}})
    return jsonschema_rs.validator_for(schema, validate_formats=True)


def _nullable(node):
    if isinstance(node, dict):
        node = {k: _nullable(v) for k, v in node.items()}
        if node.pop("nullable", False):
            node = {"anyOf": [node, {"type": "null"}]}
        return node
    if isinstance(node, list):
        return [_nullable(v) for v in node]
    return node


def test_preference_quiet_hours_agree_with_the_schema(world, api, components):
    client = api.as_user(world.user("a", "operator"))
    response = client.post("/api/v1/notifications/preferences/", {"notification_type": "ticket_created", "quiet_start": "09:52:35", "quiet_end": "17:00"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["quiet_start"] == "09:52:35"
    _validator(components, "Preference").validate(body)
    assert time(9, 52, 35).isoformat() == body["quiet_start"]


def test_ticket_timeline_actor_may_be_null(components):
    assert components["Timeline"]["properties"]["actor"].get("nullable") is True


@pytest.mark.parametrize("url", ["/api/v1/credentials/0.5/", "/api/v1/credentials/0.5", "/api/v1/tickets/1.0/", "/api/v1/alerts/x.y"])
def test_malformed_ids_are_a_json_404(world, api, url):
    response = api.as_user(world.user("a", "admin")).get(url)
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json") and response.json()["detail"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def unreachable_database(transactional_db):
    """The next request's connection goes to a port nobody listens on (this test's own
    connection only; the server and the other databases are untouched)."""
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict.update(HOST="127.0.0.1", PORT=str(_closed_port()))
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)


def _assert_503(response):
    assert response.status_code == 503, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json")
    assert int(response["Retry-After"]) > 0
    assert "database" in response.json()["detail"]


@pytest.mark.django_db(transaction=True)
def test_database_unreachable_is_a_503_with_retry_after(unreachable_database):
    _assert_503(Client().post("/api/v1/auth/token", {"username": "x", "password": "y"}, content_type="application/json"))


def test_database_backend_terminated_is_a_503_with_retry_after(transactional_db, django_user_model):
    user = django_user_model.objects.create_user(username="dbdown", password="pw-123456789")
    token = RefreshToken.for_user(user).access_token
    with connection.cursor() as cursor:  # our own backend only
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    from django.db import connections

    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    finally:
        other.close()
    try:
        _assert_503(Client(HTTP_AUTHORIZATION=f"Bearer {token}").get("/api/v1/users/me"))
    finally:
        connection.close()
