"""Documented headers and shapes (issue 16.7): X-Organization on every operation, every list
paginated, an unknown filter choice a 400 naming the allowed values; and (issue 18.9) a write
with a field the serializer does not know is a 400 naming the known writable ones."""

from __future__ import annotations

import pytest
from drf_spectacular.generators import SchemaGenerator

from apps.tickets.choices import TicketStatus


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator().get_schema(request=None, public=True)


def _operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield method, path, operation


def test_x_organization_is_a_documented_header_on_every_operation(schema):
    missing = [f"{m.upper()} {p}" for m, p, op in _operations(schema)
               if not any(q["in"] == "header" and q["name"] == "X-Organization" for q in op.get("parameters", []))]
    assert not missing, missing


def test_every_list_answers_paginated(schema):
    bare = []
    for method, path, operation in _operations(schema):
        for code, response in operation.get("responses", {}).items():
            body = response.get("content", {}).get("application/json", {}).get("schema", {})
            if method == "get" and code == "200" and body.get("type") == "array":
                bare.append(path)
    assert not bare, bare


def test_job_schedules_and_customer_services_lists_are_pages(world, api):
    from tests.factories.customers import CustomerFactory, CustomerServiceFactory
    from tests.factories.targets import make_job

    job = make_job(world.tenant("a"), name="j")
    client = api.as_user(world.user("a", "admin"))
    body = client.get(f"/api/v1/jobs/{job.pk}/schedules/").json()
    assert isinstance(body, dict) and body["results"] == [] and body["count"] == 0
    service = CustomerServiceFactory(customer=CustomerFactory(tenant=world.tenant("a")))
    body = client.get(f"/api/v1/customers/{service.customer_id}/services/?page_size=1").json()
    assert isinstance(body, dict) and body["count"] == 1 and [row["id"] for row in body["results"]] == [service.pk]


@pytest.mark.parametrize("query", ["status=bogus", "status=open,bogus", "priority=urgentest"])
def test_unknown_filter_choice_is_a_400_naming_the_allowed_values(world, api, query):
    response = api.as_user(world.user("a", "admin")).get(f"/api/v1/tickets/?{query}")
    assert response.status_code == 400, response.content
    detail = response.json()["detail"]
    field = query.split("=")[0]
    assert field in response.json()["errors"]
    allowed = TicketStatus.values if field == "status" else ["low", "high"]
    assert all(value in detail for value in allowed), detail


def test_known_filter_choices_still_filter(world, api):
    response = api.as_user(world.user("a", "admin")).get("/api/v1/tickets/?status=open,waiting&priority=high")
    assert response.status_code == 200, response.content


def test_unknown_field_in_a_write_is_a_400_naming_the_known_ones(world, api):
    """Seed 002's `is_enabled` sent to a subscription: refused, not silently dropped."""
    client = api.as_user(world.user("a", "admin"))
    response = client.post("/api/v1/alerts/subscriptions/", {"alert_type": "sla_breach", "is_enabled": False}, format="json")
    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert "is_enabled" in errors
    offered = set(errors["is_enabled"][0].rstrip(".").split(": ", 1)[1].split(", "))
    assert {"alert_type", "enabled", "channels"} <= offered and "id" not in offered  # read-only fields are not offered
    assert "is_enabled" in response.json()["detail"]


def test_unknown_field_in_a_partial_update_is_a_400(world, api):
    from tests.factories.targets import make_job

    job = make_job(world.tenant("a"), name="j")
    client = api.as_user(world.user("a", "admin"))
    response = client.patch(f"/api/v1/jobs/{job.pk}/", {"nmae": "typo"}, format="json")
    assert response.status_code == 400, response.content
    assert "nmae" in response.json()["errors"] and "name" in response.json()["detail"]


def test_known_read_only_fields_sent_back_are_accepted(world, api):
    """A client may PUT back what it read: the read-only fields are known, just not written."""
    from tests.factories.targets import make_job

    job = make_job(world.tenant("a"), name="j")
    client = api.as_user(world.user("a", "admin"))
    body = client.get(f"/api/v1/jobs/{job.pk}/").json()
    response = client.patch(f"/api/v1/jobs/{job.pk}/", {**body, "name": "renamed"}, format="json")
    assert response.status_code == 200, response.content


@pytest.mark.parametrize(("url", "body", "typo"), [
    ("/api/v1/notifications/team", {"role_filter": "admin", "title": "t", "is_enabled": True}, "is_enabled"),
    ("/api/v1/deployments/schedule", {"operation": "scale", "scheduled_at": "2030-01-01T00:00:00Z", "instance": 1}, "instance"),
])
def test_unknown_field_in_a_seed_request_body_is_a_400(world, api, url, body, typo):
    response = api.as_user(world.user("a", "admin")).post(url, body, format="json")
    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert typo in errors and ("title" in errors[typo][0] or "operation" in errors[typo][0])
