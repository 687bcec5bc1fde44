"""An endpoint edited while the checker records a result: each writer keeps the other's fields
(an edit from a stale instance does not undo the checker's state or another edit's fields; the
checker's state write does not undo an edit; the admin form goes through the same service)."""

import json
from datetime import UTC, datetime

import pytest
from django.urls import reverse

from apps.monitoring.checkers import Outcome
from apps.monitoring.choices import EndpointStatus
from apps.monitoring.models import Endpoint
from apps.monitoring.services import endpoint_create, endpoint_update, results_record


def _endpoint(tenant, **kw):
    return endpoint_create(actor=None, tenant_id=tenant.pk, name="web", kind="http", host="127.0.0.1", port=8080,
                           path="/health", interval_seconds=60, timeout_seconds=5, failure_threshold=1, **kw)


def _down(endpoint):
    return Outcome(endpoint_id=endpoint.pk, ok=False, status_code=503, error="HTTP 503, expected 200",
                   checked_at=datetime(2026, 12, 7, 12, 0, tzinfo=UTC))


def test_edit_from_a_stale_instance_keeps_the_checkers_state(world):
    endpoint = _endpoint(world.tenant("a"))
    stale = Endpoint.objects.get(pk=endpoint.pk)  # the admin/API loaded it before the check finished
    results_record(outcomes=[_down(endpoint)])
    endpoint_update(stale, actor=None, path="/v2/health")
    row = Endpoint.objects.get(pk=endpoint.pk)
    assert row.path == "/v2/health"
    assert (row.status, row.notified_status, row.consecutive_failures) == (EndpointStatus.DOWN, EndpointStatus.DOWN, 1)
    assert row.last_checked_at == datetime(2026, 12, 7, 12, 0, tzinfo=UTC) and row.last_status_code == 503


def test_checker_state_write_keeps_an_edit_made_during_the_check(world):
    endpoint = _endpoint(world.tenant("a"))
    checking = {endpoint.pk: Endpoint.objects.get(pk=endpoint.pk)}  # loaded when the batch started
    endpoint_update(Endpoint.objects.get(pk=endpoint.pk), actor=None, path="/v2/health", port=8443)
    results_record(outcomes=[_down(endpoint)], endpoints=checking)
    row = Endpoint.objects.get(pk=endpoint.pk)
    assert (row.path, row.port, row.status) == ("/v2/health", 8443, EndpointStatus.DOWN)


def test_edit_saves_only_the_fields_it_changed(world):
    endpoint = _endpoint(world.tenant("a"))
    first, second = Endpoint.objects.get(pk=endpoint.pk), Endpoint.objects.get(pk=endpoint.pk)
    endpoint_update(first, actor=None, port=8443)
    endpoint_update(second, actor=None, name="web (eu)", port=8080)  # port given unchanged: not written
    row = Endpoint.objects.get(pk=endpoint.pk)
    assert (row.name, row.port) == ("web (eu)", 8443)


def _form_data(page) -> dict:
    """The change form as the browser posts it."""
    form = page.context["adminform"].form
    data = {}
    for name in form.fields:
        value = form[name].value()
        if isinstance(value, bool):
            if value:
                data[name] = "on"
        elif isinstance(value, dict | list):
            data[name] = json.dumps(value)
        elif value is not None:
            data[name] = value
    return data


@pytest.mark.django_db
def test_admin_form_opened_before_a_check_keeps_its_result(world, client):
    endpoint = _endpoint(world.tenant("a"))
    client.force_login(world.user("a", "owner"))
    url = reverse("admin:monitoring_endpoint_change", args=[endpoint.pk])
    data = _form_data(client.get(url))
    results_record(outcomes=[_down(endpoint)])  # the checker, while the form is open
    r = client.post(url, {**data, "name": "web (eu)"})
    assert r.status_code == 302, r.context["adminform"].form.errors
    row = Endpoint.objects.get(pk=endpoint.pk)
    assert (row.name, row.path, row.status, row.last_status_code) == ("web (eu)", "/health", EndpointStatus.DOWN, 503)
