"""API and services: secrets write-only and sealed, rotation, guardian sharing, step validation,
versioning, schedules, output polling, reaper."""

from __future__ import annotations

import io
import json
import logging
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from apps.core import crypto
from apps.targets import services
from apps.targets.choices import RunStatus, StepStatus
from apps.targets.models import Credential, JobRun, JobRunOutput, JobSchedule
from apps.targets.scheduling import next_runs
from tests.factories.targets import make_credential, make_job, make_target

SECRET = "Sup3r-Secret-Value-987"


def test_credential_secret_is_sealed_and_never_returned(world, api, client, caplog):
    caplog.set_level(logging.DEBUG)
    c = api.as_user(world.user("a", "admin"))
    created = c.post(reverse("credential-list"), {"name": "db", "kind": "ssh_password", "username": "root", "secret": SECRET}, format="json")
    assert created.status_code == 201, created.content
    assert SECRET not in created.content.decode() and created.json()["secret"] == "********"
    row = Credential.objects.get(pk=created.json()["id"])
    assert row.secret.startswith(f"v{crypto.current_version()}$") and SECRET not in row.secret
    assert row.get_secret() == SECRET
    for url in (reverse("credential-list"), reverse("credential-detail", args=[row.pk])):
        assert SECRET not in c.get(url).content.decode()
    client.force_login(world.user("a", "admin"))
    page = client.get(reverse("admin:targets_credential_change", args=[row.pk]))
    assert page.status_code == 200 and SECRET not in page.content.decode() and row.secret not in page.content.decode()
    # the placeholder sent back keeps the secret
    c.patch(reverse("credential-detail", args=[row.pk]), {"secret": "********", "username": "admin"}, format="json")
    row.refresh_from_db()
    assert row.get_secret() == SECRET and row.username == "admin"
    assert SECRET not in caplog.text


def test_rotate_and_key_rotation_reencrypt(world, api, settings):
    cred = make_credential(world.tenant("a"), secret="old")
    c = api.as_user(world.user("a", "admin"))
    assert c.post(reverse("credential-rotate", args=[cred.pk]), {"secret": "new-one"}, format="json").status_code == 200
    cred.refresh_from_db()
    assert cred.get_secret() == "new-one" and cred.rotated_at
    assert api.as_user(world.user("a", "operator")).post(reverse("credential-rotate", args=[cred.pk]), {"secret": "x"}, format="json").status_code == 403
    old_version = crypto.current_version()
    settings.PORTAL_ENCRYPTION_KEYS = f"{old_version + 1}:{crypto.generate_key()},{settings.PORTAL_ENCRYPTION_KEYS}"
    call_command("rotate_encryption_key", stdout=io.StringIO())
    cred.refresh_from_db()
    assert cred.secret.startswith(f"v{old_version + 1}$") and cred.get_secret() == "new-one"


def test_guardian_share_makes_credential_visible_to_one_user(world, api):
    cred = make_credential(world.tenant("a"), name="shared")
    agent = world.user("a", "support_agent")
    ids = lambda: {r["id"] for r in api.as_user(agent).get(reverse("credential-list")).json()["results"]}  # noqa: E731
    assert cred.pk not in ids()
    r = api.as_user(world.user("a", "admin")).post(reverse("credential-share", args=[cred.pk]), {"user": agent.pk}, format="json")
    assert r.status_code == 204, r.content
    assert cred.pk in ids()
    assert cred.pk not in {r["id"] for r in api.as_user(world.user("a", "viewer")).get(reverse("credential-list")).json()["results"]}
    outsider = api.as_user(world.user("a", "admin")).post(reverse("credential-share", args=[cred.pk]), {"user": world.user("b", "admin").pk}, format="json")
    assert outsider.status_code == 400


def test_bad_step_is_400_naming_step_and_field(world, api):
    c = api.as_user(world.user("a", "admin"))
    r = c.post(reverse("job-list"), {"name": "bad", "steps": [
        {"type": "ssh.exec", "command": "ok"},
        {"name": "deploy", "type": "ssh.exec", "comand": "typo"},
        {"type": "http.request", "url": "ftp://x"},
        {"type": "ssh.exec", "command": "echo {{ nope }}"},
    ]}, format="json")
    assert r.status_code == 400
    steps = r.json()["errors"]["steps"]
    assert any(m.startswith('steps[1] "deploy": command:') for m in steps), steps
    assert any(m.startswith("steps[2]: url:") for m in steps), steps
    assert any("steps[3]: command: unknown parameter(s) nope" in m for m in steps), steps


def test_editing_a_job_creates_a_version_and_runs_keep_theirs(world, api):
    c = api.as_user(world.user("a", "admin"))
    t = make_target(world.tenant("a"), credential=make_credential(world.tenant("a")))
    job = c.post(reverse("job-list"), {"name": "j", "steps": [{"type": "ssh.exec", "command": "true"}], "default_targets": [t.pk]}, format="json").json()
    assert job["version"] == 1
    run = services.job_run_create(__import__("apps.targets.models", fromlist=["Job"]).Job.objects.get(pk=job["id"]), actor=world.user("a", "admin"), check_mode=True)
    r = c.patch(reverse("job-detail", args=[job["id"]]), {"steps": [{"type": "ssh.exec", "command": "false"}]}, format="json")
    assert r.json()["version"] == 2 and r.json()["steps"][0]["command"] == "false"
    assert c.patch(reverse("job-detail", args=[job["id"]]), {"enabled": True}, format="json").json()["version"] == 2
    versions = c.get(reverse("job-versions", args=[job["id"]])).json()["results"]
    assert [v["number"] for v in versions] == [2, 1]
    run.refresh_from_db()
    assert run.version.number == 1


