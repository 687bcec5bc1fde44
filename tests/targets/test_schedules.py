"""Job schedules: a cron that never fires is refused; a stored one never breaks a list."""

from __future__ import annotations

import logging

import pytest
from django.urls import reverse

from apps.targets import services
from apps.targets.models import JobSchedule
from tests.factories.targets import make_job


@pytest.mark.parametrize("cron", ["0 0 31 2 *", "0 0 30 2 *", "0 0 31 4 *"])
def test_cron_that_never_fires_is_refused(cron, world, api):
    job = make_job(world.tenant("a"))
    client = api.as_user(world.user("a", "admin"))
    resp = client.post(reverse("job-schedules", args=[job.pk]), {"name": "never", "cron": cron}, format="json")
    assert resp.status_code == 400, resp.content
    assert "never fires" in resp.json()["errors"]["cron"][0]
    assert not JobSchedule.objects.exists()


def _stored_never_firing(world, cron="0 0 31 2 *") -> JobSchedule:
    """A row saved before the validation existed (or written around it)."""
    job = make_job(world.tenant("a"))
    schedule = services.schedule_create(actor=None, job=job, name="legacy", cron="0 0 * * *")
    JobSchedule.objects.filter(pk=schedule.pk).update(cron=cron)
    return JobSchedule.objects.get(pk=schedule.pk)


def test_stored_never_firing_cron_breaks_no_list(world, api, client, caplog):
    schedule = _stored_never_firing(world)
    user = world.user("a", "admin")
    c = api.as_user(user)
    for url in (reverse("jobschedule-list"), reverse("job-schedules", args=[schedule.job_id]),
                reverse("jobschedule-detail", args=[schedule.pk])):
        resp = c.get(url)
        assert resp.status_code == 200, (url, resp.content)
    detail = c.get(reverse("jobschedule-detail", args=[schedule.pk])).json()
    assert detail["next_runs"] == []
    client.force_login(user)
    assert client.get(reverse("admin:targets_jobschedule_changelist")).status_code == 200
    page = client.get(reverse("admin:targets_jobschedule_change", args=[schedule.pk]))
    assert page.status_code == 200 and "never" in page.content.decode()
    with caplog.at_level(logging.ERROR):
        assert services.schedules_check_missed() == 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# -- a schedule's fire under the job's overlap policy -------------------------------------------
@pytest.fixture
def busy_job(world, sshd):
    """A job on a loopback-sshd target with a run still RUNNING, and a schedule of it."""
    from apps.targets.choices import RunStatus
    from apps.targets.models import JobRun
    from tests.factories.targets import make_credential, make_target

    tenant = world.tenant("a")
    target = make_target(tenant, port=sshd.port, credential=make_credential(tenant, username=sshd.user, secret=sshd.key))
    job = make_job(tenant)
    job.default_targets.set([target])
    earlier = services.job_run_create(job, actor=None, targets=[target])
    JobRun.objects.filter(pk=earlier.pk).update(status=RunStatus.RUNNING)
    schedule = services.schedule_create(actor=None, job=job, name="nightly", cron="0 2 * * *")
    return job, schedule, earlier


def _policy(job, value):
    type(job).objects.filter(pk=job.pk).update(overlap_policy=value)


def test_schedule_fire_under_overlap_skip_is_recorded_not_run(busy_job):
    from apps.core.models import Event

    job, schedule, earlier = busy_job
    _policy(job, "skip")
    assert services.schedule_fire(schedule_id=schedule.pk) is None
    schedule.refresh_from_db()
    assert f"Run #{earlier.pk}" in schedule.last_error and "overlap policy: skip" in schedule.last_error
    assert job.runs.count() == 1
    skipped = Event.objects.get(name="job_schedule.skipped")
    assert skipped.payload["id"] == schedule.pk and "overlap policy: skip" in skipped.payload["reason"]


