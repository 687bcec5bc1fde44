"""Events that raise or resolve alerts (docs/events.md conventions: id, object_type, title,
url; tickets add `priority`, optionally `assignee_id`). All idempotent: a repeated event
counts another occurrence of the same open alert (dedup by type + resource)."""

from __future__ import annotations

from apps.core.events import subscribe

from .checks import rules_for_event, sla_rule_for
from .choices import AlertSource, AlertType, Severity
from .services import alert_raise, alerts_resolve_for_resource

TICKET = "tickets.ticket"


# Labels an alert computes itself; an event's labels never override them.
RESERVED_LABELS = ("alertname", "severity", "resource_type", "resource_id")


def _event_labels(payload: dict) -> dict:
    """The labels an event carries about its object (e.g. an endpoint's `service`/`instance`),
    so rules can match them, incidents dedup on them and runbooks map targets from them."""
    labels = payload.get("labels")
    if not isinstance(labels, dict):
        return {}
    return {str(k): str(v) for k, v in labels.items() if str(k) not in RESERVED_LABELS and v is not None}


def _raise_from(event, alert_type: str, severity: str, *, title_prefix: str, rule=None, with_labels: bool = False) -> None:
    p = event.payload or {}
    if not event.tenant_id or p.get("id") is None:
        return
    from django.contrib.auth import get_user_model

    assignee = None
    if p.get("assignee_id"):
        assignee = get_user_model().objects.filter(pk=p["assignee_id"]).first()
    cfg = (rule.alert_config if rule else {}) or {}
    alert_raise(
        tenant=event.tenant_id, alert_type=alert_type, severity=cfg.get("severity", severity),
        title=f"{title_prefix}: {p.get('title') or p.get('object_type')} ",
        message=cfg.get("message", "") or str(p.get("message", "")),
        resource_type=str(p.get("object_type", "")), resource_id=str(p["id"]), assigned_to=assignee,
        labels={**(_event_labels(p) if with_labels else {}), **{k: str(p[k]) for k in ("priority",) if p.get(k)}},
        source=AlertSource.EVENT, rule=rule,
        metadata={"event": event.name, "url": p.get("url", ""), "event_id": str(event.pk)},
    )


@subscribe("ticket.sla_at_risk")
def ticket_sla_at_risk(event) -> None:
    rule = sla_rule_for(event.tenant_id, "at_risk", (event.payload or {}).get("priority"))
    _raise_from(event, AlertType.SLA_AT_RISK, Severity.WARNING, title_prefix="SLA at risk", rule=rule)


@subscribe("ticket.sla_breached")
def ticket_sla_breached(event) -> None:
    p = event.payload or {}
    rule = sla_rule_for(event.tenant_id, "breached", p.get("priority"))
    _raise_from(event, AlertType.SLA_BREACHED, Severity.CRITICAL, title_prefix="SLA breached", rule=rule)
    if event.tenant_id and p.get("id") is not None:
        alerts_resolve_for_resource(tenant=event.tenant_id, alert_types=[AlertType.SLA_AT_RISK], resource_type=str(p.get("object_type", TICKET)),
                                    resource_id=p["id"], reason="Superseded by the breach alert.")


@subscribe("ticket.created")
def ticket_created(event) -> None:
    if (event.payload or {}).get("priority") == "critical":
        _raise_from(event, AlertType.CRITICAL_TICKET, Severity.CRITICAL, title_prefix="Critical ticket")


@subscribe("ticket.priority_changed")
def ticket_priority_changed(event) -> None:
    """A ticket raised to critical after its creation: the same alert as a critical new ticket."""
    p = event.payload or {}
    if p.get("priority") == "critical" and p.get("old_priority") != "critical":
        _raise_from(event, AlertType.CRITICAL_TICKET, Severity.CRITICAL, title_prefix="Critical ticket")


@subscribe("ticket.escalated")
def ticket_escalated(event) -> None:
    _raise_from(event, AlertType.ESCALATED_TICKET, Severity.WARNING, title_prefix="Ticket escalated")


@subscribe("ticket.resolved")
def ticket_resolved(event) -> None:
    p = event.payload or {}
    if event.tenant_id and p.get("id") is not None:
        alerts_resolve_for_resource(
            tenant=event.tenant_id, resource_type=str(p.get("object_type", TICKET)), resource_id=p["id"], reason="Ticket resolved.",
            alert_types=[AlertType.SLA_AT_RISK, AlertType.SLA_BREACHED, AlertType.CRITICAL_TICKET, AlertType.ESCALATED_TICKET, AlertType.UNASSIGNED_CRITICAL],
        )


@subscribe("job_run.failed")
def job_run_failed(event) -> None:
    _raise_from(event, AlertType.JOB_FAILED, Severity.WARNING, title_prefix="Job failed")


JOB_SCHEDULE = "targets.jobschedule"


@subscribe("job_schedule.missed")
def job_schedule_missed(event) -> None:
    """A scheduled run did not start within its grace time: an alert on the schedule (one per
    schedule while open; acknowledged and escalated like any alert)."""
    _raise_from(event, AlertType.SCHEDULE_MISSED, Severity.WARNING, title_prefix="Scheduled run missed")


@subscribe("job_run.succeeded")
def job_run_succeeded(event) -> None:
    """The schedule's next run succeeded: its missed-run alert resolves."""
    p = event.payload or {}
    if event.tenant_id and p.get("schedule_id") is not None and not p.get("check_mode"):
        alerts_resolve_for_resource(tenant=event.tenant_id, alert_types=[AlertType.SCHEDULE_MISSED], resource_type=JOB_SCHEDULE,
                                    resource_id=p["schedule_id"], reason=f"Run #{p.get('id')} of the schedule succeeded.")


