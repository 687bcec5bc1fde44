"""The incident loop: alert → ticket → runbook job → resolution (issue 10).

Alerts are the top layer: this module calls the tickets services (open, link, note, resolve,
escalate) and the targets services (start a runbook run); tickets and targets only publish
events (`job_run.*`), which `handlers.py` routes here.

- `alert_open_ticket`: opens a ticket for the alert's tenant — or links the alert to the open
  ticket with the same dedup key (default: the alert's fingerprint; a rule may name label names)
  — with the SLA clock starting at the alert's first_seen, priority from the severity and the
  alert's labels, annotations and related object in `ticket.metadata["incident"]`.
- `runbook_request`: a job run for the alert with parameters and targets mapped from labels,
  started at once or after a second person approves (`runbook_approve`).
- `runbook_finished`: the run's summary goes to the ticket (internal note) and the alert; success
  with every linked alert resolved resolves the ticket with a customer-visible summary; failure
  escalates the ticket one level and fires the on-call step of the alert's escalation policy.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from apps.core.events import publish
from apps.core.policy import policy

from .choices import (
    RUNBOOK_OPEN_STATUSES,
    SEVERITY_RANK,
    SEVERITY_TICKET_PRIORITY,
    AlertStatus,
    RuleType,
    RunbookStatus,
    Severity,
)
from .matching import matches_all
from .models import Alert, AlertRule, RunbookRequest

log = logging.getLogger(__name__)
DEDUP_LOCK_NAMESPACE = 7411  # pg_advisory_xact_lock(namespace, hash(tenant, dedup key))
OUTPUT_LINES = 8


def _require(actor, action: str, obj) -> None:
    if actor is not None and not policy.allows_object(actor, action, obj):
        raise PermissionDenied(f"Your role does not allow you to {action.replace('_', ' ')} for this alert.")


def _who(actor) -> str:
    return getattr(actor, "username", None) or "the system"


# -- alert → ticket --------------------------------------------------------------------------
def dedup_key(alert: Alert, dedup_labels: list[str] | None = None) -> str:
    """The incident key: the chosen labels' values (e.g. alertname + instance), else the alert's
    fingerprint. Alerts with the same key share one open ticket."""
    if dedup_labels:
        return "labels:" + ",".join(f"{name}={alert.labels.get(name, '')}" for name in dedup_labels)
    return f"fp:{alert.fingerprint}"


def _lock_key(tenant_id: int, key: str) -> None:
    if connection.vendor == "postgresql":
        digest = int.from_bytes(hashlib.sha256(f"{tenant_id}:{key}".encode()).digest()[:4], "big", signed=True)
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", [DEDUP_LOCK_NAMESPACE, digest])


def _ticket_body(alert: Alert) -> str:
    lines = [alert.title, ""]
    if alert.message:
        lines += [alert.message, ""]
    lines.append(f"Severity: {alert.severity}; first seen {alert.first_seen:%Y-%m-%d %H:%M:%S} UTC.")
    if alert.resource_type:
        lines.append(f"Related object: {alert.resource_type} #{alert.resource_id}")
    if alert.labels:
        lines.append("Labels: " + ", ".join(f"{k}={v}" for k, v in sorted(alert.labels.items())))
    for key, value in sorted((alert.annotations or {}).items()):
        lines.append(f"{key}: {value}")
    return "\n".join(lines)


def _incident_metadata(alert: Alert, key: str, actor) -> dict:
    return {
        "dedup_key": key,
        "alert_id": alert.pk,
        "fingerprint": alert.fingerprint,
        "severity": alert.severity,
        "labels": dict(alert.labels or {}),
        "annotations": dict(alert.annotations or {}),
        "related": {"type": alert.resource_type, "id": alert.resource_id} if alert.resource_type else {},
        "opened_by_id": getattr(actor, "pk", None),
    }


def alert_open_ticket(alert: Alert, *, actor, priority: str | None = None, subject: str = "", assignee_id: int | None = None,
                      dedup_labels: list[str] | None = None) -> tuple:
    """Open (or link to) the incident ticket of an alert. Returns (ticket, opened: bool).

    The ticket is opened by the system for the tenant (so it is the tenant's own work item,
    routed to the tenant); the person who asked is recorded in the metadata and the timeline."""
    from apps.tickets import services as tickets
    from apps.tickets.choices import OPEN_STATUSES
    from apps.tickets.models import Ticket

    _require(actor, "open_ticket", alert)
    with transaction.atomic():
        alert = Alert.objects.select_for_update().select_related("tenant").get(pk=alert.pk)
        if alert.ticket_id and Ticket.objects.filter(pk=alert.ticket_id, status__in=list(OPEN_STATUSES)).exists():
            return alert.ticket, False
        key = dedup_key(alert, dedup_labels)
        _lock_key(alert.tenant_id, key)
        ticket = (
            Ticket.objects.filter(tenant_id=alert.tenant_id, status__in=list(OPEN_STATUSES), metadata__incident__dedup_key=key)
            .order_by("created_at").first()
        )
        opened = ticket is None
        if opened:
            ticket = tickets.ticket_create(
                actor=None, tenant=alert.tenant_id, subject=(subject or f"[{alert.severity}] {alert.title}")[:300],
                message=_ticket_body(alert), priority=priority or SEVERITY_TICKET_PRIORITY[Severity(alert.severity)],
                metadata={"incident": _incident_metadata(alert, key, actor)},
                tags=["incident", str(alert.labels.get("alertname", alert.alert_type))[:50]],
                sla_started_at=alert.first_seen,
            )
            if assignee_id:
                from django.contrib.auth import get_user_model

                user = get_user_model().objects.filter(pk=assignee_id).first()
                if user is not None:
                    try:
                        tickets.ticket_assign(ticket, actor=None, assignee=user)
                    except ValidationError:
                        log.warning("rule assignee %s is not eligible for %s", assignee_id, ticket.number)
        else:
            tickets.ticket_reply(ticket, actor=None, is_internal=True,
                                 body=f"Alert #{alert.pk} linked to this incident ({alert.title}), by {_who(actor)}.")
        alert.ticket = ticket
        alert.metadata = {**alert.metadata, "ticket_number": ticket.number}
        alert.save(update_fields=["ticket", "metadata", "updated_at"])
        publish("alert.ticket_linked", tenant=alert.tenant_id, actor=actor, payload={
            "id": alert.pk, "object_type": "alerts.alert", "title": f"{'Opened' if opened else 'Linked to'} {ticket.number} for: {alert.title}",
            "url": f"/admin/alerts/alert/{alert.pk}/change/", "ticket_id": ticket.pk, "ticket_number": ticket.number,
            "opened": opened, "dedup_key": key, "assigned_to_id": alert.assigned_to_id,
        })
    return ticket, opened


# -- ticket/alert → runbook ------------------------------------------------------------------
def _map_targets(alert: Alert, job, *, target_ids, target_label: str | None) -> list:
    from apps.targets.models import Target

    qs = Target.objects.filter(tenant_id=alert.tenant_id, enabled=True)
    if target_ids:
        return list(qs.filter(pk__in=target_ids))
    value = str(alert.labels.get(target_label or "instance", "") or "")
    if not value:
        return []
    host = value.rsplit(":", 1)[0] if value.count(":") == 1 else value  # "db-1:9100" → "db-1"
    return list(qs.filter(name__in={value, host})) or list(qs.filter(hostname__in={value, host}))


def runbook_request(alert: Alert, *, actor, job, target_ids=None, params: dict | None = None,
                    parameter_labels: dict | None = None, target_label: str | None = None,
                    require_approval: bool = False, rule: AlertRule | None = None) -> RunbookRequest:
    """Ask for a runbook run on behalf of an alert: parameters = the given ones plus
    `parameter_labels` (parameter → label name) from the alert's labels; targets = the given
    ids, else the target named by the alert's `target_label` (default `instance`), else the
    job's defaults. Runs at once, or waits for a second person when approval is required."""
    _require(actor, "run_runbook", alert)
    if job.tenant_id != alert.tenant_id:
        raise ValidationError({"job": "The job belongs to another tenant."})
    if actor is not None and not policy.allows_object(actor, "run", job):
        raise PermissionDenied("Your role does not allow running this job.")
    mapped = dict(params or {})
    missing = []
    for param, label in (parameter_labels or {}).items():
        if label in alert.labels:
            mapped[param] = alert.labels[label]
        else:
            missing.append(label)
    if missing:
        raise ValidationError({"parameter_labels": f"The alert has no label(s) {', '.join(sorted(missing))}."})
    targets = _map_targets(alert, job, target_ids=target_ids, target_label=target_label)
    if (target_ids or target_label) and not targets and not job.default_targets.exists():
        raise ValidationError({"targets": f"No enabled target matches {'the ids' if target_ids else repr(alert.labels.get(target_label or 'instance', ''))}."})
    with transaction.atomic():
        req = RunbookRequest(
            tenant_id=alert.tenant_id, alert=alert, ticket_id=alert.ticket_id, rule=rule, job=job,
            target_ids=[t.pk for t in targets], params=mapped, requires_approval=require_approval,
            requested_by=actor if actor is not None else (rule.created_by if rule else None),
            status=RunbookStatus.PENDING_APPROVAL if require_approval else RunbookStatus.QUEUED,
        )
        req.full_clean()
        req.save()
        if require_approval:
            _note(req, f"Runbook '{job.name}' requested by {_who(req.requested_by)}; waiting for approval by a second person "
                       f"(params {mapped or '{}'}, targets {', '.join(t.name for t in targets) or 'job defaults'}).")
            title = f"Approve runbook '{job.name}' for: {alert.title}"
            publish("runbook.approval_requested", tenant=alert.tenant_id, actor=actor, payload={
                **_payload(req, title=title),
                "notify": {"type": "runbook_approval", "priority": "high", "title": title, "roles": ["owner", "admin", "operator"],
                           "user_ids": [], "action_url": f"/admin/alerts/runbookrequest/{req.pk}/change/", "action_label": "Review"},
            })
        else:
            _start(req, actor=actor)
    return req


