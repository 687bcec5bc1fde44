"""Escalation steps of apps/alerts that page "whoever is on call in schedule X now" (and the
next layer's person), repeat a step, and stop on acknowledgement."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from apps.alerts import services as alerts
from apps.alerts.choices import AlertType
from apps.core.models import Event
from apps.oncall import services
from tests.oncall import factories as f

pytestmark = pytest.mark.django_db


def _schedule(world):
    sched = f.schedule(world, "a")
    start = (timezone.now() - timedelta(days=3)).date()
    owner = world.user("a", "owner")
    services.layer_create(
        actor=owner,
        schedule=sched,
        name="Backup",
        level=1,
        frequency="weekly",
        start_date=start,
        member_ids=[world.user("a", "viewer").pk],
    )
    services.layer_create(
        actor=owner,
        schedule=sched,
        name="Primary",
        level=2,
        frequency="weekly",
        start_date=start,
        member_ids=[world.user("a", "operator").pk],
    )
    return sched


def test_step_pages_the_person_on_call_and_the_next_layer_repeats_and_ack_stops(world):
    from apps.alerts.models import EscalationPolicy

    sched = _schedule(world)
    t = world.tenant("a")
    alerts.escalation_policy_create(
        actor=world.user("a", "owner"),
        tenant=t,
        name="On call",
        steps=[
            {"wait_minutes": 0, "oncall_schedule_ids": [sched.pk], "repeat": 1},
            {"wait_minutes": 5, "oncall_schedule_ids": [sched.pk], "oncall_next_layer": True},
        ],
        alert_types=[],
        min_severity="info",
        repeat=0,
    )
    assert EscalationPolicy.objects.count() == 1
    t0 = timezone.now()
    alert, _ = alerts.alert_raise(
        tenant=t, alert_type=AlertType.JOB_FAILED, title="disk full", resource_type="r", resource_id=1, now=t0
    )
    op, viewer = world.user("a", "operator").pk, world.user("a", "viewer").pk
    alerts.alert_escalate_step(alert_id=alert.pk, now=t0)
    first = Event.objects.filter(name="alert.escalated").latest("created_at")
    assert first.payload["notify"]["user_ids"] == [op]
    alert.refresh_from_db()
    assert alert.escalation_step == 0 and alert.next_escalation_at == t0 + timedelta(minutes=1)  # the step repeats once
    alerts.alert_escalate_step(alert_id=alert.pk, now=t0 + timedelta(minutes=1))
    alert.refresh_from_db()
    assert alert.escalation_step == 1 and Event.objects.filter(name="alert.escalated").count() == 2
    alerts.alert_escalate_step(alert_id=alert.pk, now=t0 + timedelta(minutes=6))
    last = Event.objects.filter(name="alert.escalated").latest("created_at")
    assert last.payload["notify"]["user_ids"] == [op, viewer]  # on call now and the next layer down
    # a new alert: acknowledging stops the chain before the on-call person is paged again
    alert2, _ = alerts.alert_raise(
        tenant=t, alert_type=AlertType.JOB_FAILED, title="cpu", resource_type="r", resource_id=2, now=t0
    )
    alerts.alert_acknowledge(alert2, actor=world.user("a", "operator"))
    assert alerts.alert_escalate_step(alert_id=alert2.pk, now=t0 + timedelta(minutes=1)) is None


def test_step_naming_another_tenants_schedule_is_a_400(world, api):
    foreign = f.schedule(world, "b")
    with pytest.raises(ValidationError, match="No on-call schedule"):
        alerts.escalation_policy_create(
            actor=world.user("a", "owner"),
            tenant=world.tenant("a"),
            name="x",
            steps=[{"wait_minutes": 1, "oncall_schedule_ids": [foreign.pk]}],
        )
    client = api.as_user(world.user("a", "owner"))
    response = client.post(
        reverse("escalationpolicy-list"),
        {"name": "x", "steps": [{"wait_minutes": 1, "oncall_schedule_ids": [foreign.pk]}]},
        format="json",
    )
    assert response.status_code == 400 and "No on-call schedule" in str(response.json())


def _gap_schedule(world, name: str, owners=()):
    """A schedule whose only rotation covers one hour three days from now: nobody is on call now."""
    from zoneinfo import ZoneInfo

    owner = world.user("a", "owner")
    sched = services.schedule_create(actor=owner, tenant=world.tenant("a"), name=name, timezone="Europe/Berlin", owners=list(owners))
    day = (timezone.now().astimezone(ZoneInfo("Europe/Berlin")) + timedelta(days=3)).strftime("%a").lower()
    services.layer_create(
        actor=owner, schedule=sched, name="Office", level=1, frequency="weekly",
        start_date=(timezone.now() - timedelta(days=3)).date(), member_ids=[world.user("a", "operator").pk],
        restrictions=[{"weekdays": [day], "start": "09:00", "end": "10:00"}],
    )
    return sched


def _policy(world, steps):
    return alerts.escalation_policy_create(
        actor=world.user("a", "owner"), tenant=world.tenant("a"), name=f"Gap {len(steps)} {steps[0]}", steps=steps,
        alert_types=[], min_severity="info", repeat=0,
    )


def test_nobody_on_call_pages_the_schedule_owners_records_it_and_the_chain_goes_on(world):
    from apps.alerts.timeline import timeline_page

    admin, viewer = world.user("a", "admin"), world.user("a", "viewer")
    sched = _gap_schedule(world, "Night desk", owners=[admin])
    assert services.escalation_targets(tenant_id=sched.tenant_id, schedule_ids=[sched.pk]) == []  # a real gap
    _policy(world, [{"wait_minutes": 0, "oncall_schedule_ids": [sched.pk]}, {"wait_minutes": 5, "user_ids": [viewer.pk]}])
    t0 = timezone.now()
    alert, _ = alerts.alert_raise(tenant=world.tenant("a"), alert_type=AlertType.JOB_FAILED, title="disk full",
                                  resource_type="r", resource_id=1, now=t0)
    alerts.alert_escalate_step(alert_id=alert.pk, now=t0)

    paged = Event.objects.get(name="alert.escalated")
    assert paged.payload["notify"]["user_ids"] == [admin.pk] and "roles" not in paged.payload["notify"]
    gap = Event.objects.get(name="alert.nobody_on_call")
    assert gap.payload["id"] == alert.pk and gap.payload["step"] == 1 and gap.payload["fallback"] == "schedule_owners"
    assert gap.payload["schedules"] == [{"id": sched.pk, "name": "Night desk", "paged_user_ids": [admin.pk]}]
    assert "Night desk" in gap.payload["title"] and "notify" not in gap.payload
    # the record is on the alert's timeline, and the chain goes on to its next step
    page = timeline_page(user=world.user("a", "owner"), tenant_slug=world.tenant("a").slug, kinds="alert")
    assert [e["object_id"] for e in page["results"] if e["event"] == "alert.nobody_on_call"] == [str(alert.pk)]
    alert.refresh_from_db()
    assert alert.escalation_step == 1 and alert.next_escalation_at == t0 + timedelta(minutes=5)
    alerts.alert_escalate_step(alert_id=alert.pk, now=t0 + timedelta(minutes=5))
    assert Event.objects.filter(name="alert.escalated").latest("created_at").payload["notify"]["user_ids"] == [viewer.pk]


def test_nobody_on_call_and_no_owner_pages_the_tenant_admins(world):
    sched = _gap_schedule(world, "Weekend desk")
    _policy(world, [{"wait_minutes": 0, "oncall_schedule_ids": [sched.pk]}])
    t0 = timezone.now()
    alert, _ = alerts.alert_raise(tenant=world.tenant("a"), alert_type=AlertType.JOB_FAILED, title="cpu",
                                  resource_type="r", resource_id=2, now=t0)
    alerts.alert_escalate_step(alert_id=alert.pk, now=t0)
    paged = Event.objects.get(name="alert.escalated")
    assert paged.payload["notify"]["roles"] == ["owner", "admin"] and paged.payload["notify"]["user_ids"] == []
    gap = Event.objects.get(name="alert.nobody_on_call")
    assert gap.payload["fallback"] == "tenant_admins" and gap.payload["schedules"][0]["paged_user_ids"] == []


def test_nobody_on_call_beside_other_targets_is_recorded_without_extra_paging(world):
    viewer = world.user("a", "viewer")
    sched = _gap_schedule(world, "Holiday desk")
    _policy(world, [{"wait_minutes": 0, "oncall_schedule_ids": [sched.pk], "user_ids": [viewer.pk]}])
    t0 = timezone.now()
    alert, _ = alerts.alert_raise(tenant=world.tenant("a"), alert_type=AlertType.JOB_FAILED, title="mem",
                                  resource_type="r", resource_id=3, now=t0)
    alerts.alert_escalate_step(alert_id=alert.pk, now=t0)
    notify = Event.objects.get(name="alert.escalated").payload["notify"]
    assert notify["user_ids"] == [viewer.pk] and "roles" not in notify
    assert Event.objects.get(name="alert.nobody_on_call").payload["fallback"] == "step_targets"


def test_an_oncall_person_who_left_the_tenant_counts_as_nobody(world):
    from apps.tenants.models import Membership

    admin = world.user("a", "admin")
    sched = _schedule(world)
    sched.owners.set([admin])
    _policy(world, [{"wait_minutes": 0, "oncall_schedule_ids": [sched.pk]}])
    Membership.objects.filter(user=world.user("a", "operator"), organization=world.tenant("a")).update(is_active=False)
    t0 = timezone.now()
    alert, _ = alerts.alert_raise(tenant=world.tenant("a"), alert_type=AlertType.JOB_FAILED, title="net",
                                  resource_type="r", resource_id=4, now=t0)
    alerts.alert_escalate_step(alert_id=alert.pk, now=t0)
    assert Event.objects.get(name="alert.escalated").payload["notify"]["user_ids"] == [admin.pk]
    assert Event.objects.get(name="alert.nobody_on_call").payload["fallback"] == "schedule_owners"