def test_run_endpoint_validates_params_and_targets(world, api):
    tenant = world.tenant("a")
    t = make_target(tenant, credential=make_credential(tenant))
    job = make_job(tenant, parameters_schema={"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]})
    c = api.as_user(world.user("a", "operator"))
    url = reverse("job-run", args=[job.pk])
    assert c.post(url, {"params": {"n": "x"}, "targets": [t.pk]}, format="json").status_code == 400
    foreign = make_target(world.tenant("b"), credential=make_credential(world.tenant("b")))
    assert c.post(url, {"params": {"n": 1}, "targets": [foreign.pk]}, format="json").status_code == 400
    assert api.as_user(world.user("a", "viewer")).post(url, {"params": {"n": 1}, "targets": [t.pk]}, format="json").status_code == 403


def test_output_tail_api_pages_by_offset(world, api):
    tenant = world.tenant("a")
    job = make_job(tenant)
    t = make_target(tenant, credential=make_credential(tenant))
    run = services.job_run_create(job, actor=None, targets=[t])
    step = run.steps.get()
    JobRunOutput.objects.bulk_create([JobRunOutput(run=run, step=step, data=f"line {i}\n") for i in range(5)])
    c = api.as_user(world.user("a", "viewer"))
    first = c.get(reverse("jobrun-output", args=[run.pk]), {"after": 0, "limit": 3}).json()
    assert [ch["data"] for ch in first["chunks"]] == ["line 0\n", "line 1\n", "line 2\n"] and not first["finished"]
    rest = c.get(reverse("jobrun-output", args=[run.pk]), {"after": first["next_after"]}).json()
    assert [ch["data"] for ch in rest["chunks"]] == ["line 3\n", "line 4\n"]
    steps = c.get(reverse("jobrun-steps", args=[run.pk])).json()
    assert steps["results"][0]["target_name"] == t.name


def test_reaper_fails_runs_whose_worker_stopped(world):
    tenant = world.tenant("a")
    job = make_job(tenant)
    t = make_target(tenant, credential=make_credential(tenant))
    run = services.job_run_create(job, actor=None, targets=[t])
    JobRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, started_at=timezone.now() - timedelta(minutes=10),
                                            heartbeat_at=timezone.now() - timedelta(minutes=9), worker="w1")
    fresh = services.job_run_create(make_job(tenant, name="other"), actor=None, targets=[t])
    JobRun.objects.filter(pk=fresh.pk).update(status=RunStatus.RUNNING, started_at=timezone.now(), heartbeat_at=timezone.now())
    result = services.runs_reap()
    run.refresh_from_db()
    assert result["reaped"] == 1 and run.status == RunStatus.FAILED and "stopped sending heartbeats" in run.error
    assert run.steps.get().status == StepStatus.SKIPPED  # it never started: not run, not failed
    assert JobRun.objects.get(pk=fresh.pk).status == RunStatus.RUNNING


def test_schedules_sync_to_beat_preview_in_zone_and_missed_alert(world, api):
    tenant = world.tenant("a")
    job = make_job(tenant, parameters_schema={"type": "object", "properties": {"x": {"type": "string"}}})
    c = api.as_user(world.user("a", "admin"))
    r = c.post(reverse("job-schedules", args=[job.pk]), {"name": "daily", "cron": "30 2 * * *", "timezone": "Europe/Berlin", "params": {"x": "1"}}, format="json")
    assert r.status_code == 201, r.content
    sched = JobSchedule.objects.get(pk=r.json()["id"])
    task = PeriodicTask.objects.get(pk=sched.periodic_task_id)
    assert task.name == f"Tenant A · {job.name} / daily · run job · #{sched.pk}"  # tenant · object · operation
    assert task.crontab.timezone.key == "Europe/Berlin" and json.loads(task.kwargs) == {"schedule_id": sched.pk}
    assert len(r.json()["next_runs"]) == 10
    # DST: 2026-03-29 02:30 does not exist in Berlin; the preview never yields it and stays at local 02:30 otherwise
    import datetime as dt
    from zoneinfo import ZoneInfo

    berlin = ZoneInfo("Europe/Berlin")
    spring = next_runs(sched, start=dt.datetime(2026, 3, 27, 12, tzinfo=berlin))
    assert [d.astimezone(berlin).date().day for d in spring[:3]] == [28, 29, 30]  # the gap day fires once (03:00)
    autumn = next_runs(sched, start=dt.datetime(2026, 10, 23, 12, tzinfo=berlin))
    days = [d.astimezone(berlin).date() for d in autumn]
    assert len(days) == len(set(days))  # the repeated hour does not fire twice
    bad = c.post(reverse("job-schedules", args=[job.pk]), {"name": "broken", "cron": "61 * * * *"}, format="json")
    assert bad.status_code == 400 and "cron" in bad.json()["errors"]
    JobSchedule.objects.filter(pk=sched.pk).update(created_at=timezone.now() - timedelta(days=3))
    assert services.schedules_check_missed() == 1
    assert services.schedules_check_missed() == 0  # once per due time


@pytest.mark.parametrize("value", ["$(id)", "a'b", "x\u2019; Remove-Item C:\\ -Recurse; '"])
def test_powershell_literal_and_script_values(value):
    from apps.targets.templating import quote_powershell, render_script

    quoted = quote_powershell(value)  # copy paths: one literal whose quotes are all doubled
    inner = quoted[1:-1]
    for q in "'\u2019":
        assert inner.count(q) % 2 == 0
    script = render_script("Write-Output {{ v }}", {"v": value}, shell="powershell")
    assert (script.text, script.env) == ("Write-Output ${env:OPS_1}", {"OPS_1": value})
