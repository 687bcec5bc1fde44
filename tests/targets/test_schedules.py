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
