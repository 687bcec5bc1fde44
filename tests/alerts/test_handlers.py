"""Events published by other apps (by name and payload only) raise and resolve alerts."""

import pytest

from apps.alerts.choices import AlertStatus, AlertType, Severity
from apps.alerts.models import Alert, AlertRule
from apps.core.events import publish
from apps.core.services import event_dispatch

pytestmark = pytest.mark.django_db


def _emit(name, tenant, **payload):
    event = publish(name, tenant=tenant, payload=payload)
    event_dispatch(event_id=event.pk)
    event.refresh_from_db()
    assert event.status == "dispatched", event.last_error
    return event


def _ticket(pk=7, **extra):
    return {"id": pk, "object_type": "tickets.ticket", "title": f"TCK-{pk}", "url": f"/admin/tickets/ticket/{pk}/change/", **extra}


def test_sla_at_risk_then_breached(world):
    t = world.tenant("a")
    agent = world.user("a", "support_agent")
    _emit("ticket.sla_at_risk", t, **_ticket(priority="high", assignee_id=agent.pk))
    _emit("ticket.sla_at_risk", t, **_ticket(priority="high", assignee_id=agent.pk))
    risk = Alert.objects.get(alert_type=AlertType.SLA_AT_RISK)
    assert risk.occurrences == 2 and risk.assigned_to == agent and risk.resource_id == "7"
    _emit("ticket.sla_breached", t, **_ticket(priority="high"))
    risk.refresh_from_db()
    assert risk.status == AlertStatus.RESOLVED
    assert Alert.objects.get(alert_type=AlertType.SLA_BREACHED).severity == Severity.CRITICAL


def test_sla_rule_tunes_severity_by_priority(world):
    t = world.tenant("a")
    AlertRule.objects.create(tenant=t, name="urgent risk", rule_type="sla", conditions={"on": ["at_risk"], "priorities": ["urgent"]},
                             alert_config={"severity": "critical"}, actions=[{"type": "notify", "user_ids": [world.user("a", "owner").pk]}])
    _emit("ticket.sla_at_risk", t, **_ticket(pk=1, priority="urgent"))
    _emit("ticket.sla_at_risk", t, **_ticket(pk=2, priority="low"))
    assert Alert.objects.get(resource_id="1").severity == Severity.CRITICAL
    assert Alert.objects.get(resource_id="2").severity == Severity.WARNING


def test_only_critical_tickets_raise_on_creation(world):
    t = world.tenant("a")
    _emit("ticket.created", t, **_ticket(pk=1, priority="normal"))
    _emit("ticket.created", t, **_ticket(pk=2, priority="critical"))
    assert list(Alert.objects.values_list("alert_type", "resource_id")) == [(AlertType.CRITICAL_TICKET, "2")]


def test_ticket_escalated_and_job_failed(world):
    t = world.tenant("a")
    _emit("ticket.escalated", t, **_ticket())
    _emit("job_run.failed", t, id=3, object_type="targets.jobrun", title="backup on web-1 failed", url="/admin/targets/jobrun/3/change/")
    assert set(Alert.objects.values_list("alert_type", flat=True)) == {AlertType.ESCALATED_TICKET, AlertType.JOB_FAILED}


def test_endpoint_degraded_down_up(world):
    t = world.tenant("a")
    ep = {"id": 4, "object_type": "monitoring.endpoint", "title": "https://shop", "url": "/admin/monitoring/endpoint/4/change/"}
    _emit("endpoint.degraded", t, **ep)
    _emit("endpoint.down", t, **ep)
    alert = Alert.objects.get()
    assert alert.severity == Severity.CRITICAL and alert.occurrences == 2
    _emit("endpoint.up", t, **ep)
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED
    assert alert.tenant == t


def test_event_rule_raises_custom_alert(world):
    t = world.tenant("a")
    AlertRule.objects.create(tenant=t, name="deploys", rule_type="event", conditions={"event": "operation.*", "match": {"kind": "destroy"}},
                             alert_config={"severity": "info", "title": "Destroy ran"})
    _emit("operation.succeeded", t, id=1, object_type="deployments.operation", title="op 1", kind="upgrade")
    assert not Alert.objects.exists()
    _emit("operation.succeeded", t, id=2, object_type="deployments.operation", title="op 2", kind="destroy")
    alert = Alert.objects.get()
    assert alert.title == "Destroy ran: op 2" and alert.severity == Severity.INFO and alert.rule.name == "deploys"


def test_events_of_another_tenant_stay_there(world):
    _emit("endpoint.down", world.tenant("b"), id=4, object_type="monitoring.endpoint", title="x")
    assert Alert.objects.get().tenant == world.tenant("b")


def test_endpoint_labels_reach_the_alert_but_never_override_its_own(world):
    """Rules match, incidents dedup and runbooks map targets on the endpoint's labels."""
    t = world.tenant("a")
    ep = {"id": 5, "object_type": "monitoring.endpoint", "title": "web health is down", "url": "/admin/monitoring/endpoint/5/change/",
          "labels": {"service": "web", "instance": "web-1", "severity": "info", "alertname": "mine"}}
    _emit("endpoint.down", t, **ep)
    alert = Alert.objects.get()
    assert alert.labels["service"] == "web" and alert.labels["instance"] == "web-1"
    assert alert.labels["alertname"] == AlertType.ENDPOINT_DOWN and alert.labels["severity"] == Severity.CRITICAL
    assert alert.labels["resource_type"] == "monitoring.endpoint" and alert.labels["resource_id"] == "5"
    # tickets' events carry no labels of their object: unchanged
    _emit("ticket.escalated", t, **_ticket(labels={"service": "web"}))
    assert "service" not in Alert.objects.get(alert_type=AlertType.ESCALATED_TICKET).labels
