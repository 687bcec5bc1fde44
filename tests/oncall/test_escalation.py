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
