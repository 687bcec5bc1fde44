"""The due-schedule dispatcher (apps/core/duefire.py) with deployment and job schedules: 1,000
co-due schedules claimed by one tick and fired once each, two ticks racing, a redelivered fire,
one-time/interval semantics, pause and retime recomputing `next_fire_at`, the portable claim."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from apps.core import duefire
from apps.deployments import services
from apps.deployments.models import DeploymentSchedule, Instance, Operation
from apps.targets.models import JobSchedule
from tests.factories.deployments import make_instance, make_runbooks
from tests.factories.targets import make_job

DUE = datetime(2031, 5, 6, 3, 0, tzinfo=UTC)


def _collector():
    sent: list[tuple[str, list, datetime]] = []
    return sent, lambda name, ids, due: sent.append((name, list(ids), due))


def _co_due(tenant, count: int, *, due=DUE, prefix="co"):
    """`count` cron "0 3 * * *" deployment schedules and as many job schedules, all due at `due`
    (rows written in bulk as a data migration or a big tenant would have them)."""
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    cron, _ = CrontabSchedule.objects.get_or_create(minute="0", hour="3", day_of_month="*", month_of_year="*", day_of_week="*", timezone="UTC")
    instances = Instance.objects.bulk_create([Instance(tenant=tenant, name=f"{prefix}-{i:04d}") for i in range(count)])
    tasks = PeriodicTask.objects.bulk_create([PeriodicTask(name=f"{prefix}-task-{i}", task="deployments.fire_schedule", crontab=cron,
                                                           enabled=False) for i in range(count)])
    DeploymentSchedule.objects.bulk_create([
        DeploymentSchedule(tenant=tenant, instance=inst, operation="suspend", scheduled_at=due - timedelta(days=1), periodic_task=task,
                           next_fire_at=due) for inst, task in zip(instances, tasks, strict=True)])
    job = make_job(tenant, name=f"{prefix}-job")
    JobSchedule.objects.bulk_create([JobSchedule(tenant=tenant, job=job, name=f"{prefix}-{i}", cron="0 3 * * *", next_fire_at=due)
                                     for i in range(count)])
    return job


def test_one_tick_claims_1000_co_due_schedules_and_fires_each_once(world, django_capture_on_commit_callbacks):
    from apps.core.models import Event

    tenant = world.tenant("a")
    job = _co_due(tenant, 500)
    sent, send = _collector()
    counts = duefire.dispatch(now=DUE - timedelta(seconds=1), send=send)  # one tick, inside the look-ahead
    assert counts == {"deployments.schedule": 500, "targets.schedule": 500}
    per_row = Counter((name, pk) for name, ids, _ in sent for pk in ids)
    assert len(per_row) == 1000 and set(per_row.values()) == {1}  # each schedule claimed once
    assert {due for *_, due in sent} == {DUE} and max(len(ids) for _, ids, _ in sent) <= duefire.CHUNK
    tomorrow = DUE + timedelta(days=1)
    assert set(DeploymentSchedule.objects.values_list("next_fire_at", flat=True)) == {tomorrow}
    assert set(JobSchedule.objects.filter(job=job).values_list("next_fire_at", flat=True)) == {tomorrow}
    assert duefire.dispatch(now=DUE + timedelta(seconds=1), send=send) == {"deployments.schedule": 0, "targets.schedule": 0}

    with django_capture_on_commit_callbacks(execute=False):
        results = [duefire.fire(name=name, ids=ids, due=due) for name, ids, due in sent]
        again = [duefire.fire(name=name, ids=ids, due=due) for name, ids, due in sent]  # the broker redelivers every fire
    assert sum(r["fired"] for r in results) == 1000 and sum(r["fired"] for r in again) == 0
    assert set(DeploymentSchedule.objects.values_list("fire_count", flat=True)) == {1}
    assert not JobSchedule.objects.filter(job=job, last_fired_at__isnull=True).exists()
    # each job schedule's fire was refused once (the job has no targets), recorded once
    assert Event.objects.filter(name="job_schedule.skipped").count() == 500
    assert DeploymentSchedule.objects.exclude(last_error="").count() == 500  # no runbook: refused, recorded


@pytest.mark.django_db(transaction=True)
def test_two_racing_ticks_claim_each_schedule_once(world):
    """Two dispatch ticks at the same instant, each in its own thread and database connection."""
    _co_due(world.tenant("a"), 150, prefix="race")
    barrier = threading.Barrier(2)
    won: list[list] = [[], []]

    def tick(slot: int) -> None:
        try:
            barrier.wait()
            for due_set in duefire.registry().values():
                won[slot].extend((due_set.name, pk) for pk, _ in duefire.claim(due_set, now=DUE))
        finally:
            connection.close()

    threads = [threading.Thread(target=tick, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(won[0]) + len(won[1]) == 300 and not set(won[0]) & set(won[1])


@pytest.mark.django_db(transaction=True)
def test_two_racing_fires_of_the_same_due_time_stamp_once(world):
    _co_due(world.tenant("a"), 40, prefix="fire")
    ids = [str(pk) for pk in DeploymentSchedule.objects.values_list("pk", flat=True)]
    barrier = threading.Barrier(2)
    fired = []

    def run() -> None:
        try:
            barrier.wait()
            fired.append(services.schedules_fire_due(ids=ids, due=DUE, now=DUE + timedelta(seconds=0.2))["fired"])
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(fired) == [0, 40] and set(DeploymentSchedule.objects.values_list("fire_count", flat=True)) == {1}


def test_portable_claim_path_claims_once_and_skips_a_row_changed_meanwhile(world, monkeypatch):
    """The SQLite path (`make run`): one conditional update per row, run here on PostgreSQL."""
    _co_due(world.tenant("a"), 5, prefix="sqlite")
    monkeypatch.setattr(connection, "vendor", "sqlite")
    due_set = duefire.registry()["deployments.schedule"]
    first = DeploymentSchedule.objects.order_by("pk").first()
    moves = [(s.pk, s.next_fire_at, DUE + timedelta(days=1)) for s in DeploymentSchedule.objects.all()]
    DeploymentSchedule.objects.filter(pk=first.pk).update(next_fire_at=DUE + timedelta(hours=1))  # retimed after the read
    won = duefire._advance(DeploymentSchedule, moves)
    assert len(won) == 4 and first.pk not in {pk for pk, _ in won}
    assert duefire.claim(due_set, now=DUE) == []


def _schedule(world, **kw):
    tenant = world.tenant("a")
    make_runbooks(tenant)
    inst = make_instance(tenant, name=f"app-{DeploymentSchedule.objects.count()}")
    kw.setdefault("scheduled_at", timezone.now() + timedelta(days=2))
    made = services.schedule_deployment(actor=world.user("a", "operator"), tenant_id=None, instance_id=inst.pk, operation="suspend", **kw)
    return DeploymentSchedule.objects.select_related("periodic_task").get(pk=made["schedule_id"])


def test_one_time_schedule_fires_once_then_is_done(world, django_capture_on_commit_callbacks):
    schedule = _schedule(world)
    due = schedule.scheduled_at
    assert schedule.next_fire_at == due
    sent, send = _collector()
    assert duefire.dispatch(now=due - timedelta(seconds=4), send=send)["deployments.schedule"] == 0  # not yet in the look-ahead
    assert duefire.dispatch(now=due - timedelta(seconds=2), send=send)["deployments.schedule"] == 1
    assert sent == [("deployments.schedule", [str(schedule.pk)], due)]  # sent ahead, eta = the due time
    with django_capture_on_commit_callbacks(execute=False):
        assert services.schedules_fire_due(ids=sent[0][1], due=due, now=due)["requested"] == 1
    schedule.refresh_from_db()
    assert schedule.fire_count == 1 and schedule.next_fire_at is None and schedule.next_run_at is None
    assert duefire.dispatch(now=due + timedelta(days=1), send=send)["deployments.schedule"] == 0
    assert Operation.objects.filter(schedule=schedule).count() == 1


def test_interval_schedule_steps_and_fires_a_missed_stretch_once(world):
    schedule = _schedule(world, interval_seconds=600)
    start = schedule.scheduled_at
    sent, send = _collector()
    duefire.dispatch(now=start, send=send)
    schedule.refresh_from_db()
    assert schedule.next_fire_at == start + timedelta(seconds=600)
    duefire.dispatch(now=start + timedelta(seconds=1900), send=send)  # nothing dispatched for half an hour
    schedule.refresh_from_db()
    assert [due for *_, due in sent] == [start, start + timedelta(seconds=600)]
    assert schedule.next_fire_at == start + timedelta(seconds=2400)


def test_paused_schedule_does_not_fire_even_when_claimed_before_the_pause(world, django_capture_on_commit_callbacks):
    schedule = _schedule(world, cron_expression="0 3 * * *")
    due = schedule.next_fire_at
    sent, send = _collector()
    duefire.dispatch(now=due - timedelta(seconds=1), send=send)
    services.schedule_pause(schedule, actor=world.user("a", "operator"))
    with django_capture_on_commit_callbacks(execute=False):
        assert services.schedules_fire_due(ids=sent[0][1], due=due, now=due) == {"fired": 0, "requested": 0}
    assert DeploymentSchedule.objects.get(pk=schedule.pk).next_fire_at is None
    assert duefire.dispatch(now=due + timedelta(days=3), send=send)["deployments.schedule"] == 0
    services.schedule_resume(schedule, actor=world.user("a", "operator"))
    schedule.refresh_from_db()
    assert schedule.enabled and schedule.next_fire_at == schedule.next_run_at
    assert not Operation.objects.filter(schedule=schedule).exists()


def test_retime_recomputes_next_fire_at(world):
    schedule = _schedule(world, cron_expression="0 3 * * *")
    services.schedule_retime(schedule, actor=world.user("a", "operator"), scheduled_at=schedule.scheduled_at, cron_expression="30 4 * * *",
                             tz="Europe/Berlin")
    schedule = DeploymentSchedule.objects.select_related("periodic_task__crontab").get(pk=schedule.pk)
    local = schedule.next_fire_at.astimezone(schedule.periodic_task.crontab.timezone)
    assert (local.hour, local.minute) == (4, 30) and schedule.next_fire_at == schedule.next_run_at
    later = schedule.scheduled_at + timedelta(days=5)
    services.schedule_retime(schedule, actor=world.user("a", "operator"), scheduled_at=later)  # → one-time
    assert DeploymentSchedule.objects.get(pk=schedule.pk).next_fire_at == later


def test_dst_fall_back_night_fires_a_0230_berlin_cron_once(world):
    """Europe/Berlin 2026-10-25: 02:00–03:00 local happens twice; "30 2 * * *" fires at the first."""
    tenant = world.tenant("a")
    tenant.timezone = "Europe/Berlin"
    tenant.save()
    schedule = _schedule(world, cron_expression="30 2 * * *", scheduled_at=datetime(2026, 10, 24, 12, 0, tzinfo=UTC))
    DeploymentSchedule.objects.filter(pk=schedule.pk).update(next_fire_at=datetime(2026, 10, 25, 0, 30, tzinfo=UTC))  # 02:30 CEST
    sent, send = _collector()
    first, second = datetime(2026, 10, 25, 0, 30, tzinfo=UTC), datetime(2026, 10, 25, 1, 30, tzinfo=UTC)  # 02:30 CEST, 02:30 CET
    ticks = [datetime(2026, 10, 24, 22, 0, tzinfo=UTC) + timedelta(minutes=5 * i) for i in range(72)]  # 00:00 CEST to 05:00 CET
    for tick in sorted({*ticks, *(t + timedelta(seconds=s) for t in (first, second) for s in (-2, 0, 0.5, 1, 30))}):
        duefire.dispatch(now=tick, send=send)
    assert [due for *_, due in sent] == [datetime(2026, 10, 25, 0, 30, tzinfo=UTC)]
    assert DeploymentSchedule.objects.get(pk=schedule.pk).next_fire_at == datetime(2026, 10, 26, 1, 30, tzinfo=UTC)  # 02:30 CET


def test_dispatch_task_fires_through_celery(world, django_capture_on_commit_callbacks):
    """The beat entry's task end to end (eager Celery): claim, fire task with eta, operation."""
    from apps.core.tasks import dispatch_due_task

    schedule = _schedule(world, scheduled_at=timezone.now() + timedelta(seconds=2))
    with django_capture_on_commit_callbacks(execute=True):
        assert dispatch_due_task.delay().get()["deployments.schedule"] == 1
    schedule.refresh_from_db()
    assert schedule.fire_count == 1 and Operation.objects.filter(schedule=schedule).count() == 1
