"""The high-frequency dispatchers' beat entries expire: after a worker outage the backlog of stale
ticks is dropped, not run one after another. That is safe because a tick claims everything due
whenever it runs: the schedules and endpoints the dropped ticks would have claimed are claimed
once, with their own due time, by the next tick that runs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import ModelEntry

from apps.core import duefire, periodic
from apps.monitoring.services import checks_claim_due, endpoint_create
from apps.targets import services
from apps.targets.models import JobSchedule
from config.celery import app
from tests.factories.targets import make_job

DISPATCHERS = ("core.dispatch_due", "monitoring.dispatch_due_checks")


@pytest.mark.django_db
def test_dispatcher_ticks_are_sent_with_an_expiry_of_a_few_ticks():
    periodic.sync()
    for task in DISPATCHERS:
        row = PeriodicTask.objects.get(task=task)
        assert row.interval.every <= row.expire_seconds <= 10, task
        assert ModelEntry(row, app=app).options["expires"] == row.expire_seconds  # what beat's apply_async is given


def test_an_expiry_shorter_than_the_interval_is_refused(db):
    with pytest.raises(ValueError, match="shorter than its interval"):
        periodic.sync([periodic.Schedule(name="x", task="core.dispatch_due", every_seconds=10, expire_seconds=5)])


def test_schedules_of_dropped_ticks_fire_once_at_the_next_tick(world):
    job = make_job(world.tenant("a"))
    schedule = services.schedule_create(actor=None, job=job, name="often", interval_seconds=300)
    due = JobSchedule.objects.get(pk=schedule.pk).next_fire_at
    sent: list = []
    # the ticks from due − 3 s to due + 4 s expired on the queue; the next one runs 5 s late
    duefire.dispatch(now=due + timedelta(seconds=5), send=lambda name, ids, d: sent.append((name, ids, d)))
    duefire.dispatch(now=due + timedelta(seconds=6), send=lambda name, ids, d: sent.append((name, ids, d)))
    assert sent == [("targets.schedule", [str(schedule.pk)], due)]


def test_endpoints_of_dropped_ticks_are_claimed_at_the_next_tick(world):
    endpoint = endpoint_create(actor=None, tenant_id=world.tenant("a").pk, name="web", kind="http", host="127.0.0.1",
                               port=8080, interval_seconds=60, timeout_seconds=5)
    endpoint.refresh_from_db()
    due = endpoint.next_check_at
    assert checks_claim_due(now=due + timedelta(seconds=6)) == [(endpoint.pk, "http", due)]
    assert checks_claim_due(now=due + timedelta(seconds=8)) == []
