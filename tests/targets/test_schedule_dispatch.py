"""Job schedules fire from `next_fire_at` (core's due-schedule dispatcher): create/update/disable
recompute it, a New York 01:30 cron fires once on the fall-back night, interval steps, a disabled
job's claimed fire is dropped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apps.core import duefire
from apps.targets import services
from apps.targets.models import JobSchedule
from tests.factories.targets import make_job


def _collector():
    sent: list = []
    return sent, lambda name, ids, due: sent.append((name, list(ids), due))


def test_create_update_and_disable_recompute_next_fire_at(world):
    job = make_job(world.tenant("a"))
    schedule = services.schedule_create(actor=None, job=job, name="nightly", cron="0 2 * * *", timezone="Europe/Berlin")
    schedule.refresh_from_db()
    local = schedule.next_fire_at.astimezone(ZoneInfo("Europe/Berlin"))
    assert (local.hour, local.minute) == (2, 0) and not schedule.periodic_task.enabled  # display-only in beat's admin
    services.schedule_update(schedule, actor=None, cron="45 6 * * *")
    schedule.refresh_from_db()
    assert schedule.next_fire_at.astimezone(ZoneInfo("Europe/Berlin")).hour == 6
    services.schedule_update(schedule, actor=None, enabled=False)
    assert JobSchedule.objects.get(pk=schedule.pk).next_fire_at is None
    services.schedule_update(schedule, actor=None, enabled=True)
    services.job_update(job, actor=None, enabled=False)
    assert JobSchedule.objects.get(pk=schedule.pk).next_fire_at is None  # a disabled job's schedules do not fire


def test_new_york_0130_cron_fires_once_on_the_fall_back_night(world):
    """America/New_York 2026-11-01: 01:00–02:00 local happens twice (EDT, then EST)."""
    job = make_job(world.tenant("a"))
    schedule = services.schedule_create(actor=None, job=job, name="night", cron="30 1 * * *", timezone="America/New_York")
    JobSchedule.objects.filter(pk=schedule.pk).update(next_fire_at=datetime(2026, 11, 1, 5, 30, tzinfo=UTC))  # 01:30 EDT
    sent, send = _collector()
    first, second = datetime(2026, 11, 1, 5, 30, tzinfo=UTC), datetime(2026, 11, 1, 6, 30, tzinfo=UTC)  # 01:30 EDT, 01:30 EST
    ticks = [datetime(2026, 11, 1, 4, 0, tzinfo=UTC) + timedelta(minutes=5 * i) for i in range(48)]  # 00:00 EDT to 03:00 EST
    for tick in sorted({*ticks, *(t + timedelta(seconds=s) for t in (first, second) for s in (-2, 0, 0.5, 1, 30))}):
        duefire.dispatch(now=tick, send=send)
    assert [due for *_, due in sent] == [datetime(2026, 11, 1, 5, 30, tzinfo=UTC)]
    assert JobSchedule.objects.get(pk=schedule.pk).next_fire_at == datetime(2026, 11, 2, 6, 30, tzinfo=UTC)  # 01:30 EST


def test_interval_job_schedule_steps_from_its_due_time(world):
    job = make_job(world.tenant("a"))
    schedule = services.schedule_create(actor=None, job=job, name="often", interval_seconds=300)
    schedule.refresh_from_db()
    due = schedule.next_fire_at
    sent, send = _collector()
    duefire.dispatch(now=due + timedelta(seconds=0.5), send=send)
    assert JobSchedule.objects.get(pk=schedule.pk).next_fire_at == due + timedelta(seconds=300)
    duefire.dispatch(now=due + timedelta(seconds=300), send=send)
    assert [d for *_, d in sent] == [due, due + timedelta(seconds=300)]


def test_claimed_fire_of_a_disabled_schedule_is_dropped_and_a_fire_is_stamped_once(world, django_capture_on_commit_callbacks):
    job = make_job(world.tenant("a"))
    schedule = services.schedule_create(actor=None, job=job, name="x", cron="0 3 * * *")
    schedule.refresh_from_db()
    due = schedule.next_fire_at
    with django_capture_on_commit_callbacks(execute=False):
        assert services.schedules_fire_due(ids=[schedule.pk], due=due, now=due)["fired"] == 1
        assert services.schedules_fire_due(ids=[schedule.pk], due=due, now=due + timedelta(seconds=1))["fired"] == 0
        schedule.refresh_from_db()
        services.schedule_update(schedule, actor=None, enabled=False)
        assert services.schedules_fire_due(ids=[schedule.pk], due=due + timedelta(days=1), now=due + timedelta(days=1))["fired"] == 0
    assert JobSchedule.objects.get(pk=schedule.pk).last_fired_at == due
