"""Schedules: seed 000 request/response, validation (cron, interval bounds, past, both), next run
across DST in the tenant's zone, PeriodicTask kept consistent, and a real beat + worker firing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from apps.deployments import services
from apps.deployments.choices import OperationStatus
from apps.deployments.models import DeploymentSchedule, Operation
from apps.deployments.scheduling import next_run_for
from tests.conftest import wait_for
from tests.factories.deployments import make_instance, make_runbooks

FUTURE = timezone.now() + timedelta(days=3)


@pytest.fixture
def inst(world):
    tenant = world.tenant("a")
    make_runbooks(tenant)
    return make_instance(tenant)


def sched(world, inst, **kw):
    kw.setdefault("operation", "upgrade")
    kw.setdefault("scheduled_at", FUTURE)
    kw.setdefault("upgrade_request", {"to_version": "2.0", "rollback_on_failure": True})
    return services.schedule_deployment(actor=world.user("a", "operator"), tenant_id=None, instance_id=inst.pk, **kw)


def test_one_time_schedule_creates_clocked_one_off_task(world, inst):
    result = sched(world, inst)
    assert result["schedule_type"] == "one_time" and result["next_run_at"] == FUTURE
    assert result["parameters"]["upgrade_request"] == {"to_version": "2.0", "rollback_on_failure": True}
    task = PeriodicTask.objects.get(deployment_schedule__pk=result["schedule_id"])
    assert task.one_off and task.clocked.clocked_time == FUTURE and task.task == "deployments.fire_schedule"


def test_cron_schedule_uses_tenant_time_zone(world, inst):
    inst.tenant.timezone = "Europe/Berlin"
    inst.tenant.save()
    result = sched(world, inst, scheduled_at=FUTURE, cron_expression="0 2 * * 0")
    task = PeriodicTask.objects.get(deployment_schedule__pk=result["schedule_id"])
    assert task.crontab.timezone.key == "Europe/Berlin" and result["cron_expression"] == "0 2 * * 0"
    local = result["next_run_at"].astimezone(task.crontab.timezone)
    assert (local.hour, local.minute, local.weekday()) == (2, 0, 6)


def test_next_run_across_dst_stays_at_local_wall_time():
    # Berlin switches to CEST on 2030-03-31 (Sunday): 02:00 local does not exist that day; croniter
    # moves to the next valid wall time; the Sunday after is 02:00 CEST = 00:00 UTC.
    before = next_run_for(scheduled_at=datetime(2030, 3, 20, tzinfo=UTC), cron_expression="30 3 * * 0", interval_seconds=None,
                          tz="Europe/Berlin", now=datetime(2030, 3, 20, tzinfo=UTC))
    assert before == datetime(2030, 3, 24, 2, 30, tzinfo=UTC)  # 03:30 CET = 02:30 UTC
    after = next_run_for(scheduled_at=datetime(2030, 3, 20, tzinfo=UTC), cron_expression="30 3 * * 0", interval_seconds=None,
                         tz="Europe/Berlin", now=datetime(2030, 3, 25, tzinfo=UTC))
    assert after == datetime(2030, 3, 31, 1, 30, tzinfo=UTC)  # 03:30 CEST = 01:30 UTC
    autumn = next_run_for(scheduled_at=datetime(2030, 10, 20, tzinfo=UTC), cron_expression="0 12 * * *", interval_seconds=None,
                          tz="America/New_York", now=datetime(2030, 11, 3, 13, tzinfo=UTC))
    assert autumn == datetime(2030, 11, 3, 17, 0, tzinfo=UTC)  # noon EST after the fall-back


def test_interval_schedule_next_run(world, inst):
    result = sched(world, inst, interval_seconds=3600)
    assert result["schedule_type"] == "recurring" and result["interval_seconds"] == 3600 and result["next_run_at"] == FUTURE
    nxt = next_run_for(scheduled_at=datetime(2030, 1, 1, tzinfo=UTC), cron_expression=None, interval_seconds=600, tz="UTC",
                       now=datetime(2030, 1, 1, 0, 25, tzinfo=UTC))
    assert nxt == datetime(2030, 1, 1, 0, 30, tzinfo=UTC)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"cron_expression": "61 * * * *"}, "not a valid cron expression"),
    ({"cron_expression": "* * *"}, "not a valid cron expression"),
    ({"interval_seconds": 59}, "between 60 seconds"),
    ({"interval_seconds": 2_592_001}, "between 60 seconds"),
    ({"cron_expression": "0 2 * * 0", "interval_seconds": 600}, "not both"),
    ({"scheduled_at": timezone.now() - timedelta(minutes=1)}, "is in the past"),
    ({"upgrade_request": None}, "needs upgrade_request"),
    ({"scale_request": {"cpu_cores": 2}}, "does not apply to a upgrade"),
    ({"operation": "explode"}, "Unknown operation"),
])
def test_invalid_schedules_are_refused(world, inst, kwargs, message):
    with pytest.raises(ValidationError) as exc:
        sched(world, inst, **kwargs)
    assert message in str(exc.value)
    assert not DeploymentSchedule.objects.exists() and not PeriodicTask.objects.filter(task="deployments.fire_schedule").exists()


def test_duplicate_schedule_is_refused(world, inst):
    sched(world, inst, cron_expression="0 2 * * 0")
    with pytest.raises(ValidationError, match="identical schedule already exists"):
        sched(world, inst, cron_expression="0 2 * * 0")
    sched(world, inst, cron_expression="0 3 * * 0")  # other timing: fine


def test_pause_and_resume_live_on_the_schedule_and_its_periodic_task_stays_display_only(world, inst):
    result = sched(world, inst, cron_expression="0 2 * * 0")
    schedule = DeploymentSchedule.objects.get(pk=result["schedule_id"])
    task = schedule.periodic_task
    assert not task.enabled and schedule.next_fire_at == result["next_run_at"]  # beat never sends it; the dispatcher fires it
    services.schedule_pause(schedule, actor=world.user("a", "operator"))
    schedule = DeploymentSchedule.objects.get(pk=result["schedule_id"])
    assert schedule.enabled is False and schedule.next_fire_at is None
    services.schedule_resume(schedule, actor=world.user("a", "operator"))
    schedule = DeploymentSchedule.objects.get(pk=result["schedule_id"])
    assert schedule.enabled and schedule.next_fire_at == result["next_run_at"] and not PeriodicTask.objects.get(pk=task.pk).enabled
    task.delete()  # deleting the PeriodicTask in beat's admin removes the schedule
    assert not DeploymentSchedule.objects.filter(pk=result["schedule_id"]).exists()
    other = DeploymentSchedule.objects.get(pk=sched(world, inst, cron_expression="0 5 * * 0")["schedule_id"])
    services.schedule_delete(other, actor=world.user("a", "admin"))
    assert not PeriodicTask.objects.filter(pk=other.periodic_task_id).exists()


def test_viewer_cannot_schedule(world, inst):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied, match="deployment.schedule.create"):
        services.schedule_deployment(actor=world.user("a", "viewer"), tenant_id=None, instance_id=inst.pk, operation="suspend",
                                     scheduled_at=FUTURE)


def test_schedule_endpoint_seed_shape_and_errors(world, inst, api):
    client = api.as_user(world.user("a", "operator"))
    url = reverse("deployment-schedule-create")
    body = {"operation": "upgrade", "instance_id": inst.pk, "scheduled_at": "2031-11-20T02:00:00Z",
            "upgrade_request": {"to_version": "2.0.0", "rollback_on_failure": True}, "cron_expression": "0 2 * * 0"}
    resp = client.post(url, body, format="json")
    assert resp.status_code == 201, resp.content
    data = resp.json()
    assert data["schedule_type"] == "recurring" and data["cron_expression"] == "0 2 * * 0"
    assert data["next_run_at"] == "2031-11-23T02:00:00Z"
    assert data["parameters"] == {"tenant_id": inst.tenant_id, "operation": "upgrade", "instance_id": inst.pk,
                                  "upgrade_request": {"to_version": "2.0.0", "rollback_on_failure": True}}
    for bad, text in [({"cron_expression": "nope"}, "cron"), ({"cron_expression": None, "interval_seconds": 10}, "interval"),
                      ({"cron_expression": None, "scheduled_at": "2001-01-01T00:00:00Z"}, "past")]:
        resp = client.post(url, {**body, **bad}, format="json")
        assert resp.status_code == 400 and text in resp.content.decode(), resp.content
    listing = client.get(reverse("deploymentschedule-list")).json()
    rows = listing["results"] if isinstance(listing, dict) else listing
    assert [r["schedule_id"] for r in rows] == [data["schedule_id"]]
    assert client.post(reverse("deploymentschedule-pause", args=[data["schedule_id"]])).json()["enabled"] is False
    assert client.delete(reverse("deploymentschedule-detail", args=[data["schedule_id"]])).status_code == 403  # operators cannot delete
    assert api.as_user(world.user("a", "admin")).delete(reverse("deploymentschedule-detail", args=[data["schedule_id"]])).status_code == 204
    assert not PeriodicTask.objects.filter(kwargs__contains=data["schedule_id"]).exists()
    viewer = api.as_user(world.user("a", "viewer"))
    assert viewer.post(url, {**body, "cron_expression": "0 9 * * *"}, format="json").status_code == 403


def test_fire_requests_the_operation(world, inst, django_capture_on_commit_callbacks):
    result = sched(world, inst, operation="suspend", upgrade_request=None, interval_seconds=600)
    assert services.schedule_fire(schedule_id=result["schedule_id"]) is None  # before scheduled_at: ignored
    with django_capture_on_commit_callbacks(execute=False):
        op = services.schedule_fire(schedule_id=result["schedule_id"], now=FUTURE + timedelta(seconds=1))
    assert op.trigger == "schedule" and op.triggered_by == world.user("a", "operator") and op.status == OperationStatus.SCHEDULED
    # busy instance: recorded on the schedule, not raised
    assert services.schedule_fire(schedule_id=result["schedule_id"], now=FUTURE + timedelta(seconds=601)) is None
    assert "already has operation" in DeploymentSchedule.objects.get(pk=result["schedule_id"]).last_error


def test_one_time_schedule_fires_through_real_beat_and_worker(world, celery_worker, settings):
    """A real DatabaseScheduler beat (embedded thread, 1 s loop) and a real worker on Redis."""
    import io

    from celery.beat import EmbeddedService
    from django.core.management import call_command

    from config.celery import app

    tenant = world.tenant("a")
    make_runbooks(tenant)
    instance = make_instance(tenant)
    call_command("setup_periodic_tasks", stdout=io.StringIO())  # the due-schedule dispatcher's beat entry
    due = timezone.now() + timedelta(seconds=3)
    result = services.schedule_deployment(actor=world.user("a", "operator"), tenant_id=None, instance_id=instance.pk,
                                          operation="suspend", scheduled_at=due)
    beat = EmbeddedService(app, max_interval=1, scheduler_cls="django_celery_beat.schedulers:DatabaseScheduler")
    beat.start()
    try:
        op = wait_for(lambda: Operation.objects.filter(schedule_id=result["schedule_id"]).first(), timeout=30)
        fired_at = DeploymentSchedule.objects.get(pk=result["schedule_id"]).last_fired_at
        assert fired_at >= due
        op = wait_for(lambda: Operation.objects.filter(pk=op.pk, status__in=[OperationStatus.SUCCEEDED, OperationStatus.FAILED]).first(), timeout=30)
    finally:
        beat.stop()
    assert op.status == OperationStatus.FAILED  # the instance's target does not exist on loopback:22 – but it really ran
    assert op.batches.get().job_run.status == "failed"


def test_missed_one_time_schedule_is_fired_once_by_the_sweeper(world, inst, django_capture_on_commit_callbacks):
    result = sched(world, inst, operation="suspend", upgrade_request=None, scheduled_at=timezone.now() + timedelta(seconds=30))
    later = timezone.now() + timedelta(minutes=5)
    with django_capture_on_commit_callbacks(execute=False):
        assert services.schedules_fire_missed(now=later) == 1
        assert services.schedules_fire_missed(now=later) == 0
        assert services.schedule_fire(schedule_id=result["schedule_id"]) is None  # a late beat fire does not run it twice
    assert Operation.objects.filter(schedule_id=result["schedule_id"]).count() == 1


@pytest.mark.parametrize("cron", ["0 0 30 2 *", "0 0 31 2 *", "0 0 31 6 *"])
def test_cron_that_never_fires_is_refused(cron, world, inst, api):
    client = api.as_user(world.user("a", "operator"))
    body = {"operation": "suspend", "instance_id": inst.pk, "scheduled_at": FUTURE.isoformat(), "cron_expression": cron}
    resp = client.post(reverse("deployment-schedule-create"), body, format="json")
    assert resp.status_code == 400, resp.content
    assert "never fires" in resp.content.decode()
    assert not DeploymentSchedule.objects.exists() and not PeriodicTask.objects.filter(task="deployments.fire_schedule").exists()


def test_stored_never_firing_cron_breaks_no_list(world, inst, api, client):
    result = sched(world, inst, cron_expression="0 2 * * 0")
    # a row saved before the validation existed: its next run cannot be computed
    from django_celery_beat.models import CrontabSchedule

    task = DeploymentSchedule.objects.get(pk=result["schedule_id"]).periodic_task
    CrontabSchedule.objects.filter(pk=task.crontab_id).update(day_of_month="30", month_of_year="2")
    user = world.user("a", "admin")
    c = api.as_user(user)
    listing = c.get(reverse("deploymentschedule-list"))
    assert listing.status_code == 200, listing.content
    rows = listing.json()["results"] if isinstance(listing.json(), dict) else listing.json()
    assert [r["next_run_at"] for r in rows] == [None]
    assert c.get(reverse("deploymentschedule-detail", args=[result["schedule_id"]])).status_code == 200
    client.force_login(user)
    page = client.get(reverse("admin:deployments_deploymentschedule_changelist"))
    assert page.status_code == 200 and "never" in page.content.decode()
    assert client.get(reverse("admin:deployments_deploymentschedule_change", args=[result["schedule_id"]])).status_code == 200
