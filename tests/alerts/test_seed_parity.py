"""Seed 002 parity: what the seed's alert service does that the portal must do too."""

import pytest

from apps.alerts.models import Alert
from apps.core.models import Event
from apps.tickets import services as tickets
from tests.factories.tickets import TicketFactory

pytestmark = pytest.mark.django_db


def test_raising_a_ticket_to_critical_raises_a_critical_alert(world, django_capture_on_commit_callbacks):
    ticket = TicketFactory(tenant=world.tenant("a"), priority="normal")
    with django_capture_on_commit_callbacks(execute=True):
        tickets.ticket_update(ticket, actor=world.user("a", "admin"), priority="critical")
    event = Event.objects.get(name="ticket.priority_changed")
    assert event.payload["old_priority"] == "normal" and event.payload["priority"] == "critical"
    alert = Alert.objects.get(tenant=world.tenant("a"), alert_type="critical_ticket")
    assert alert.severity == "critical" and alert.resource_id == str(ticket.pk)
    # lowering it (or another change) raises nothing more; raising again counts on the open alert
    with django_capture_on_commit_callbacks(execute=True):
        tickets.ticket_update(ticket, actor=world.user("a", "admin"), priority="high")
    assert Alert.objects.filter(alert_type="critical_ticket").count() == 1


def test_other_priority_changes_raise_no_alert(world, django_capture_on_commit_callbacks):
    ticket = TicketFactory(tenant=world.tenant("a"), priority="low")
    with django_capture_on_commit_callbacks(execute=True):
        tickets.ticket_update(ticket, actor=world.user("a", "admin"), priority="urgent")
    assert Event.objects.filter(name="ticket.priority_changed").exists()
    assert not Alert.objects.filter(alert_type="critical_ticket").exists()


def test_put_subscriptions_replaces_the_callers_whole_set(world, api):
    from apps.alerts.models import AlertSubscription
    from tests.factories.alerts import AlertSubscriptionFactory

    agent, admin = world.user("a", "support_agent"), world.user("a", "admin")
    tenant = world.tenant("a")
    kept = AlertSubscriptionFactory(tenant=tenant, user=agent, alert_type="job_failed", channels=["email"])
    AlertSubscriptionFactory(tenant=tenant, user=agent, alert_type="custom")
    others = AlertSubscriptionFactory(tenant=tenant, user=admin, alert_type="custom")
    c = api.as_user(agent)
    body = [{"alert_type": "job_failed", "channels": ["slack"], "notify_on_acknowledge": True}, {"alert_type": "sla_breached"}]
    r = c.put("/api/v1/alerts/subscriptions", body, format="json")
    assert r.status_code == 200, r.content
    assert sorted(s["alert_type"] for s in r.json()) == ["job_failed", "sla_breached"]
    mine = {s.alert_type: s for s in AlertSubscription.objects.filter(user=agent)}
    assert set(mine) == {"job_failed", "sla_breached"}
    assert mine["job_failed"].pk == kept.pk and mine["job_failed"].channels == ["slack"] and mine["job_failed"].notify_on_acknowledge
    assert AlertSubscription.objects.filter(pk=others.pk).exists()  # someone else's set is not touched
    # the {"subscriptions": [...]} envelope answers the same
    again = c.put("/api/v1/alerts/subscriptions", {"subscriptions": [{"alert_type": "sla_breached"}]}, format="json")
    assert again.status_code == 200 and [s["alert_type"] for s in again.json()] == ["sla_breached"]


@pytest.mark.parametrize("body,message", [
    ([{"alert_type": "job_failed"}, {"alert_type": "job_failed"}], "more than once"),
    ([{"alert_type": "job_failed", "channels": ["pigeon"]}], "pigeon"),
    ([{"alert_type": "no_such_type"}], "no_such_type"),
    ([{"channels": ["email"]}], "alert_type"),
    ({"alert_type": "job_failed"}, "list"),
    ([{"alert_type": "job_failed", "user": 1}], "user"),
])
def test_put_subscriptions_refuses_bad_sets_and_changes_nothing(body, message, world, api):
    from apps.alerts.models import AlertSubscription
    from tests.factories.alerts import AlertSubscriptionFactory

    agent = world.user("a", "support_agent")
    AlertSubscriptionFactory(tenant=world.tenant("a"), user=agent, alert_type="custom")
    r = api.as_user(agent).put("/api/v1/alerts/subscriptions", body, format="json")
    assert r.status_code == 400, r.content
    assert message in r.content.decode()
    assert list(AlertSubscription.objects.filter(user=agent).values_list("alert_type", flat=True)) == ["custom"]


def test_customers_have_no_subscription_set(world, api):
    r = api.as_user(world.user("a", "customer")).put("/api/v1/alerts/subscriptions", [], format="json")
    assert r.status_code == 403


