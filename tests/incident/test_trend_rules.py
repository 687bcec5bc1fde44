"""Degradation → proactive action (issue 10, item 6), end to end with REAL parts: a loopback
HTTPS server with a short-lived self-signed certificate, a Celery worker on Redis and an sshd.
A TLS trend rule sees the certificate expiring within 14 days → `endpoint.trend_breached` →
an `endpoint_trend` alert → the tenant's alert rule opens a ticket and runs the renewal runbook
over SSH on the target named by the endpoint's `instance` label → the certificate is renewed →
the rule recovers → the alert and the ticket resolve. The tenant timeline tells the story."""

from __future__ import annotations

from datetime import timedelta

import pytest

from apps.alerts.choices import AlertStatus, AlertType, RunbookStatus
from apps.alerts.models import Alert, AlertRule, RunbookRequest
from apps.monitoring.choices import TrendState
from apps.monitoring.models import TrendRule
from apps.monitoring.services import endpoint_check_now, endpoint_create, trend_rules_evaluate
from apps.tickets.choices import TicketStatus
from apps.tickets.models import Ticket, TicketMessage
from tests.conftest import wait_for
from tests.factories.targets import make_credential, make_job, make_target
from tests.monitoring.servers import LoopbackHTTPS


@pytest.fixture
def https_server():
    with LoopbackHTTPS(valid_for=timedelta(days=5)) as server:
        yield server


def test_expiring_certificate_opens_a_ticket_runs_the_renewal_and_resolves(world, api, sshd, https_server, tmp_path, celery_worker):
    tenant = world.tenant("a")
    cred = make_credential(tenant, username=sshd.user, secret=sshd.key)
    make_target(tenant, name="web-1", port=sshd.port, credential=cred)
    marker = tmp_path / "renewed"
    job = make_job(tenant, name="renew certificate",
                   steps=[{"name": "renew", "type": "ssh.exec", "command": f"echo renewing on {{{{ target.name }}}}; touch {marker}"}])
    AlertRule.objects.create(
        tenant=tenant, name="certificates", rule_type="alert",
        conditions={"alert_types": [AlertType.ENDPOINT_TREND], "label_matchers": [{"name": "trend", "op": "=", "value": "tls_expiry"}]},
        actions=[{"type": "open_ticket"}, {"type": "run_job", "job_id": job.pk, "target_label": "instance"}],
    )
    endpoint = endpoint_create(actor=None, tenant_id=tenant.pk, name="shop", kind="https", host="127.0.0.1", port=https_server.port,
                               verify_tls=False, tls_expiry_warning_days=1, timeout_seconds=5, labels={"instance": "web-1"})
    admin = api.as_user(world.user("a", "admin"))
    made = admin.post("/api/v1/monitoring/trend-rules/", {"name": "certificate", "endpoint": endpoint.pk, "kind": "tls_expiry", "days": 14},
                      format="json")
    assert made.status_code == 201, made.content

    endpoint_check_now(endpoint, actor=None)  # reads the real certificate's notAfter over TLS
    endpoint.refresh_from_db()
    assert endpoint.tls_expires_at == https_server.not_after
    assert trend_rules_evaluate()["breached"] == 1

    alert = wait_for(lambda: Alert.objects.filter(tenant=tenant, alert_type=AlertType.ENDPOINT_TREND).first())
    assert alert.severity == "warning" and alert.labels["instance"] == "web-1" and "expires in 5.0 days" in alert.title
    ticket = wait_for(lambda: Ticket.objects.filter(pk=Alert.objects.get(pk=alert.pk).ticket_id).first())
    assert "incident" in ticket.tags and ticket.metadata["incident"]["related"] == {"type": "monitoring.trendrule", "id": str(made.json()["id"])}
    req = wait_for(lambda: RunbookRequest.objects.filter(alert=alert, status=RunbookStatus.SUCCEEDED).first(), timeout=30)
    assert marker.exists() and "renewing on web-1" in req.summary  # the runbook really ran over SSH
    assert Ticket.objects.get(pk=ticket.pk).status != TicketStatus.RESOLVED  # the trend is still breached

    https_server.use_certificate(timedelta(days=90))  # what the runbook would have installed
    endpoint_check_now(endpoint, actor=None)
    assert trend_rules_evaluate()["recovered"] == 1
    assert TrendRule.objects.get(pk=made.json()["id"]).state == TrendState.OK
    wait_for(lambda: Alert.objects.get(pk=alert.pk).status == AlertStatus.RESOLVED)
    wait_for(lambda: Ticket.objects.get(pk=ticket.pk).status == TicketStatus.RESOLVED, timeout=20)
    reply = TicketMessage.objects.filter(ticket=ticket, is_internal=False).order_by("created_at").last()
    assert "has been resolved" in reply.body and "renew certificate" in reply.body

    story = admin.get(f"/api/v1/tenants/{tenant.slug}/timeline?limit=200").json()["results"]
    events = [e["event"] for e in reversed(story)]
    order = ["config.created", "endpoint.trend_breached", "alert.fired", "ticket.created", "job_run.succeeded",
             "endpoint.trend_recovered", "alert.resolved", "ticket.resolved"]
    positions = [events.index(name) for name in order]
    assert positions == sorted(positions), events
    created = next(e for e in story if e["event"] == "config.created" and e["object_type"] == "monitoring.trendrule")
    assert created["actor"] == "a-admin" and created["kind"] == "config"