def _payload(req: RunbookRequest, **extra) -> dict:
    return {"id": req.pk, "object_type": "alerts.runbookrequest", "title": f"Runbook {req.job.name} for alert #{req.alert_id}",
            "url": f"/admin/alerts/runbookrequest/{req.pk}/change/", "alert_id": req.alert_id, "ticket_id": req.ticket_id,
            "job_id": req.job_id, "status": req.status, "run_id": req.run_id, **extra}


def _start(req: RunbookRequest, *, actor) -> None:
    from apps.targets.choices import Trigger
    from apps.targets.models import Target
    from apps.targets.services import job_run_create

    targets = list(Target.objects.filter(pk__in=req.target_ids)) if req.target_ids else None
    try:
        with transaction.atomic():
            run = job_run_create(req.job, actor=actor, params=req.params, targets=targets, trigger=Trigger.ALERT_RULE)
    except ValidationError as exc:
        req.status, req.finished_at = RunbookStatus.FAILED, timezone.now()
        req.summary = f"The runbook could not start: {'; '.join(exc.messages)}"
        req.save(update_fields=["status", "finished_at", "summary", "updated_at"])
        _note(req, req.summary)
        transaction.on_commit(lambda: runbook_finished_task_safe(req.pk))
        return
    req.run, req.status = run, RunbookStatus.QUEUED
    req.save(update_fields=["run", "status", "updated_at"])
    _note(req, f"Runbook '{req.job.name}' queued as run #{run.pk} on {run.target_count} target(s) by {_who(actor)}.")