def test_put_subscriptions_never_crosses_tenants(world, api):
    from apps.alerts.models import AlertSubscription
    from tests.factories.alerts import AlertSubscriptionFactory

    foreign = AlertSubscriptionFactory(tenant=world.tenant("b"), user=world.user("b", "admin"), alert_type="custom")
    c = api.as_user(world.user("a", "admin"))
    assert c.put("/api/v1/alerts/subscriptions", [{"alert_type": "job_failed"}], format="json").status_code == 200
    assert AlertSubscription.objects.filter(pk=foreign.pk).exists()
    assert not AlertSubscription.objects.filter(tenant=world.tenant("b"), user=world.user("a", "admin")).exists()
    as_b = api.as_user(world.user("a", "admin"), organization="tenant-b")
    assert as_b.put("/api/v1/alerts/subscriptions", [], format="json").status_code == 403


def test_create_alert_through_the_api_broadcast_needs_the_broadcast_permission(world, api, monkeypatch):
    body = {"alert_type": "custom", "severity": "critical", "title": "Datacenter power on battery", "message": "UPS engaged"}
    admin = api.as_user(world.user("a", "admin"))
    r = admin.post("/api/v1/alerts", body, format="json")
    assert r.status_code == 201, r.content
    assert r.json()["assigned_to"] is None and r.json()["source"] == "manual" and r.json()["severity"] == "critical"
    assert Alert.objects.get(pk=r.json()["id"]).tenant == world.tenant("a")
    operator = api.as_user(world.user("a", "operator"))
    refused = operator.post("/api/v1/alerts", {**body, "title": "another"}, format="json")
    assert refused.status_code == 403 and "alerts.broadcast" in refused.json()["detail"]
    agent = world.user("a", "support_agent")
    assigned = operator.post("/api/v1/alerts", {**body, "title": "for the agent", "assigned_to": agent.pk}, format="json")
    assert assigned.status_code == 201 and assigned.json()["assigned_to"] == agent.pk
    assert api.as_user(world.user("a", "viewer")).post("/api/v1/alerts", {**body, "assigned_to": agent.pk}, format="json").status_code == 403
    outsider = world.user("b", "viewer")
    admin = api.as_user(world.user("a", "admin"))  # one client: as_user switches its credentials
    bad = [({**body, "severity": "apocalyptic"}, "severity"), ({**body, "assigned_to": outsider.pk}, "assigned_to"), ({"severity": "info"}, "title")]
    for payload, field in bad:
        resp = admin.post("/api/v1/alerts", payload, format="json")
        assert resp.status_code == 400 and field in resp.content.decode(), resp.content
    # the policy's `broadcast` action is what decides (not a role list beside it)
    from apps.core.choices import Role

    monkeypatch.setitem(Alert.PORTAL_ROLE_ACTIONS, "broadcast", {*Alert.PORTAL_ROLE_ACTIONS["broadcast"], Role.OPERATOR})
    operator = api.as_user(world.user("a", "operator"))
    assert operator.post("/api/v1/alerts", {**body, "title": "now allowed"}, format="json").status_code == 201


def test_high_priority_items_in_queue_raise_and_resolve_an_alert(world):
    from apps.alerts.checks import check_high_priority_queue_all

    tenant = world.tenant("a")
    tenant.settings = {**(tenant.settings or {}), "high_priority_queue_threshold": 3}
    tenant.save()
    waiting = [TicketFactory(tenant=tenant, priority=p, assignee=None) for p in ("high", "urgent", "critical")]
    TicketFactory(tenant=tenant, priority="normal", assignee=None)  # not high priority
    TicketFactory(tenant=world.tenant("b"), priority="high", assignee=None)  # another tenant's queue
    check_high_priority_queue_all()
    alert = Alert.objects.get(tenant=tenant, alert_type="high_priority_queue", status="firing")
    assert alert.title.startswith("3 high-priority tickets") and not Alert.objects.filter(tenant=world.tenant("b"), alert_type="high_priority_queue").exists()
    check_high_priority_queue_all()
    alert.refresh_from_db()
    assert alert.occurrences == 2  # still over: the same alert, counted
    type(waiting[0]).objects.filter(pk=waiting[0].pk).update(assignee=world.user("a", "support_agent"))
    check_high_priority_queue_all()
    alert.refresh_from_db()
    assert alert.status == "resolved"


def test_high_priority_queue_check_runs_on_beat():
    from apps.alerts.schedules import SCHEDULES

    assert any(s.task == "alerts.check_high_priority_queue" for s in SCHEDULES)


def test_integrators_raise_payment_failed_through_the_api(world, api):
    """An integration (a tenant account with a JWT) reports a failed payment: POST /api/v1/alerts;
    the subscribers of payment_failed are in the fired event's notify block."""
    from tests.factories.alerts import AlertSubscriptionFactory

    agent = world.user("a", "support_agent")
    AlertSubscriptionFactory(tenant=world.tenant("a"), user=agent, alert_type="payment_failed")
    client = api.as_user(world.user("a", "admin"))
    body = {"alert_type": "payment_failed", "severity": "critical", "title": "Payment failed for invoice INV-1042",
            "message": "card declined", "labels": {"invoice": "INV-1042", "customer": "initech"}}
    r = client.post("/api/v1/alerts", body, format="json")
    assert r.status_code == 201, r.content
    alert = Alert.objects.get(pk=r.json()["id"])
    assert alert.alert_type == "payment_failed" and alert.labels["invoice"] == "INV-1042"
    fired = Event.objects.get(name="alert.fired", payload__id=alert.pk)
    assert agent.pk in fired.payload["notify"]["user_ids"]