ONCALL_SCHEDULE = "oncall.schedule"


@subscribe("oncall.gap_found")
def oncall_gap_found(event) -> None:
    """Nobody is on call somewhere within the next 7 days of a schedule (apps/oncall's periodic
    check): one alert per schedule while open; the event itself tells the schedule's owners."""
    _raise_from(event, AlertType.ONCALL_GAP, Severity.WARNING, title_prefix="On-call gap")


@subscribe("oncall.gap_closed")
def oncall_gap_closed(event) -> None:
    p = event.payload or {}
    if event.tenant_id and p.get("id") is not None:
        alerts_resolve_for_resource(tenant=event.tenant_id, alert_types=[AlertType.ONCALL_GAP], resource_type=ONCALL_SCHEDULE,
                                    resource_id=p["id"], reason="The schedule has someone on call for the next 7 days again.")


@subscribe("endpoint.down")
def endpoint_down(event) -> None:
    _raise_from(event, AlertType.ENDPOINT_DOWN, Severity.CRITICAL, title_prefix="Endpoint down", with_labels=True)


@subscribe("endpoint.degraded")
def endpoint_degraded(event) -> None:
    _raise_from(event, AlertType.ENDPOINT_DOWN, Severity.WARNING, title_prefix="Endpoint degraded", with_labels=True)


@subscribe("endpoint.up")
def endpoint_up(event) -> None:
    p = event.payload or {}
    if event.tenant_id and p.get("id") is not None:
        alerts_resolve_for_resource(tenant=event.tenant_id, alert_types=[AlertType.ENDPOINT_DOWN],
                                    resource_type=str(p.get("object_type", "")), resource_id=p["id"], reason="Endpoint is up again.")


TREND_RULE = "monitoring.trendrule"


@subscribe("endpoint.trend_breached")
def endpoint_trend_breached(event) -> None:
    """A monitoring trend rule breached (p95 over budget, certificate expiring): an
    `endpoint_trend` alert with the endpoint's and the rule's labels, so `alert` rules can match
    it and their actions open a ticket or run a job (incident_on_fired) before a hard failure."""
    p = event.payload or {}
    if not event.tenant_id or p.get("id") is None:
        return
    labels = {str(k): str(v) for k, v in (p.get("labels") or {}).items()}
    labels.update({"endpoint": str(p.get("endpoint", "")), "trend": str(p.get("trend", ""))})
    severity = p.get("severity") if p.get("severity") in Severity.values else Severity.WARNING
    alert_raise(
        tenant=event.tenant_id, alert_type=AlertType.ENDPOINT_TREND, severity=severity, title=str(p.get("title") or p.get("rule")),
        message=str(p.get("reason", "")), resource_type=TREND_RULE, resource_id=str(p["id"]), labels=labels,
        source=AlertSource.EVENT,
        metadata={"event": event.name, "url": p.get("url", ""), "event_id": str(event.pk), "endpoint_id": p.get("endpoint_id"),
                  "value": p.get("value"), "threshold": p.get("threshold"), "unit": p.get("unit")},
    )


@subscribe("endpoint.trend_recovered")
def endpoint_trend_recovered(event) -> None:
    """The trend is back within its budget (or the rule went away): the alert resolves, and with
    it the incident ticket (incident_on_resolved)."""
    p = event.payload or {}
    if event.tenant_id and p.get("id") is not None:
        alerts_resolve_for_resource(tenant=event.tenant_id, alert_types=[AlertType.ENDPOINT_TREND], resource_type=TREND_RULE,
                                    resource_id=p["id"], reason=str(p.get("title") or "Trend recovered."))


@subscribe("*")
def event_rules(event) -> None:
    """User-defined `event` rules; our own alert.* / silence.* events never trigger rules."""
    if event.name.startswith(("alert.", "silence.")):
        return
    rules_for_event(event)


# -- incident loop (apps/alerts/incident.py) -------------------------------------------------
def _alert_ids(payload: dict) -> list[int]:
    ids = payload.get("alert_ids") or ([payload["id"]] if payload.get("id") is not None else [])
    return [int(i) for i in ids]


@subscribe("alert.fired")
def incident_on_fired(event) -> None:
    """Run the open_ticket / run_job actions of matching rules for each newly fired alert."""
    from .incident import incident_actions_run

    p = event.payload or {}
    if p.get("silenced"):
        return
    for alert_id in _alert_ids(p):
        incident_actions_run(alert_id=alert_id, since=event.created_at)


@subscribe("alert.resolved")
def incident_on_resolved(event) -> None:
    """A resolved alert may close its incident (when its runbook succeeded or it had none)."""
    from .incident import incident_try_resolve
    from .models import Alert

    p = event.payload or {}
    ids = p.get("ticket_alert_ids") if "ticket_alert_ids" in p else _alert_ids(p)
    for ticket_id in set(Alert.objects.filter(pk__in=ids or [], ticket__isnull=False).values_list("ticket_id", flat=True)):
        incident_try_resolve(ticket_id=ticket_id)


@subscribe("job_run.started")
def runbook_started(event) -> None:
    from .incident import runbook_run_started

    if (event.payload or {}).get("id") is not None:
        runbook_run_started(run_id=event.payload["id"])


@subscribe("job_run.succeeded")
@subscribe("job_run.failed")
@subscribe("job_run.cancelled")
def runbook_finished(event) -> None:
    from .incident import runbook_run_finished

    if (event.payload or {}).get("id") is not None:
        runbook_run_finished(run_id=event.payload["id"])