def runbook_finished_task_safe(req_id: int) -> None:
    """Apply the outcome of a request that failed before a run existed (the failure path)."""
    req = RunbookRequest.objects.select_related("alert", "job").filter(pk=req_id).first()
    if req is not None:
        _after_outcome(req)


def runbook_approve(req: RunbookRequest, *, actor) -> RunbookRequest:
    """A second person approves a pending runbook request; the run starts."""
    _require(actor, "approve", req)
    with transaction.atomic():
        req = RunbookRequest.objects.select_for_update(of=("self",)).select_related("job", "alert").get(pk=req.pk)
        if req.status != RunbookStatus.PENDING_APPROVAL:
            raise ValidationError(f"This request is {req.get_status_display().lower()}, not waiting for approval.")
        if actor is not None and req.requested_by_id == actor.pk:
            raise PermissionDenied("A second person must approve this runbook; you requested it.")
        if actor is not None and not policy.allows_object(actor, "run", req.job):
            raise PermissionDenied("Your role does not allow running this job.")
        req.decided_by, req.decided_at = actor, timezone.now()
        req.save(update_fields=["decided_by", "decided_at", "updated_at"])
        _note(req, f"Runbook '{req.job.name}' approved by {_who(actor)}.")
        _start(req, actor=actor)
    return req


