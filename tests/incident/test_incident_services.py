"""Incident services without a worker: API open-ticket and dedup, approval by a second person,
SLA clocks paused by maintenance windows, the tenant timeline and its scoping, ticket checks
with real ticket rows, the purge registered with apps.maintenance."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from apps.alerts import incident
from apps.alerts.checks import check_unassigned_critical_all, check_workload_all
from apps.alerts.choices import AlertStatus, AlertType, RunbookStatus
from apps.alerts.models import Alert, RunbookRequest
from apps.alerts.services import alert_raise
from apps.maintenance.services import maintenance_run, window_close, window_open
from apps.tickets.choices import TicketPriority
from apps.tickets.models import Ticket
from tests.factories.targets import make_job, make_target
from tests.factories.tickets import TicketFactory

pytestmark = pytest.mark.django_db


def _alert(world, instance="db-1", **kw):
    alert, _ = alert_raise(tenant=world.tenant("a"), alert_type=AlertType.CUSTOM, title=f"disk full on {instance}", severity="warning",
                           labels={"instance": instance, "service": "db"}, **kw)
    return alert


def test_api_open_ticket_then_same_dedup_key_links_instead_of_opening(world, api):
    first, second = _alert(world, "db-1"), _alert(world, "db-2")
    client = api.as_user(world.user("a", "operator"))
    r = client.post(f"/api/v1/alerts/{first.pk}/open-ticket", {"dedup_labels": ["service"]}, format="json")
    assert r.status_code == 201, r.content
    ticket = Ticket.objects.get(pk=r.json()["ticket_id"])
    assert ticket.priority == TicketPriority.HIGH and ticket.metadata["incident"]["opened_by_id"] == world.user("a", "operator").pk
    r2 = client.post(f"/api/v1/alerts/{second.pk}/open-ticket", {"dedup_labels": ["service"]}, format="json")
    assert r2.status_code == 200 and r2.json() == {"ticket_id": ticket.pk, "ticket_number": ticket.number, "opened": False}
    assert Ticket.objects.count() == 1 and Alert.objects.filter(ticket=ticket).count() == 2
    # a viewer may not open tickets
    assert api.as_user(world.user("a", "viewer")).post(f"/api/v1/alerts/{first.pk}/open-ticket", {}, format="json").status_code == 403


def test_runbook_needs_a_second_person_to_approve(world, api, django_capture_on_commit_callbacks):
    tenant = world.tenant("a")
    make_target(tenant, name="db-1")
    job = make_job(tenant, name="cleanup", parameters_schema={"type": "object", "properties": {"svc": {"type": "string"}}})
    alert = _alert(world)
    incident.alert_open_ticket(alert, actor=None)
    op, admin = world.user("a", "operator"), world.user("a", "admin")
    r = api.as_user(op).post(f"/api/v1/alerts/{alert.pk}/runbook",
                             {"job": job.pk, "parameter_labels": {"svc": "service"}, "require_approval": True}, format="json")
    assert r.status_code == 201, r.content
    req = RunbookRequest.objects.get(pk=r.json()["id"])
    assert req.status == RunbookStatus.PENDING_APPROVAL and req.params == {"svc": "db"} and req.target_ids
    assert api.as_user(op).post(f"/api/v1/alerts/runbooks/{req.pk}/approve").status_code == 403  # not by the requester
    with django_capture_on_commit_callbacks(execute=False):
        r = api.as_user(admin).post(f"/api/v1/alerts/runbooks/{req.pk}/approve")
    assert r.status_code == 200, r.content
    req.refresh_from_db()
    assert req.run_id and req.decided_by == admin and req.status == RunbookStatus.QUEUED
    assert req.ticket.messages.filter(is_internal=True, body__contains="approved by").exists()


def test_missing_label_for_parameter_is_a_clear_400(world, api):
    job = make_job(world.tenant("a"), name="j")
    alert = _alert(world)
    r = api.as_user(world.user("a", "admin")).post(f"/api/v1/alerts/{alert.pk}/runbook",
                                                   {"job": job.pk, "parameter_labels": {"x": "nope"}}, format="json")
    assert r.status_code == 400 and "nope" in str(r.json())


def test_maintenance_window_pauses_incident_ticket_sla_and_escalation(world):
    tenant = world.tenant("a")
    tenant.settings = {"sla": {"high": {"first_response_minutes": 60, "resolution_minutes": 240}}}
    tenant.save()
    alert = _alert(world)
    ticket, _ = incident.alert_open_ticket(alert, actor=None)
    plain = Ticket.objects.get(pk=ticket.pk)
    due_before = plain.resolution_due_at
    window = window_open(tenant_id=tenant.pk, name="db work", label_matchers={"service": "db"}, until=timezone.now() + timedelta(hours=2))
    from apps.tickets.services import tickets_recompute_sla

    tickets_recompute_sla(tenant_id=tenant.pk)  # the maintenance_window.* handler does this after commit
    ticket.refresh_from_db()
    assert ticket.resolution_due_at - due_before >= timedelta(minutes=119)
    # an alert of the same service during the window is muted and its escalation waits
    muted = _alert(world, "db-9")
    assert muted.silenced and "maintenance window" in muted.metadata["muted"]
    window_close(window)
    tickets_recompute_sla(tenant_id=tenant.pk)
    ticket.refresh_from_db()
    assert ticket.resolution_due_at - due_before < timedelta(minutes=2)


def test_timeline_is_newest_first_paged_and_scoped(world, api):
    a1 = _alert(world, "db-1")
    incident.alert_open_ticket(a1, actor=None)
    _alert(world, "db-2", assigned_to=world.user("a", "support_agent"))
    admin = api.as_user(world.user("a", "admin"))
    page = admin.get("/api/v1/tenants/tenant-a/timeline?limit=2".replace("tenant-a", world.tenant("a").slug))
    assert page.status_code == 200, page.content
    body = page.json()
    assert len(body["results"]) == 2 and body["next_cursor"]
    rest = admin.get(f"/api/v1/tenants/{world.tenant('a').slug}/timeline?limit=200&cursor={body['next_cursor']}").json()
    everything = body["results"] + rest["results"]
    stamps = [e["at"] for e in everything]
    assert stamps == sorted(stamps, reverse=True)
    kinds = {e["kind"] for e in everything}
    assert {"alert", "ticket"} <= kinds and all("notify" not in e["data"] for e in everything)
    only_alerts = admin.get(f"/api/v1/tenants/{world.tenant('a').slug}/timeline?kind=alert&limit=200").json()["results"]
    assert {e["kind"] for e in only_alerts} == {"alert"}
    # an operator does not see alerts assigned to someone else; other tenants and customers get 404
    op = api.as_user(world.user("a", "operator")).get(f"/api/v1/tenants/{world.tenant('a').slug}/timeline?kind=alert&limit=200").json()
    assert len(op["results"]) == len(only_alerts) - 1
    assert api.as_user(world.user("b", "admin")).get(f"/api/v1/tenants/{world.tenant('a').slug}/timeline").status_code == 404
    admin = api.as_user(world.user("a", "admin"))  # as_user re-authenticates the one client
    assert admin.get(f"/api/v1/tenants/{world.tenant('a').slug}/timeline?kind=bogus").status_code == 400


def test_workload_and_unassigned_critical_checks_read_real_tickets(world):
    tenant = world.tenant("a")
    tenant.settings = {"workload_threshold": 2, "unassigned_critical_minutes": 10}
    tenant.save()
    agent = world.user("a", "support_agent")
    busy = [TicketFactory(tenant=tenant, assignee=agent, status="open") for _ in range(3)]
    old = TicketFactory(tenant=tenant, priority="critical", status="open")
    Ticket.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(minutes=30))
    TicketFactory(tenant=tenant, priority="critical", status="open")  # too young
    assert check_workload_all()[0] == 1
    workload = Alert.objects.get(alert_type=AlertType.HIGH_WORKLOAD)
    assert workload.resource_id == str(agent.pk) and "3 open tickets (limit 2)" in workload.title
    assert check_unassigned_critical_all()[0] == 1
    assert Alert.objects.get(alert_type=AlertType.UNASSIGNED_CRITICAL).resource_id == str(old.pk)
    Ticket.objects.filter(pk__in=[busy[0].pk, busy[1].pk]).update(status="resolved")
    Ticket.objects.filter(pk=old.pk).update(assignee=agent)
    assert check_workload_all() == (0, 1) and check_unassigned_critical_all() == (0, 1)
    assert not Alert.objects.exclude(status=AlertStatus.RESOLVED).exists()


def test_purge_is_registered_with_maintenance_and_recorded(world):
    old = _alert(world)
    Alert.objects.filter(pk=old.pk).update(status=AlertStatus.RESOLVED, resolved_at=timezone.now() - timedelta(days=40))
    _alert(world, "keep")
    run = maintenance_run(task="purge_alerts")
    assert run.status == "succeeded" and run.rows_removed == {"alerts_alert": 1}
    assert list(Alert.objects.values_list("labels__instance", flat=True)) == ["keep"]



def test_second_alert_of_an_incident_does_not_restart_the_runbook_in_flight(world, django_capture_on_commit_callbacks):
    """Two checks of one service fail together: one ticket, ONE runbook run; the second alert is
    linked and noted instead of a second run that the job's overlap policy would refuse (which
    would fail the request and escalate a healthy incident)."""
    from apps.alerts.models import AlertRule

    tenant = world.tenant("a")
    make_target(tenant, name="web-1")
    job = make_job(tenant, name="restart web")
    AlertRule.objects.create(tenant=tenant, name="web", rule_type="alert",
                             conditions={"label_matchers": [{"name": "service", "op": "=", "value": "web"}]},
                             actions=[{"type": "open_ticket", "dedup_labels": ["service"]},
                                      {"type": "run_job", "job_id": job.pk, "target_label": "instance"}])
    first, _ = alert_raise(tenant=tenant, alert_type=AlertType.CUSTOM, title="web home down", labels={"service": "web", "instance": "web-1", "probe": "home"})
    second, _ = alert_raise(tenant=tenant, alert_type=AlertType.CUSTOM, title="web health down", labels={"service": "web", "instance": "web-1", "probe": "health"})
    with django_capture_on_commit_callbacks(execute=False):  # the first run stays queued, as on a busy worker
        assert incident.incident_actions_run(alert_id=first.pk) == {"tickets": 1, "runbooks": 1}
        assert incident.incident_actions_run(alert_id=second.pk) == {"tickets": 0, "runbooks": 0}
    ticket = Ticket.objects.get()
    assert set(Alert.objects.filter(ticket=ticket).values_list("pk", flat=True)) == {first.pk, second.pk}
    req = RunbookRequest.objects.get()
    assert req.alert_id == first.pk and req.status == RunbookStatus.QUEUED
    assert ticket.messages.filter(is_internal=True, body__contains="not started again").exists()
    ticket.refresh_from_db()
    assert ticket.escalation_level == 0
    # a run that just succeeded is given time to take effect (a service restarted a moment ago is
    # still starting): a new alert of the same incident is noted, not a second restart
    RunbookRequest.objects.filter(pk=req.pk).update(status=RunbookStatus.SUCCEEDED, finished_at=timezone.now())
    third, _ = alert_raise(tenant=tenant, alert_type=AlertType.CUSTOM, title="web api down", labels={"service": "web", "instance": "web-1", "probe": "api"})
    with django_capture_on_commit_callbacks(execute=False):
        assert incident.incident_actions_run(alert_id=third.pk)["runbooks"] == 0
    assert RunbookRequest.objects.count() == 1
    assert ticket.messages.filter(is_internal=True, body__contains="not started again", body__icontains="succeeded").count() == 1
    # once that time has passed, a new alert of the same incident may run the job again
    settled = timezone.now() - timedelta(seconds=settings.ALERTS_RUNBOOK_SETTLE_SECONDS + 1)
    RunbookRequest.objects.filter(pk=req.pk).update(finished_at=settled)
    fourth, _ = alert_raise(tenant=tenant, alert_type=AlertType.CUSTOM, title="web db down", labels={"service": "web", "instance": "web-1", "probe": "db"})
    with django_capture_on_commit_callbacks(execute=False):
        assert incident.incident_actions_run(alert_id=fourth.pk)["runbooks"] == 1