def test_schedule_fire_under_overlap_queue_waits_for_the_earlier_run(busy_job, monkeypatch):
    from apps.targets.choices import RunStatus
    from apps.targets.models import JobRun
    from apps.targets.services import runs

    job, schedule, earlier = busy_job
    _policy(job, "queue")
    requeued = []
    monkeypatch.setattr(runs, "_enqueue", lambda run_id, countdown=None: requeued.append((run_id, countdown)))
    run = services.schedule_fire(schedule_id=schedule.pk)
    assert run is not None and run.status == RunStatus.QUEUED and run.schedule_id == schedule.pk
    assert services.run_execute(run_id=run.pk) is None  # the earlier one is still running: wait
    assert JobRun.objects.get(pk=run.pk).status == RunStatus.QUEUED and requeued[-1] == (run.pk, 5)
    JobRun.objects.filter(pk=earlier.pk).update(status=RunStatus.SUCCEEDED)
    done = services.run_execute(run_id=run.pk)
    assert done is not None and done.status == RunStatus.SUCCEEDED


def test_schedule_fire_under_overlap_parallel_starts_at_once(busy_job, monkeypatch):
    from apps.targets.choices import RunStatus
    from apps.targets.services import runs

    job, schedule, earlier = busy_job
    _policy(job, "parallel")
    monkeypatch.setattr(runs, "_enqueue", lambda run_id, countdown=None: None)
    run = services.schedule_fire(schedule_id=schedule.pk)
    done = services.run_execute(run_id=run.pk)
    assert done is not None and done.status == RunStatus.SUCCEEDED
    assert earlier.__class__.objects.get(pk=earlier.pk).status == RunStatus.RUNNING


# -- a missed scheduled run raises an Alert ----------------------------------------------------
def test_missed_schedule_raises_an_alert_resolved_by_the_next_good_run(world, sshd, django_capture_on_commit_callbacks, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    from apps.alerts import services as alerts
    from apps.alerts.choices import AlertStatus
    from apps.alerts.models import Alert
    from apps.targets.services import runs
    from tests.factories.alerts import EscalationPolicyFactory
    from tests.factories.targets import make_credential, make_target

    tenant = world.tenant("a")
    target = make_target(tenant, port=sshd.port, credential=make_credential(tenant, username=sshd.user, secret=sshd.key))
    job = make_job(tenant)
    job.default_targets.set([target])
    schedule = services.schedule_create(actor=None, job=job, name="nightly", cron="0 2 * * *")
    JobSchedule.objects.filter(pk=schedule.pk).update(created_at=timezone.now() - timedelta(days=3))
    EscalationPolicyFactory(tenant=tenant)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.schedules_check_missed() == 1
    alert = Alert.objects.get(tenant=tenant, alert_type="schedule_missed")
    assert alert.status == AlertStatus.FIRING and alert.resource_type == "targets.jobschedule" and alert.resource_id == str(schedule.pk)
    assert "nightly" in alert.title
    alerts.alert_acknowledge(alert, actor=world.user("a", "operator"))
    # the next run of the schedule succeeds: the alert resolves
    monkeypatch.setattr(runs, "_enqueue", lambda run_id, countdown=None: None)
    with django_capture_on_commit_callbacks(execute=True):
        run = services.schedule_fire(schedule_id=schedule.pk)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.run_execute(run_id=run.pk).status == "succeeded"
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED and "succeeded" in alert.metadata.get("resolution", "")


def test_missed_schedule_alert_escalates(world, django_capture_on_commit_callbacks):
    from datetime import timedelta

    from django.utils import timezone

    from apps.alerts.models import Alert

    tenant = world.tenant("a")
    job = make_job(tenant)
    schedule = services.schedule_create(actor=None, job=job, name="hourly", cron="0 * * * *")
    JobSchedule.objects.filter(pk=schedule.pk).update(created_at=timezone.now() - timedelta(days=1))
    from tests.factories.alerts import EscalationPolicyFactory

    EscalationPolicyFactory(tenant=tenant)
    # half past the hour: the top of the hour is due and past its grace whenever the test runs
    half_past = timezone.now().replace(minute=30, second=0, microsecond=0)
    with django_capture_on_commit_callbacks(execute=True):
        services.schedules_check_missed(now=half_past)
    alert = Alert.objects.get(tenant=tenant, alert_type="schedule_missed")
    assert alert.next_escalation_at is not None  # the tenant's escalation policy applies as to any alert