def runbook_reject(req: RunbookRequest, *, actor, reason: str = "") -> RunbookRequest:
    """Reject a pending runbook request (nothing runs)."""
    _require(actor, "reject", req)
    with transaction.atomic():
        req = RunbookRequest.objects.select_for_update(of=("self",)).select_related("job").get(pk=req.pk)
        if req.status != RunbookStatus.PENDING_APPROVAL:
            raise ValidationError(f"This request is {req.get_status_display().lower()}, not waiting for approval.")
        req.status, req.decided_by, req.decided_at, req.finished_at = RunbookStatus.REJECTED, actor, timezone.now(), timezone.now()
        req.summary = f"Rejected by {_who(actor)}" + (f": {reason}" if reason else ".")
        req.save(update_fields=["status", "decided_by", "decided_at", "finished_at", "summary", "updated_at"])
        _note(req, f"Runbook '{req.job.name}' {req.summary[0].lower()}{req.summary[1:]}")
    return req


def _note(req: RunbookRequest, text: str) -> None:
    """Progress goes to the ticket (internal note) and the alert (its runbook log)."""
    from apps.tickets.services import ticket_reply

    if req.ticket_id:
        with contextlib.suppress(ValidationError):  # a closed ticket takes no notes; the alert still gets it
            ticket_reply(req.ticket, actor=None, body=text, is_internal=True)
    entry = {"at": timezone.now().isoformat(), "request_id": req.pk, "text": text[:2000]}
    alert = Alert.objects.select_for_update().get(pk=req.alert_id)
    alert.metadata = {**alert.metadata, "runbook_log": (alert.metadata.get("runbook_log") or [])[-19:] + [entry]}
    alert.save(update_fields=["metadata", "updated_at"])


def run_summary(run) -> str:
    """A short technical summary of a run: status, duration and each target's last lines."""
    from apps.targets.models import JobRunStep

    head = f"Run #{run.pk} of '{run.job.name}' {run.get_status_display().lower()}"
    if run.duration_seconds is not None:
        head += f" in {run.duration_seconds:.1f} s"
    lines = [head + f" ({run.target_count} target(s), {run.failed_target_count} failed)."]
    for step in JobRunStep.objects.filter(run=run).order_by("target_name", "step_index")[:50]:
        lines.append(f"- {step.target_name} / {step.step_name}: {step.status}" + (f" (exit {step.exit_code})" if step.exit_code is not None else ""))
        text = (step.stdout.strip() + ("\n" + step.stderr.strip() if step.stderr.strip() else "")).strip() or step.error.strip()
        for line in text.splitlines()[-OUTPUT_LINES:]:
            lines.append(f"    {line[:300]}")
    if run.error:
        lines.append(f"Error: {run.error.splitlines()[0][:500]}")
    return "\n".join(lines)


def runbook_run_started(*, run_id: int) -> RunbookRequest | None:
    """job_run.started: the request is running; a note says so."""
    with transaction.atomic():
        req = RunbookRequest.objects.select_for_update(of=("self",)).select_related("job", "ticket").filter(run_id=run_id).first()
        if req is None or req.status != RunbookStatus.QUEUED:
            return req
        req.status = RunbookStatus.RUNNING
        req.save(update_fields=["status", "updated_at"])
        _note(req, f"Runbook run #{run_id} of '{req.job.name}' started.")
    return req


def runbook_run_finished(*, run_id: int) -> RunbookRequest | None:
    """job_run.succeeded/failed/cancelled: record the outcome and summary (once), post them,
    then resolve or escalate the incident."""
    from apps.targets.choices import RunStatus

    with transaction.atomic():
        req = RunbookRequest.objects.select_for_update(of=("self",)).select_related("job", "ticket", "run__job", "alert").filter(run_id=run_id).first()
        if req is None or req.status not in RUNBOOK_OPEN_STATUSES:
            return req
        run = req.run
        req.status = {RunStatus.SUCCEEDED: RunbookStatus.SUCCEEDED, RunStatus.CANCELLED: RunbookStatus.CANCELLED}.get(run.status, RunbookStatus.FAILED)
        req.summary = run_summary(run)
        req.finished_at = timezone.now()
        req.save(update_fields=["status", "summary", "finished_at", "updated_at"])
        _note(req, req.summary)
        publish("runbook.finished", tenant=req.tenant_id, payload=_payload(req, title=f"Runbook '{req.job.name}' {req.status} for alert #{req.alert_id}"))
        _after_outcome(req)
    return req


def _after_outcome(req: RunbookRequest) -> None:
    if req.status == RunbookStatus.SUCCEEDED:
        if req.ticket_id:
            incident_try_resolve(ticket_id=req.ticket_id)
    elif req.status == RunbookStatus.FAILED:
        incident_escalate(req)


