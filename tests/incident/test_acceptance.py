"""Issue 10's acceptance, tried as a new user would, in ONE test with every part real: PostgreSQL,
Redis, a Celery worker, a `celery beat` process (django-celery-beat, the portal's own schedules),
a loopback sshd and a loopback HTTP service run as its own process.

An endpoint goes down → alert fires → ticket opened with SLA → runbook job restarts the service
over SSH → endpoint up → alert resolves → ticket resolved; the tenant timeline shows every step
in order; a second identical alert during the incident (the service's second check) links to the
same ticket; during a maintenance window the same failure opens nothing and notifies no one.
Nothing is triggered by hand: beat dispatches the checks, the worker does the rest."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.alerts.choices import AlertStatus, AlertType, RunbookStatus
from apps.alerts.models import Alert, RunbookRequest
from apps.core.models import Event
from apps.monitoring.models import CheckResult, Endpoint
from apps.notifications.models import Notification
from apps.targets.models import JobRun, JobRunStep
from apps.tickets.choices import TicketStatus
from apps.tickets.models import Ticket, TicketMessage
from tests.conftest import wait_for
from tests.incident.loop import configure_loop, sla_policy_for_critical

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

STORY = ["endpoint.down", "alert.fired", "ticket.created", "alert.ticket_linked", "job_run.started", "job_run.succeeded",
         "runbook.finished", "endpoint.up", "alert.resolved", "ticket.resolved"]


def _timeline(client, slug: str) -> list[dict]:
    r = client.get(f"/api/v1/tenants/{slug}/timeline", {"limit": 200})
    assert r.status_code == 200, r.content
    return list(reversed(r.json()["results"]))  # oldest first


def _no_pending_events():
    return not Event.objects.filter(status="pending").exists()


def test_endpoint_down_to_ticket_resolved_then_silent_in_maintenance(world, api, settings, sshd, web_service, celery_worker, celery_beat):
    settings.MONITORING_MIN_INTERVAL_SECONDS = 2  # checks every 3 s keep the test short; beat dispatches every 2 s
    tenant, admin = world.tenant("a"), world.user("a", "admin")
    client = api.as_user(admin)
    policy = sla_policy_for_critical(tenant, client)
    loop = configure_loop(client, sshd=sshd, service=web_service)

    # beat → dispatcher → worker: both checks see the service up (a first success announces nothing)
    wait_for(lambda: Endpoint.objects.filter(pk__in=loop.endpoints, status="up").count() == 2, timeout=30)
    assert not Alert.objects.exists()

    # -- the service crashes -------------------------------------------------------------------
    crashed_at = timezone.now()
    old_pid = web_service.kill()
    alerts = wait_for(lambda: list(Alert.objects.filter(tenant=tenant, alert_type=AlertType.ENDPOINT_DOWN)) if
                      Alert.objects.filter(tenant=tenant, alert_type=AlertType.ENDPOINT_DOWN).count() == 2 else None, timeout=30)
    assert {a.resource_id for a in alerts} == {str(pk) for pk in loop.endpoints}
    assert all(a.severity == "critical" and a.labels["service"] == "web" and a.labels["instance"] == "web-1" for a in alerts)

    # one ticket for the incident (the second check's alert links to it), SLA from the first alert
    ticket = wait_for(lambda: Ticket.objects.filter(tenant=tenant, metadata__incident__isnull=False).first(), timeout=20)
    wait_for(lambda: Alert.objects.filter(pk__in=[a.pk for a in alerts], ticket=ticket).count() == 2, timeout=20)
    assert Ticket.objects.filter(tenant=tenant).count() == 1
    first = min(Alert.objects.filter(ticket=ticket), key=lambda a: a.first_seen)
    assert ticket.priority == "critical" and ticket.sla_policy_id == policy.pk and "incident" in ticket.tags
    assert ticket.metadata["incident"]["dedup_key"] == "labels:service=web"
    assert abs((ticket.sla_started_at - first.first_seen).total_seconds()) < 1
    assert abs((ticket.first_response_due_at - (first.first_seen + timedelta(minutes=15))).total_seconds()) < 1
    assert abs((ticket.resolution_due_at - (first.first_seen + timedelta(minutes=120))).total_seconds()) < 1
    assert TicketMessage.objects.filter(ticket=ticket, is_internal=True, body__contains="linked to this incident").exists()

    # the runbook restarted the service over SSH: a new process answers
    req = wait_for(lambda: RunbookRequest.objects.filter(ticket=ticket, status=RunbookStatus.SUCCEEDED).first(), timeout=30)
    assert req.params == {"service": "web"} and req.target_ids == [loop.target]
    step = JobRunStep.objects.get(run=req.run)
    assert step.exit_code == 0 and "restarting web on web-1" in step.stdout and "started pid" in step.stdout, step.stdout
    web_service.wait(up=True, timeout=20)
    assert web_service.pid() != old_pid

    # the checks see it up → both alerts resolve → the ticket resolves with a summary for the customer
    wait_for(lambda: Endpoint.objects.filter(pk__in=loop.endpoints, status="up").count() == 2, timeout=30)
    wait_for(lambda: not Alert.objects.filter(ticket=ticket).exclude(status=AlertStatus.RESOLVED).exists(), timeout=20)
    ticket = wait_for(lambda: Ticket.objects.filter(pk=ticket.pk, status=TicketStatus.RESOLVED).first(), timeout=20)
    public = TicketMessage.objects.filter(ticket=ticket, is_internal=False).order_by("created_at").last()
    assert "has been resolved" in public.body and "restart web" in public.body
    assert ticket.escalation_level == 0
    assert not RunbookRequest.objects.filter(ticket=ticket).exclude(status=RunbookStatus.SUCCEEDED).exists()
    assert Notification.objects.filter(tenant=tenant, created_at__gte=crashed_at, notification_type__contains="endpoint_down").exists()

    # the tenant timeline tells the story in order
    wait_for(_no_pending_events, timeout=20)
    entries = _timeline(client, tenant.slug)
    names = [e["event"] for e in entries]
    print("\n".join(f"{e['at'][11:23]}  {e['event']:<22} {e['title'][:90]}" for e in entries))  # the story, with -s
    positions = [names.index(n) for n in STORY]
    assert positions == sorted(positions), names
    assert [e["at"] for e in entries] == sorted(e["at"] for e in entries)
    links = [e for e in entries if e["event"] == "alert.ticket_linked"]
    assert [link["data"]["opened"] for link in links] == [True, False]
    assert {link["data"]["ticket_id"] for link in links} == {ticket.pk}

    # -- a maintenance window: the same failure opens nothing and notifies no one -----------------
    now = timezone.now()
    r = client.post("/api/v1/maintenance/windows/", {"name": "web upgrade", "starts_at": (now - timedelta(minutes=1)).isoformat(),
                                                      "ends_at": (now + timedelta(hours=1)).isoformat(), "scope": "objects",
                                                      "label_matchers": {"service": "web"}}, format="json")
    assert r.status_code == 201, r.content
    wait_for(_no_pending_events, timeout=20)
    counts = (Alert.objects.count(), Ticket.objects.count(), RunbookRequest.objects.count(), JobRun.objects.count())
    mark = timezone.now()
    web_service.kill()
    # two failed checks of each endpoint inside the window
    try:
        wait_for(lambda: all(CheckResult.objects.filter(endpoint_id=pk, checked_at__gt=mark, status="down", in_maintenance=True).count() >= 2
                             for pk in loop.endpoints), timeout=30)
    except AssertionError:  # seen once in a while under load: say what the checks saw
        results = list(CheckResult.objects.order_by("-checked_at").values("endpoint_id", "status", "in_maintenance", "checked_at", "error")[:8])
        runs = list(JobRun.objects.values("id", "status", "created_at", "started_at", "finished_at"))
        reqs = list(RunbookRequest.objects.values("id", "alert_id", "status", "created_at", "run_id"))
        steps = [(s.run_id, s.stdout[-300:]) for s in JobRunStep.objects.all()]
        log = web_service.log.read_text()[-1500:]
        pytest.fail(f"no two down checks in maintenance since {mark}; now {timezone.now()}; service up: {web_service.is_up()}; "
                    f"latest results {results}; endpoints {list(Endpoint.objects.values('id', 'status', 'in_maintenance', 'next_check_at'))}; "
                    f"runs {runs}; requests {reqs}; steps {steps}; web.log {log}")
    assert Endpoint.objects.filter(pk__in=loop.endpoints, status="down", in_maintenance=True).count() == 2
    wait_for(_no_pending_events, timeout=20)
    assert (Alert.objects.count(), Ticket.objects.count(), RunbookRequest.objects.count(), JobRun.objects.count()) == counts
    assert not Alert.objects.filter(last_seen__gt=mark).exists()
    assert not Event.objects.filter(created_at__gt=mark, name__in=["endpoint.down", "alert.fired", "ticket.created", "job_run.started"]).exists()
    assert not Notification.objects.filter(created_at__gt=mark).exists()
    assert not web_service.is_up()  # nobody restarted it
