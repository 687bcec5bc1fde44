"""Schedules fire once per local wall-clock occurrence across DST, through the real beat:
django-celery-beat's DatabaseScheduler ticking minute by minute under a shifted clock
(time-machine), sending the due-schedule dispatcher (`core.dispatch_due`, synced by
`setup_periodic_tasks`), whose claims and fires run by the real tasks (eager) and services.

America/New_York 2027: clocks go back on 2027-11-07 (01:00–01:59 happens twice: 05:xxZ EDT, then
06:xxZ EST) and forward on 2027-03-14 (02:00–02:59 does not exist)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from apps.core.cron import cron_runs

NY = ZoneInfo("America/New_York")
# The scheduler closes the database connection between ticks, as the real beat does: committed rows.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _runs_stay_queued(monkeypatch):
    """Fired runs are not executed here (no host behind the target): the broker edge only."""
    from apps.targets.services import runs

    monkeypatch.setattr(runs, "_enqueue", lambda run_id, countdown=None: None)


def run_beat(start: datetime, end: datetime, *, step=timedelta(minutes=1)) -> None:
    """Tick a DatabaseScheduler from `start` to `end` with the clock moved to each minute."""
    from django_celery_beat.schedulers import DatabaseScheduler

    from apps.core import periodic
    from config.celery import app

    periodic.sync([s for s in periodic.collect() if s.task == "core.dispatch_due"])  # the dispatcher's beat entry alone

    app.loader.import_default_modules()  # the portal's tasks registered: beat applies them (eagerly here)
    with time_machine.travel(start, tick=False) as clock:
        scheduler = DatabaseScheduler(app=app, lazy=False)
        moment = start
        while moment <= end:
            clock.move_to(moment)
            for _ in range(2):  # one due entry per tick
                scheduler.tick()
            moment += step


@pytest.fixture
def job_schedule(world):
    """A job schedule factory: the row is created under the shifted clock, as if made that day."""
    from apps.targets import services
    from tests.factories.targets import make_job, make_target

    tenant = world.tenant("a")
    job = make_job(tenant)
    job.default_targets.set([make_target(tenant)])

    def make(cron: str, created: datetime):
        with time_machine.travel(created, tick=False):
            return services.schedule_create(actor=None, job=job, name=f"s {cron}", cron=cron, timezone="America/New_York")

    return make


@pytest.fixture
def deployment_schedule(world):
    from apps.deployments import services
    from apps.deployments.models import DeploymentSchedule
    from tests.factories.deployments import make_instance, make_runbooks

    tenant = world.tenant("a")
    tenant.timezone = "America/New_York"
    tenant.save()
    make_runbooks(tenant)
    instance = make_instance(tenant)

    def make(cron: str, created: datetime):
        with time_machine.travel(created, tick=False):
            result = services.schedule_deployment(actor=world.user("a", "operator"), tenant_id=None, instance_id=instance.pk,
                                                  operation="suspend", scheduled_at=created + timedelta(minutes=1), cron_expression=cron)
        return DeploymentSchedule.objects.get(pk=result["schedule_id"])

    return make


def _job_fires(schedule) -> list[datetime]:
    return sorted(schedule.runs.values_list("created_at", flat=True))


AUTUMN = (datetime(2027, 11, 7, 4, 30, tzinfo=UTC), datetime(2027, 11, 7, 7, 30, tzinfo=UTC))
SPRING = (datetime(2027, 3, 14, 6, 0, tzinfo=UTC), datetime(2027, 3, 14, 8, 0, tzinfo=UTC))


def test_preview_fires_once_per_wall_clock_time():
    autumn = cron_runs("0 1 * * 0", after=AUTUMN[0], tz="America/New_York", count=2)
    assert [d.astimezone(UTC) for d in autumn] == [datetime(2027, 11, 7, 5, tzinfo=UTC), datetime(2027, 11, 14, 6, tzinfo=UTC)]
    spring = cron_runs("30 2 * * *", after=SPRING[0], tz="America/New_York", count=2)
    assert [d.astimezone(UTC) for d in spring] == [datetime(2027, 3, 14, 7, tzinfo=UTC), datetime(2027, 3, 15, 6, 30, tzinfo=UTC)]
    hourly = cron_runs("0 * * * *", after=datetime(2027, 11, 7, 4, 30, tzinfo=UTC), tz="America/New_York", count=3)
    assert [d.astimezone(UTC).hour for d in hourly] == [5, 6, 7]  # hour "*": by elapsed time, both 01:00s


def test_job_schedule_fires_once_on_the_autumn_night(job_schedule):
    schedule = job_schedule("0 1 * * 0", AUTUMN[0])
    run_beat(*AUTUMN)
    assert [d.astimezone(UTC).replace(second=0, microsecond=0) for d in _job_fires(schedule)] == [datetime(2027, 11, 7, 5, tzinfo=UTC)]


def test_job_schedule_fires_once_in_the_spring_gap(job_schedule):
    schedule = job_schedule("30 2 * * *", SPRING[0])
    run_beat(*SPRING)
    fires = _job_fires(schedule)
    assert len(fires) == 1, fires
    assert fires[0].astimezone(NY).hour == 3  # the shifted time: 02:30 does not exist that night


def test_deployment_schedule_fires_once_on_the_autumn_night(deployment_schedule):
    schedule = deployment_schedule("0 1 * * 0", AUTUMN[0])
    run_beat(*AUTUMN)
    schedule.refresh_from_db()
    assert schedule.fire_count == 1
    assert schedule.last_fired_at.astimezone(UTC).replace(second=0, microsecond=0) == datetime(2027, 11, 7, 5, tzinfo=UTC)


def test_deployment_schedule_fires_once_in_the_spring_gap(deployment_schedule):
    schedule = deployment_schedule("30 2 * * *", SPRING[0])
    run_beat(*SPRING)
    schedule.refresh_from_db()
    assert schedule.fire_count == 1 and schedule.last_fired_at.astimezone(NY).hour == 3


def test_next_run_after_the_autumn_fire_is_next_week():
    """After the 01:00 EDT fire the schedule's next run is a week later, not 01:00 EST (06:00Z)."""
    from apps.deployments.scheduling import next_run_for

    after_fire = next_run_for(scheduled_at=AUTUMN[0], cron_expression="0 1 * * 0", interval_seconds=None, tz="America/New_York",
                              now=datetime(2027, 11, 7, 5, 0, 30, tzinfo=UTC))
    assert after_fire == datetime(2027, 11, 14, 6, tzinfo=UTC)