# -- resolution and escalation ---------------------------------------------------------------
def _customer_summary(ticket, alerts: list[Alert], req: RunbookRequest | None) -> str:
    first = min(a.first_seen for a in alerts)
    last = max(a.resolved_at or timezone.now() for a in alerts)
    minutes = max(1, round((last - first).total_seconds() / 60))
    text = (f"The incident \"{ticket.subject}\" has been resolved.\n"
            f"Detected at {first:%Y-%m-%d %H:%M} UTC, recovered at {last:%Y-%m-%d %H:%M} UTC (about {minutes} min).")
    if req is not None:
        text += f"\nOur automated remediation ({req.job.name}) completed successfully and the service is healthy again."
    return text + "\nNo action is needed on your side. Reply to this ticket if you still notice a problem."


def incident_try_resolve(*, ticket_id: int) -> bool:
    """Resolve an incident ticket when every linked alert is resolved and its latest runbook
    succeeded (or it had none): a customer-visible summary reply, then status resolved. Returns
    whether it resolved the ticket."""
    from apps.tickets.choices import OPEN_STATUSES, TicketStatus
    from apps.tickets.models import Ticket
    from apps.tickets.services import ticket_change_status, ticket_reply

    with transaction.atomic():
        ticket = Ticket.objects.select_for_update().filter(pk=ticket_id, status__in=list(OPEN_STATUSES)).first()
        if ticket is None or not (ticket.metadata or {}).get("incident"):
            return False
        alerts = list(Alert.objects.filter(ticket_id=ticket_id))
        if not alerts or any(a.status != AlertStatus.RESOLVED for a in alerts):
            return False
        reqs = RunbookRequest.objects.filter(ticket_id=ticket_id).select_related("job").order_by("-created_at")
        if reqs.filter(status__in=RUNBOOK_OPEN_STATUSES).exists():
            return False
        latest = reqs.exclude(status=RunbookStatus.REJECTED).first()
        if latest is not None and latest.status != RunbookStatus.SUCCEEDED:
            ticket_reply(ticket, actor=None, is_internal=True,
                         body=f"All alerts resolved, but the last runbook ended {latest.status}; left open for a person.")
            return False
        ticket_reply(ticket, actor=None, is_internal=False, body=_customer_summary(ticket, alerts, latest))
        ticket_change_status(ticket, actor=None, status=TicketStatus.RESOLVED, note="alerts resolved" + (" and runbook succeeded" if latest else ""))
    return True


def incident_escalate(req: RunbookRequest) -> None:
    """A failed runbook: the ticket goes one level up and the alert's on-call step fires now."""
    from apps.tickets.models import Ticket
    from apps.tickets.services import ticket_escalate, ticket_reply

    from .services import alert_escalate_now

    reason = f"Runbook '{req.job.name}' failed" + (f" (run #{req.run_id})" if req.run_id else "")
    if req.ticket_id:
        ticket = Ticket.objects.get(pk=req.ticket_id)
        if ticket.escalation_level < 3:
            ticket_escalate(ticket, actor=None, level=ticket.escalation_level + 1, reason=reason)
        else:
            ticket_reply(ticket, actor=None, is_internal=True, body=f"{reason}; the ticket is already at the highest level.")
    alert_escalate_now(req.alert, reason=reason)


# -- rule actions ----------------------------------------------------------------------------
def _rule_matches(rule: AlertRule, alert: Alert) -> bool:
    cond = rule.conditions or {}
    if cond.get("alert_types") and alert.alert_type not in cond["alert_types"]:
        return False
    if cond.get("min_severity") and SEVERITY_RANK[Severity(alert.severity)] < SEVERITY_RANK[Severity(cond["min_severity"])]:
        return False
    return matches_all(cond.get("label_matchers") or [], alert.labels)


def incident_rules_for(alert: Alert) -> list[AlertRule]:
    """The rules whose actions run for a newly fired alert: the rule that raised it, then the
    tenant's enabled `alert` rules matching it (by name)."""
    rules = [alert.rule] if alert.rule_id and alert.rule and alert.rule.enabled else []
    for rule in AlertRule.objects.filter(tenant_id=alert.tenant_id, rule_type=RuleType.ALERT, enabled=True).order_by("name"):
        if rule.pk != alert.rule_id and _rule_matches(rule, alert):
            rules.append(rule)
    return rules


