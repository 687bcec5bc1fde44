"""Admin: a deployment schedule can be created from the admin (schedule_deployment), with every
rule of the service answered as a form error; instance edits save (read-only inlines)."""

from __future__ import annotations

from datetime import timedelta

from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import ClockedSchedule, CrontabSchedule, PeriodicTask

from apps.deployments.models import DeploymentSchedule
from tests.factories.deployments import make_instance

ADD = "admin:deployments_deploymentschedule_add"


def _post(client, instance, **fields):
    when = timezone.localtime(timezone.now() + timedelta(days=2))
    data = {"instance": instance.pk, "operation": "upgrade", "scheduled_at_0": when.strftime("%Y-%m-%d"),
            "scheduled_at_1": "03:00:00", "cron_expression": "", "interval_seconds": "", "request": '{"to_version": "2.0"}',
            "metadata": "{}"}
    data.update(fields)
    return client.post(reverse(ADD), data)


def test_operator_adds_cron_schedule_with_its_periodic_task(world, client):
    instance = make_instance(world.tenant("a"))
    client.force_login(world.user("a", "operator"))
    r = _post(client, instance, cron_expression="0 3 * * 0")
    assert r.status_code == 302, r.context["adminform"].form.errors
    schedule = DeploymentSchedule.objects.select_related("periodic_task__crontab").get()
    assert schedule.tenant == world.tenant("a") and schedule.created_by == world.user("a", "operator")
    assert schedule.parameters["to_version"] == "2.0" and schedule.cron_expression == "0 3 * * 0"
    # beat's row reads tenant · object · operation (· the schedule's id, to keep twins apart)
    assert schedule.periodic_task.name == f"Tenant A · {instance.name} · upgrade · {str(schedule.pk)[:8]}" and schedule.enabled
    assert schedule.next_fire_at == schedule.next_run_at and not schedule.periodic_task.enabled  # display-only in beat's admin


def test_service_rules_come_back_as_form_errors_and_write_nothing(world, client):
    instance = make_instance(world.tenant("a"))
    client.force_login(world.user("a", "operator"))
    cases = [
        ({"cron_expression": "61 * * * *"}, "cron_expression", "not a valid cron expression"),
        ({"cron_expression": "0 3 * * 0", "interval_seconds": "600"}, "cron_expression", "not both"),
        ({"interval_seconds": "5"}, "interval_seconds", "between 60 seconds"),
        ({"request": "{}"}, "request", "needs upgrade_request"),
        ({"operation": "suspend", "request": '{"x": 1}'}, "request", "takes no request"),
        ({"scheduled_at_0": "2001-01-01"}, "scheduled_at", "in the past"),
    ]
    for fields, field, text in cases:
        r = _post(client, instance, **fields)
        assert r.status_code == 200, fields
        errors = r.context["adminform"].form.errors
        assert text in " ".join(errors.get(field, [])), (fields, errors)
    assert not DeploymentSchedule.objects.exists()
    assert not PeriodicTask.objects.filter(task="deployments.fire_schedule").exists()
    assert not ClockedSchedule.objects.exists() and not CrontabSchedule.objects.filter(minute="61").exists()


def test_duplicate_schedule_is_a_form_error(world, client):
    instance = make_instance(world.tenant("a"))
    client.force_login(world.user("a", "operator"))
    assert _post(client, instance, cron_expression="0 3 * * 0").status_code == 302
    r = _post(client, instance, cron_expression="0 3 * * 0")
    assert r.status_code == 200 and "identical schedule already exists" in str(r.context["adminform"].form.non_field_errors())
    assert DeploymentSchedule.objects.count() == 1


def test_viewer_cannot_add_and_other_tenants_instance_is_not_offered(world, client):
    instance_b = make_instance(world.tenant("b"), name="b-app")
    client.force_login(world.user("a", "viewer"))
    assert client.get(reverse(ADD)).status_code == 403
    client.force_login(world.user("a", "operator"))
    r = _post(client, instance_b, cron_expression="0 3 * * 0")
    assert r.status_code == 200 and "instance" in r.context["adminform"].form.errors
    assert not DeploymentSchedule.objects.exists()


def test_instance_change_saves(world, client):
    # the read-only operations inline was never saved, so every instance save raised (500)
    instance = make_instance(world.tenant("a"), name="app-9")
    client.force_login(world.user("a", "admin"))
    url = reverse("admin:deployments_instance_change", args=[instance.pk])
    page = client.get(url)
    form = page.context["adminform"].form
    data = {name: form[name].value() for name in form.fields}
    data = {k: ("" if v is None else v) for k, v in data.items()}
    data["config"] = "{}"
    data["targets"] = [t.pk for t in instance.targets.all()]
    data["memory_gb"] = 16
    for inline in page.context["inline_admin_formsets"]:
        management = inline.formset.management_form
        data.update({f"{management.prefix}-{k}": v for k, v in management.initial.items()})
    r = client.post(url, data)
    assert r.status_code == 302, r.context["adminform"].form.errors
    instance.refresh_from_db()
    assert instance.memory_gb == 16
