"""Schemathesis fuzzes every operation of /api/schema/ as a tenant admin and as a viewer.

Each (operation, role) is one pytest item running a bounded Hypothesis search
(FUZZ_MAX_EXAMPLES, default 6) in-process through Django's WSGI app inside the test
transaction, so the world and the seeded rows are there and everything rolls back. Checks:
no 5xx, status codes and bodies that the schema documents, content types as documented.
Path parameters are half the time swapped for the pk of a real row of tenant A.
"""

from __future__ import annotations

import os
import time

import pytest
import schemathesis
from django.db import transaction
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.fuzz.seed import seed_tenant_a

TIMINGS: list = []


class _Undo(Exception):
    pass


MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "6"))
# Where a 5xx is the documented answer about a peer, not a crash: a channel test whose peer
# refuses (502) and the service health check while no Celery worker runs (503).
DEPENDENCY_ANSWERS = {
    ("POST", "/api/v1/notifications/channels/{id}/test/"): 502,
    ("POST", "/api/v1/mailboxes/{id}/poll/"): 502,  # the IMAP server refused or is unreachable
    ("POST", "/api/v1/monitoring/health-check/"): 503,
}


def no_server_error(ctx, response, case):
    if DEPENDENCY_ANSWERS.get((case.method.upper(), case.path)) == response.status_code:
        return None
    return not_a_server_error(ctx, response, case)


CHECKS = [no_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _load_schema():
    import django

    django.setup()
    from drf_spectacular.generators import SchemaGenerator

    raw = SchemaGenerator().get_schema(request=None, public=True)
    import json

    from rest_framework.renderers import JSONRenderer

    return schemathesis.openapi.from_dict(json.loads(JSONRenderer().render(raw)))


SCHEMA = _load_schema()
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]


def _op_id(op) -> str:
    return f"{op.method.upper()} {op.path}"


def _real_id(ids: dict, path: str):
    # longest matching prefix: "/api/v1/alerts/rules/" before "/api/v1/alerts/"
    base = path.split("{")[0]
    for prefix in sorted(ids, key=len, reverse=True):
        if base.startswith(prefix) or base == prefix.rstrip("/"):
            return ids[prefix]
    return None


@pytest.fixture
def fuzz_world(world, settings):
    from django.core import signals
    from django.core.cache import cache
    from django.db import close_old_connections

    # As Django's test client does: the WSGI handler must not close the test transaction's connection.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    settings.ALLOWED_HOSTS = ["*"]
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
        **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "anon": "100000/min", "user": "100000/min",
        "auth": "100000/min", "ingest": "100000/min"}}
    cache.clear()
    try:
        yield world, seed_tenant_a(world)
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def _headers(op, role, world, seeded) -> dict:
    from rest_framework_simplejwt.tokens import RefreshToken

    if "/alerts/ingest" in op.path and not op.path.startswith("/api/v1/alerts/ingest-tokens"):
        return {"Authorization": f"Bearer {seeded['ingest_token']}"}
    user = world.user("a", role)
    return {"Authorization": f"Bearer {RefreshToken.for_user(user).access_token}"}


def _group(op) -> str:
    return op.path.removeprefix("/api/v1/").split("/")[0]


GROUPS = sorted({_group(op) for op in OPERATIONS})


def _fuzz_operation(op, role, world, seeded) -> None:
    from config.wsgi import application

    op.app = application
    headers = _headers(op, role, world, seeded)
    real = _real_id(seeded["ids"], op.path)

    @given(case=op.as_strategy(), use_real=st.booleans())
    @settings(
        # a health check waits for Celery's ping timeout each time: a couple of examples suffice
        max_examples=2 if "health-check" in op.path else MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case, use_real):
        for name in list(case.path_parameters or {}):
            if name == "ping_id":
                if use_real:
                    case.path_parameters[name] = seeded["ping_id"]
            elif name == "sid":
                if use_real:
                    case.path_parameters[name] = seeded["ids"]["/api/v1/customer-services/"]
            elif use_real and real is not None:
                case.path_parameters[name] = real
        # Each request in a savepoint that is always rolled back: examples stay independent (a
        # fuzzed DELETE does not remove the seeded row) and a failed statement cannot poison
        # the test transaction.
        try:
            with transaction.atomic():
                response = case.call(headers=headers)
                raise _Undo
        except _Undo:
            pass
        case.validate_response(response, checks=CHECKS, headers=headers)

    run()


@pytest.mark.parametrize("role", ["admin", "viewer"])
@pytest.mark.parametrize("group", GROUPS)
def test_api_survives_fuzzing(group, role, fuzz_world):
    """Every operation of one API group (first path segment), one role; all failures reported."""
    world, seeded = fuzz_world
    failures = []
    operations = [op for op in OPERATIONS if _group(op) == group]
    for op in operations:
        started = time.monotonic()
        try:
            _fuzz_operation(op, role, world, seeded)
        except Exception as exc:  # collect all, report together
            failures.append(f"{_op_id(op)} as {role}:\n" + "\n".join(str(exc).splitlines()[:40]))
        TIMINGS.append((time.monotonic() - started, _op_id(op), role))
    assert operations
    assert not failures, "\n\n".join(failures)