def _same_runbook_in_flight(alert: Alert, job, action: dict) -> bool:
    """A second alert linked to an incident whose runbook (same job, same targets) is still
    pending, queued or running does not start it again: the run in flight is the remediation
    (and the job's overlap policy would refuse it, failing and escalating a healthy incident).
    Nor does one within ALERTS_RUNBOOK_SETTLE_SECONDS of that runbook's success: its remedy is
    taking effect (a restarted service still starting would be restarted twice). The ticket gets
    a note. The dedup lock in `alert_open_ticket` orders the two alerts, so the first one's
    request is committed before the second one gets here."""
    if not alert.ticket_id:
        return False
    targets = {t.pk for t in _map_targets(alert, job, target_ids=action.get("target_ids"), target_label=action.get("target_label"))}
    settled = timezone.now() - timedelta(seconds=settings.ALERTS_RUNBOOK_SETTLE_SECONDS)
    recent = Q(status__in=RUNBOOK_OPEN_STATUSES) | Q(status=RunbookStatus.SUCCEEDED, finished_at__gt=settled)
    for req in RunbookRequest.objects.filter(recent, ticket_id=alert.ticket_id, job=job).order_by("created_at"):
        if set(req.target_ids or []) == targets:
            from apps.tickets.services import ticket_reply

            state = (f"succeeded {int((timezone.now() - req.finished_at).total_seconds())} s ago" if req.status == RunbookStatus.SUCCEEDED
                     else f"already {req.status}")
            with contextlib.suppress(ValidationError):
                ticket_reply(alert.ticket, actor=None, is_internal=True,
                             body=f"Alert #{alert.pk}: runbook '{job.name}' {state} for this incident "
                                  f"(request #{req.pk}); not started again.")
            return True
    return False


def incident_actions_run(*, alert_id: int, since=None) -> dict:
    """Run the `open_ticket` and `run_job` actions of the rules matching a fired alert (the
    `alert.fired` handler). Silenced alerts (silence, inhibition, maintenance) run nothing.
    Idempotent: a linked ticket is reused and a run requested since `since` is not repeated."""
    from apps.targets.models import Job

    done = {"tickets": 0, "runbooks": 0}
    alert = Alert.objects.select_related("rule", "tenant").filter(pk=alert_id).first()
    if alert is None or alert.silenced or alert.status == AlertStatus.RESOLVED:
        return done
    if alert.resource_type == "targets.jobrun" and str(alert.resource_id).isdigit() and RunbookRequest.objects.filter(run_id=int(alert.resource_id)).exists():
        return done  # a failed runbook is handled by its own incident, never a new loop
    if alert.resource_type == "tickets.ticket":
        return done  # alerts about tickets (SLA, critical, unassigned) already have their ticket
    rules = incident_rules_for(alert)
    for rule in rules:
        for action in rule.actions or []:
            if action.get("type") == "open_ticket":
                _, opened = alert_open_ticket(alert, actor=None, priority=action.get("priority"), subject=action.get("subject", ""),
                                              assignee_id=action.get("assignee_id"), dedup_labels=action.get("dedup_labels"))
                alert.refresh_from_db()
                done["tickets"] += int(opened)
    for rule in rules:
        for action in rule.actions or []:
            if action.get("type") != "run_job":
                continue
            job = Job.objects.filter(pk=action["job_id"], tenant_id=alert.tenant_id).first()
            recent = RunbookRequest.objects.filter(alert=alert, rule=rule, job_id=action["job_id"])
            if since is not None:
                recent = recent.filter(created_at__gte=since)
            if job is None or recent.exists():
                continue
            if _same_runbook_in_flight(alert, job, action):
                continue
            try:
                runbook_request(alert, actor=None, job=job, rule=rule, target_ids=action.get("target_ids"),
                                params=action.get("parameters"), parameter_labels=action.get("parameter_labels"),
                                target_label=action.get("target_label"), require_approval=bool(action.get("require_approval")))
                done["runbooks"] += 1
            except ValidationError as exc:
                log.warning("rule %s: runbook for alert %s not started: %s", rule.pk, alert.pk, exc)
                if alert.ticket_id:
                    from apps.tickets.services import ticket_reply

                    ticket_reply(alert.ticket, actor=None, is_internal=True,
                                 body=f"Rule '{rule.name}' could not start runbook '{job.name}': {'; '.join(exc.messages)}")
    return done
