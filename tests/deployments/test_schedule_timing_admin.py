"""A deployment schedule's timing is edited on its own admin page (schedule_retime keeps the
django-celery-beat PeriodicTask in sync), with the next 10 runs shown."""

from __future__ import annotations

from datetime import timedelta

from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import ClockedSchedule

from apps.deployments import services
from apps.deployments.models import DeploymentSchedule
from tests.factories.deployments import make_instance


def _schedule(world, **timing):
    instance = make_instance(world.tenant("a"))
    when = timezone.now() + timedelta(days=2)
    made = services.schedule_deployment(
        actor=world.user("a", "operator"),
        tenant_id=None,
        operation="suspend",
        scheduled_at=when,
        instance_id=instance.pk,
        **timing,
    )
    return DeploymentSchedule.objects.select_related("periodic_task").get(pk=made["schedule_id"])


def _post(client, schedule, **fields):
    url = reverse("admin:deployments_deploymentschedule_change", args=[schedule.pk])
    form = client.get(url).context["adminform"].form
    local = timezone.localtime(schedule.scheduled_at)
    data = {
        "scheduled_at_0": local.strftime("%Y-%m-%d"),
        "scheduled_at_1": local.strftime("%H:%M:%S"),
        "timezone": form["timezone"].value(),
        "cron_expression": form["cron_expression"].value() or "",
        "interval_seconds": form["interval_seconds"].value() or "",
    }
    data.update(fields)
    return client.post(url, data)


def test_operator_changes_one_time_to_cron_in_a_time_zone(world, client):
    schedule = _schedule(world)
    old_clocked = schedule.periodic_task.clocked_id
    client.force_login(world.user("a", "operator"))
    answer = _post(client, schedule, cron_expression="30 2 * * 1", timezone="Europe/Berlin")
    assert answer.status_code == 302, answer.context["adminform"].form.errors
    schedule = DeploymentSchedule.objects.select_related("periodic_task__crontab").get(pk=schedule.pk)
    task = schedule.periodic_task
    assert schedule.cron_expression == "30 2 * * 1" and task.crontab.timezone.key == "Europe/Berlin"
    assert task.clocked_id is None and not task.one_off and schedule.enabled
    assert schedule.next_fire_at == schedule.next_run_at and not task.enabled  # fired by the dispatcher; beat's row is display-only
    assert not ClockedSchedule.objects.filter(pk=old_clocked).exists()
    assert task.name.startswith("Tenant A · ") and task.name.endswith(" · suspend · " + str(schedule.pk)[:8])
    page = client.get(reverse("admin:deployments_deploymentschedule_change", args=[schedule.pk])).content.decode()
    assert page.count(" UTC<br>") == 9  # ten runs, one per line
    assert "Next 10 runs" in page


def test_cron_to_interval_and_paused_stays_paused(world, client):
    schedule = _schedule(world, cron_expression="0 3 * * *")
    services.schedule_pause(schedule, actor=world.user("a", "operator"))
    client.force_login(world.user("a", "operator"))
    assert _post(client, schedule, cron_expression="", interval_seconds="3600").status_code == 302
    schedule = DeploymentSchedule.objects.select_related("periodic_task__interval").get(pk=schedule.pk)
    assert schedule.interval_seconds == 3600 and schedule.periodic_task.crontab_id is None
    assert schedule.enabled is False and schedule.next_fire_at is None


def test_bad_timing_is_a_field_error_and_changes_nothing(world, client):
    schedule = _schedule(world, cron_expression="0 3 * * *")
    client.force_login(world.user("a", "operator"))
    cases = [
        ({"cron_expression": "61 * * * *"}, "cron_expression", "not a valid cron expression"),
        ({"interval_seconds": "30", "cron_expression": ""}, "interval_seconds", "between 60 seconds"),
        ({"timezone": "Mars/Olympus"}, "timezone", "Unknown time zone"),
        ({"cron_expression": "", "scheduled_at_0": "2001-01-01"}, "scheduled_at", "in the past"),
    ]
    for fields, field, text in cases:
        answer = _post(client, schedule, **fields)
        assert answer.status_code == 200, fields
        assert text in " ".join(answer.context["adminform"].form.errors.get(field, [])), (
            fields,
            answer.context["adminform"].form.errors,
        )
    schedule = DeploymentSchedule.objects.select_related("periodic_task__crontab").get(pk=schedule.pk)
    assert schedule.cron_expression == "0 3 * * *" and schedule.timezone == world.tenant("a").timezone


def test_viewer_sees_timing_but_cannot_change_it(world, client):
    schedule = _schedule(world, cron_expression="0 3 * * *")
    client.force_login(world.user("a", "viewer"))
    page = client.get(reverse("admin:deployments_deploymentschedule_change", args=[schedule.pk]))
    assert page.status_code == 200 and "cron_expression" not in page.context["adminform"].form.fields
    assert "/admin/django_celery_beat/" not in page.content.decode()  # no link tenant staff would be refused
