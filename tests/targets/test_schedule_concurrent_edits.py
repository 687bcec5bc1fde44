"""A job schedule edited from an instance loaded before the dispatcher fired it: the edit writes
only what it changed, so the fire stamp (`last_fired_at`, the guard against firing a due time
twice) and the stored refusal survive."""

from datetime import timedelta

from apps.targets import services
from apps.targets.models import JobSchedule
from tests.factories.targets import make_job


def test_edit_from_a_stale_instance_keeps_the_fire_stamp(world, django_capture_on_commit_callbacks):
    job = make_job(world.tenant("a"))
    schedule = services.schedule_create(actor=None, job=job, name="nightly", cron="0 3 * * *")
    stale = JobSchedule.objects.get(pk=schedule.pk)  # the admin/API loaded it before the fire
    due = stale.next_fire_at
    with django_capture_on_commit_callbacks(execute=False):
        assert services.schedules_fire_due(ids=[schedule.pk], due=due, now=due)["fired"] == 1
    JobSchedule.objects.filter(pk=schedule.pk).update(last_error="no target")
    services.schedule_update(stale, actor=None, name="nightly (eu)", params={})
    row = JobSchedule.objects.get(pk=schedule.pk)
    assert row.name == "nightly (eu)" and row.last_fired_at == due and row.last_error == "no target"
    with django_capture_on_commit_callbacks(execute=False):  # the redelivered fire of that due time is still refused
        assert services.schedules_fire_due(ids=[schedule.pk], due=due, now=due + timedelta(seconds=1))["fired"] == 0


def test_two_stale_edits_keep_each_others_fields(world):
    job = make_job(world.tenant("a"))
    schedule = services.schedule_create(actor=None, job=job, name="nightly", cron="0 3 * * *", grace_seconds=600)
    first, second = JobSchedule.objects.get(pk=schedule.pk), JobSchedule.objects.get(pk=schedule.pk)
    services.schedule_update(first, actor=None, cron="30 4 * * *")
    services.schedule_update(second, actor=None, grace_seconds=900, cron="0 3 * * *")  # cron given unchanged: not written
    row = JobSchedule.objects.get(pk=schedule.pk)
    assert (row.cron, row.grace_seconds) == ("30 4 * * *", 900)
