"""One URL convention (issue 16.1): every API operation answers at its path with and without the
trailing slash (writes included: no 301, no 500), the schema lists the slash form only, and an
unknown path under /api/ answers the API's JSON error, never Django's HTML page."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import resolve

SAMPLE = {"uuid": "7c9e6679-7425-40de-944b-e07c7f5d4e5a", "slug": "tenant-a"}


def _operations():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    for path, item in schema["paths"].items():
        for method in item:
            if method in ("get", "post", "put", "patch", "delete"):
                yield method, path, item[method]


def _concrete(path: str, operation: dict) -> str:
    kinds = {p["name"]: p.get("schema", {}) for p in operation.get("parameters", []) if p["in"] == "path"}

    def value(match):
        spec = kinds.get(match.group(1), {})
        return SAMPLE["uuid"] if spec.get("format") == "uuid" else ("1" if spec.get("type") == "integer" else SAMPLE["slug"])

    return re.sub(r"\{(\w+)\}", value, path)


def test_schema_lists_one_canonical_form_the_slash_form():
    paths = {path for _, path, _ in _operations()}
    assert paths and all(path.endswith("/") for path in paths), sorted(p for p in paths if not p.endswith("/"))


@pytest.mark.django_db
def test_every_operation_answers_in_both_forms():
    """Both forms resolve to the same view, and an anonymous call in either form reaches it: a JSON
    answer that is neither a redirect, a 405 from the wrong route, nor a 500."""
    client = Client(raise_request_exception=False)
    failures = []
    seen = 0
    for method, path, operation in _operations():
        slash = _concrete(path, operation)
        bare = slash.rstrip("/")
        if resolve(slash).func is not resolve(bare).func:
            failures.append(f"{method.upper()} {path}: the forms reach different views")
            continue
        for url in (slash, bare):
            if "health-check" in url:
                continue  # waits for a Celery ping; routing is proven by resolve() above
            response = client.generic(method.upper(), url, data="{}", content_type="application/json")
            seen += 1
            if response.status_code in (301, 302, 308, 405) or response.status_code >= 500:
                failures.append(f"{method.upper()} {url}: {response.status_code}")
            elif not response["Content-Type"].startswith("application/json"):
                failures.append(f"{method.upper()} {url}: {response.status_code} {response['Content-Type']}")
    assert seen > 200
    assert not failures, "\n".join(failures)


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/v1/nothing-here", "/api/v1/nothing-here/", "/api/v1/credentials/0.5/", "/api/v1/tickets/1/x/y", "/api/"])
@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_unknown_api_path_is_a_json_404(method, url):
    response = Client().generic(method.upper(), url, data="{}", content_type="application/json")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["detail"]


SEED_000_TEAM_BY_ROLE = """{
    "role_filter": "admin",
    "title": "System Maintenance Alert",
    "message": "Scheduled maintenance tonight at 10 PM",
    "priority": "high"
  }"""
SEED_000_TICKET = """{
    "subject": "Customer connectivity issue",
    "message": "Customer reports intermittent connectivity",
    "priority": "high",
    "target_type": "tenant"
  }"""
SEED_000_ONE_TIME = """{
    "operation": "upgrade",
    "instance_id": 123,
    "scheduled_at": "2024-12-01T02:00:00Z",
    "upgrade_request": {
      "to_version": "2.0.0",
      "rollback_on_failure": true
    }
  }"""
SEED_000_RECURRING = """{
    "operation": "scale",
    "instance_id": 123,
    "scheduled_at": "2024-11-20T02:00:00Z",
    "scale_request": {
      "cpu_cores": 8,
      "memory_gb": 32
    },
    "cron_expression": "0 3 * * 1"
  }"""


def test_seed_000_curl_examples_verbatim(world, settings):
    """Seed 000's curl calls as written there (no trailing slash, the same bodies): created, not 500/301."""
    from rest_framework_simplejwt.tokens import RefreshToken

    from apps.deployments.models import DeploymentSchedule
    from apps.tickets.models import Ticket
    from tests.factories.deployments import make_instance, make_runbooks

    tenant = world.tenant("a")
    make_runbooks(tenant)
    make_instance(tenant, pk=123)
    token = RefreshToken.for_user(world.user("a", "admin")).access_token
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")

    def curl(url, body):
        return client.post(url, data=body, content_type="application/json")

    response = curl("http://localhost:8000/api/v1/notifications/team", SEED_000_TEAM_BY_ROLE)
    assert response.status_code in (200, 201, 202), response.content
    # a customer routes the ticket to its tenant ("target_type": "tenant")
    customer = RefreshToken.for_user(world.user("a", "customer")).access_token
    response = Client(HTTP_AUTHORIZATION=f"Bearer {customer}").post(
        "http://localhost:8000/api/v1/tickets", data=SEED_000_TICKET, content_type="application/json")
    assert response.status_code == 201, response.content
    assert Ticket.objects.filter(subject="Customer connectivity issue", tenant=tenant).exists()
    # 2024 is in the past by now: the one-time schedule is refused as such (a 400 naming the field)
    response = curl("http://localhost:8000/api/v1/deployments/schedule", SEED_000_ONE_TIME)
    assert response.status_code in (201, 400), response.content
    assert response["Content-Type"].startswith("application/json")
    response = curl("http://localhost:8000/api/v1/deployments/schedule", SEED_000_RECURRING)
    assert response.status_code == 201, response.content
    assert DeploymentSchedule.objects.get(pk=response.json()["schedule_id"]).cron_expression == "0 3 * * 1"


def test_every_route_under_api_takes_both_forms_schema_or_not():
    """Routes the schema leaves out (plain Django views such as alert ingestion) obey too."""
    from django.urls import URLPattern, URLResolver, get_resolver

    from apps.core.api.routing import EitherFormRegexPattern, EitherFormRoutePattern

    def walk(patterns, prefix):
        for entry in patterns:
            route = prefix + str(entry.pattern).removeprefix("^")
            if isinstance(entry, URLResolver):
                yield from walk(entry.url_patterns, route)
            elif isinstance(entry, URLPattern) and route.startswith("api/") and entry.name != "api-not-found":
                yield route, entry.pattern

    routes = list(walk(get_resolver().url_patterns, ""))
    assert len(routes) > 100
    plain = [route for route, pattern in routes if not isinstance(pattern, (EitherFormRoutePattern, EitherFormRegexPattern))]
    assert not plain, plain
    for path in ("/api/v1/alerts/ingest", "/api/v1/alerts/ingest/", "/api/v1/users/me", "/api/v1/users/me/"):
        assert resolve(path).url_name in ("alert-ingest", "users-me")
