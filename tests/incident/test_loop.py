"""The incident loop end to end with a REAL Celery worker and a REAL sshd on loopback:
Alertmanager webhook → alert → ticket (SLA from first_seen, priority from severity, labels on
the ticket) → runbook job over SSH → alert resolved → ticket resolved with a customer summary;
the failure path escalates; a maintenance window opens nothing and notifies no one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from apps.alerts.choices import AlertStatus, RunbookStatus
from apps.alerts.models import Alert, AlertRule, RunbookRequest
from apps.alerts.services import ingest_token_create
from apps.core.models import Event
from apps.maintenance.services import window_create
from apps.tickets.choices import TicketStatus
from apps.tickets.models import Ticket, TicketMessage
from tests.conftest import wait_for
from tests.factories.alerts import EscalationPolicyFactory
from tests.factories.targets import make_credential, make_job, make_target

WEBHOOK = "/api/v1/alerts/ingest/alertmanager"


def _iso(dt):
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _webhook(status, instance, starts, ends=None, name="ServiceDown"):
    alert = {"status": status, "labels": {"alertname": name, "instance": instance, "severity": "critical", "service": "web"},
             "annotations": {"summary": f"web down on {instance}", "description": "HTTP probe failed"},
             "startsAt": _iso(starts), "endsAt": _iso(ends) if ends else "0001-01-01T00:00:00Z",
             "generatorURL": "http://prom/graph", "fingerprint": "abc"}
    return {"version": "4", "groupKey": "{}:{}", "truncatedAlerts": 0, "status": status, "receiver": "portal",
            "groupLabels": {"alertname": name}, "commonLabels": alert["labels"], "commonAnnotations": {},
            "externalURL": "http://am", "alerts": [alert]}


@pytest.fixture
def incident_setup(world, sshd, tmp_path):
    tenant = world.tenant("a")
    cred = make_credential(tenant, username=sshd.user, secret=sshd.key)
    make_target(tenant, name="web-1", port=sshd.port, credential=cred)
    marker = tmp_path / "restarted"
    job = make_job(tenant, name="restart web", parameters_schema={"type": "object", "properties": {"service": {"type": "string"}}},
                   steps=[{"name": "restart", "type": "ssh.exec",
                           "command": f"echo restarting {{{{ service }}}} on {{{{ target.name }}}}; touch {marker}; test {{{{ service }}}} = web"}])
    rule = AlertRule.objects.create(
        tenant=tenant, name="web incidents", rule_type="alert",
        conditions={"label_matchers": [{"name": "service", "op": "=", "value": "web"}]},
        actions=[{"type": "open_ticket", "dedup_labels": ["service"]},
                 {"type": "run_job", "job_id": job.pk, "parameter_labels": {"service": "service"}, "target_label": "instance"}],
    )
    rule.full_clean()
    EscalationPolicyFactory(tenant=tenant, name="on-call", steps=[{"wait_minutes": 30, "roles": ["operator"]}], min_severity="warning")
    token = ingest_token_create(actor=None, tenant=tenant, name="am")[1]
    return tenant, job, rule, token, marker


def test_alert_to_ticket_to_runbook_to_resolution_on_real_worker_and_sshd(incident_setup, api, celery_worker):
    tenant, job, rule, token, marker = incident_setup
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    started = datetime.now(UTC) - timedelta(minutes=3)
    assert api.post(WEBHOOK, _webhook("firing", "web-1", started), format="json").status_code == 200

    alert = Alert.objects.get(labels__instance="web-1")
    ticket = wait_for(lambda: Ticket.objects.filter(tenant=tenant, metadata__incident__alert_id=alert.pk).first())
    assert ticket.priority == "critical" and "incident" in ticket.tags
    assert abs((ticket.sla_started_at - alert.first_seen).total_seconds()) < 1  # clock from the alert, not from now
    assert ticket.metadata["incident"]["labels"]["instance"] == "web-1"
    assert ticket.metadata["incident"]["annotations"]["summary"] == "web down on web-1"
    req = wait_for(lambda: RunbookRequest.objects.filter(alert=alert, status=RunbookStatus.SUCCEEDED).first(), timeout=30)
    assert marker.exists()  # the command really ran over SSH
    assert req.params == {"service": "web"} and "restarting web on web-1" in req.summary.replace("'", "")
    alert.refresh_from_db()
    assert alert.ticket_id == ticket.pk and any("started" in e["text"] for e in alert.metadata["runbook_log"])

    # A second alert of the same incident (another instance, same dedup key) links to the same ticket.
    api.post(WEBHOOK, _webhook("firing", "web-2", started), format="json")
    second = Alert.objects.get(labels__instance="web-2")
    wait_for(lambda: Alert.objects.get(pk=second.pk).ticket_id == ticket.pk)
    assert Ticket.objects.filter(tenant=tenant).count() == 1

    # Both resolve at the source → the ticket resolves with a customer-visible summary.
    for inst in ("web-1", "web-2"):
        api.post(WEBHOOK, _webhook("resolved", inst, started, ends=datetime.now(UTC) - timedelta(seconds=1)), format="json")
    wait_for(lambda: Ticket.objects.get(pk=ticket.pk).status == TicketStatus.RESOLVED, timeout=20)
    public = TicketMessage.objects.filter(ticket=ticket, is_internal=False).order_by("created_at").last()
    assert "has been resolved" in public.body and "restart web" in public.body and "exit" not in public.body
    notes = list(TicketMessage.objects.filter(ticket=ticket, is_internal=True).values_list("body", flat=True))
    assert any("queued as run" in n for n in notes) and any("succeeded" in n and "web-1" in n for n in notes)
    # the timeline tells the story in order
    names = list(Event.objects.filter(tenant=tenant).order_by("created_at").values_list("name", flat=True))
    order = ["alert.fired", "ticket.created", "alert.ticket_linked", "job_run.started", "job_run.succeeded", "alert.resolved", "ticket.resolved"]
    positions = [names.index(n) for n in order]
    assert positions == sorted(positions), names


def test_failed_runbook_escalates_ticket_and_pages_on_call(incident_setup, api, celery_worker):
    tenant, job, rule, token, marker = incident_setup
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    body = _webhook("firing", "web-1", datetime.now(UTC))
    body["alerts"][0]["labels"]["service"] = "web"
    rule.actions[1]["parameters"] = {}
    rule.actions[1]["parameter_labels"] = {"service": "alertname"}  # "ServiceDown" ≠ web → the step fails
    rule.save()
    api.post(WEBHOOK, body, format="json")
    alert = Alert.objects.get()
    wait_for(lambda: RunbookRequest.objects.filter(alert=alert, status=RunbookStatus.FAILED).exists(), timeout=30)
    ticket = wait_for(lambda: Ticket.objects.filter(pk=Alert.objects.get(pk=alert.pk).ticket_id, escalation_level=1).first(), timeout=20)
    assert ticket.status == TicketStatus.ESCALATED
    page = wait_for(lambda: Event.objects.filter(name="alert.escalated", payload__id=alert.pk).first())
    assert page.payload["policy"] == "on-call" and page.payload["notify"]["roles"] == ["operator"]
    assert "failed" in page.payload["reason"]
    # resolving the alert does not resolve a ticket whose runbook failed
    api.post(WEBHOOK, _webhook("resolved", "web-1", datetime.now(UTC) - timedelta(minutes=1), ends=datetime.now(UTC)), format="json")
    wait_for(lambda: Alert.objects.get(pk=alert.pk).status == AlertStatus.RESOLVED)
    wait_for(lambda: TicketMessage.objects.filter(ticket=ticket, body__contains="left open for a person").exists())
    assert Ticket.objects.get(pk=ticket.pk).status == TicketStatus.ESCALATED


def test_maintenance_window_opens_nothing_and_notifies_no_one(incident_setup, api, celery_worker):
    tenant, job, rule, token, marker = incident_setup
    now = datetime.now(UTC)
    window_create(actor=None, tenant_id=tenant.pk, name="web upgrade", starts_at=now - timedelta(minutes=1),
                  ends_at=now + timedelta(hours=1), scope="objects", label_matchers={"service": "web"})
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    r = api.post(WEBHOOK, _webhook("firing", "web-1", now), format="json")
    assert r.json()["silenced"] == 1
    alert = Alert.objects.get()
    assert alert.silenced
    wait_for(lambda: not Event.objects.filter(status="pending").exists())
    assert not Ticket.objects.exists() and not RunbookRequest.objects.exists() and not marker.exists()
    assert not Event.objects.filter(name__startswith="alert.", payload__has_key="notify").exists()
