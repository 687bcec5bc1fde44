"""Beat's periodic tasks: readable names and a tenant column for platform staff; tenant staff who
reach beat's admin get the styled page saying why and where to go instead."""

from __future__ import annotations

from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from apps.deployments import services
from tests.factories.deployments import make_instance


def test_platform_staff_see_each_tasks_tenant(world, client):
    instance = make_instance(world.tenant("a"), name="shop-eu")
    made = services.schedule_deployment(
        actor=world.user("a", "operator"),
        tenant_id=None,
        operation="suspend",
        scheduled_at=timezone.now() + timedelta(days=1),
        instance_id=instance.pk,
        cron_expression="0 4 * * *",
    )
    client.force_login(world.user("platform", "admin"))
    page = client.get(reverse("admin:django_celery_beat_periodictask_changelist"))
    assert page.status_code == 200
    rows = {t.name: t.tenant_name for t in page.context["cl"].result_list}
    name = f"Tenant A · shop-eu · suspend · {made['schedule_id'][:8]}"
    assert rows[name] == "Tenant A"
    only_a = client.get(reverse("admin:django_celery_beat_periodictask_changelist"), {"tenant": "Tenant A"})
    assert [t.name for t in only_a.context["cl"].result_list] == [name]


def test_tenant_staff_get_the_styled_why_page(world, client):
    client.force_login(world.user("a", "admin"))
    answer = client.get(reverse("admin:django_celery_beat_periodictask_changelist"))
    assert answer.status_code == 403
    html = answer.content.decode()
    assert "<h1>You can't see this page</h1>" in html and "/static/admin/css/base.css" in html
    assert "belong to the platform" in html
    assert reverse("admin:deployments_deploymentschedule_changelist") in html
    assert "acting as admin of Tenant A" in html


def test_api_refusals_stay_json(world, client):
    from django.test import RequestFactory

    from apps.core.refusals import permission_denied

    answer = permission_denied(RequestFactory().get("/api/v1/x"), Exception("nope"))
    assert answer.status_code == 403 and answer["Content-Type"] == "application/json"
