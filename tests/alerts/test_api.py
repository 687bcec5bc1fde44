import pytest

from apps.alerts import services
from apps.alerts.choices import AlertStatus, AlertType, Severity
from apps.alerts.models import Alert, AlertRule

pytestmark = pytest.mark.django_db


def _ids(r):
    return {row["id"] for row in r.json()["results"]}


@pytest.fixture
def alerts(world):
    t = world.tenant("a")
    broadcast, _ = services.alert_raise(tenant=t, alert_type=AlertType.JOB_FAILED, title="b", severity=Severity.CRITICAL, resource_type="targets.jobrun", resource_id=1)
    mine, _ = services.alert_raise(tenant=t, alert_type=AlertType.CUSTOM, title="m", labels={"x": "1"}, assigned_to=world.user("a", "support_agent"))
    other, _ = services.alert_raise(tenant=t, alert_type=AlertType.CUSTOM, title="o", labels={"x": "2"}, assigned_to=world.user("a", "operator"))
    return broadcast, mine, other


def test_staff_see_own_and_broadcast_admins_see_all(api, world, alerts):
    broadcast, mine, other = alerts
    assert _ids(api.as_user(world.user("a", "support_agent")).get("/api/v1/alerts")) == {broadcast.pk, mine.pk}
    assert _ids(api.as_user(world.user("a", "admin")).get("/api/v1/alerts")) == {broadcast.pk, mine.pk, other.pk}
    assert api.as_user(world.user("a", "customer")).get("/api/v1/alerts").status_code == 403


def test_filters(api, world, alerts):
    broadcast, mine, other = alerts
    c = api.as_user(world.user("a", "admin"))
    assert _ids(c.get("/api/v1/alerts", {"severity": "critical"})) == {broadcast.pk}
    assert _ids(c.get("/api/v1/alerts", {"type": "custom"})) == {mine.pk, other.pk}
    assert _ids(c.get("/api/v1/alerts", {"resource": "targets.jobrun:1"})) == {broadcast.pk}
    assert _ids(c.get("/api/v1/alerts", {"status": "firing", "label": "x=2"})) == {other.pk}


def test_read_dismiss_unread_count_are_per_person(api, world, alerts):
    broadcast, mine, _ = alerts
    agent = api.as_user(world.user("a", "support_agent"))
    assert agent.get("/api/v1/alerts/unread/count").json() == {"count": 2}
    r = agent.put(f"/api/v1/alerts/{broadcast.pk}/read")
    assert r.status_code == 200 and r.json()["read_at"]
    assert agent.get("/api/v1/alerts/unread/count").json() == {"count": 1}
    assert _ids(agent.get("/api/v1/alerts", {"unread": "true"})) == {mine.pk}
    assert agent.put(f"/api/v1/alerts/{mine.pk}/dismiss").status_code == 200
    assert _ids(agent.get("/api/v1/alerts")) == {broadcast.pk}
    assert _ids(agent.get("/api/v1/alerts", {"dismissed": "true"})) == {mine.pk}
    viewer = api.as_user(world.user("a", "viewer"))
    assert viewer.get("/api/v1/alerts/unread/count").json() == {"count": 1}  # the broadcast, still unread for them


def test_acknowledge_and_resolve_by_role(api, world, alerts):
    broadcast, _, _ = alerts
    assert api.as_user(world.user("a", "viewer")).post(f"/api/v1/alerts/{broadcast.pk}/acknowledge").status_code == 403
    r = api.as_user(world.user("a", "support_agent")).post(f"/api/v1/alerts/{broadcast.pk}/acknowledge")
    assert r.status_code == 200 and r.json()["status"] == AlertStatus.ACKNOWLEDGED
    r = api.as_user(world.user("a", "operator")).post(f"/api/v1/alerts/{broadcast.pk}/resolve", {"reason": "fixed"}, format="json")
    assert r.status_code == 200 and r.json()["status"] == AlertStatus.RESOLVED
    r = api.as_user(world.user("a", "operator")).post(f"/api/v1/alerts/{broadcast.pk}/acknowledge")
    assert r.status_code == 400 and "resolved" in r.json()["detail"]


def test_history_is_queryable(api, world, alerts):
    broadcast, _, _ = alerts
    services.alert_resolve(broadcast, actor=None)
    r = api.as_user(world.user("a", "admin")).get("/api/v1/alerts", {"status": "resolved", "fingerprint": broadcast.fingerprint})
    assert _ids(r) == {broadcast.pk}


def test_fingerprint_filter_lists_open_and_resolved_periods(api, world):
    # an ingested label set that fired, resolved and fires again has two rows, in two partial
    # indexes (open: the unique one; resolved: alerts_resolved_fp_idx); the filter finds both
    from datetime import timedelta

    from django.utils import timezone

    from apps.alerts.ingest import alerts_ingest

    t = world.tenant("a")
    start = timezone.now() - timedelta(minutes=10)
    alert = {"labels": {"alertname": "Disk", "instance": "db1"}}
    alerts_ingest(tenant_id=t.pk, alerts=[{**alert, "startsAt": start.isoformat()}])
    alerts_ingest(tenant_id=t.pk, alerts=[{**alert, "startsAt": start.isoformat(), "endsAt": (start + timedelta(minutes=1)).isoformat()}])
    alerts_ingest(tenant_id=t.pk, alerts=[{**alert, "startsAt": (start + timedelta(minutes=5)).isoformat()}])
    rows = {a.pk: a.status for a in Alert.objects.filter(tenant=t, labels__alertname="Disk")}
    assert sorted(rows.values()) == [AlertStatus.FIRING, AlertStatus.RESOLVED]
    fingerprint = Alert.objects.get(pk=next(iter(rows))).fingerprint
    c = api.as_user(world.user("a", "admin"))
    assert _ids(c.get("/api/v1/alerts", {"fingerprint": fingerprint})) == set(rows)
    assert _ids(c.get("/api/v1/alerts", {"fingerprint": fingerprint, "status": "firing"})) == {
        pk for pk, status in rows.items() if status == AlertStatus.FIRING}
    assert _ids(c.get("/api/v1/alerts", {"fingerprint": "0" * 32})) == set()


def test_rules_crud_needs_manage_and_bad_conditions_are_400(api, world):
    body = {"name": "fails", "rule_type": "event", "conditions": {"event": "job_run.failed"}, "actions": [{"type": "notify", "roles": ["admin"]}]}
    assert api.as_user(world.user("a", "operator")).post("/api/v1/alerts/rules", body, format="json").status_code == 403
    admin = api.as_user(world.user("a", "admin"))
    r = admin.post("/api/v1/alerts/rules", body, format="json")
    assert r.status_code == 201, r.content
    rule = AlertRule.objects.get()
    assert rule.tenant == world.tenant("a") and rule.created_by == world.user("a", "admin")
    bad = admin.post("/api/v1/alerts/rules", {**body, "name": "bad", "conditions": {"event": 5}}, format="json")
    assert bad.status_code == 400 and "conditions" in bad.json()["detail"]
    bad = admin.post("/api/v1/alerts/rules", {**body, "name": "bad", "rule_type": "schedule", "conditions": {"cron": "61 * * * *"}}, format="json")
    assert bad.status_code == 400 and "cron" in bad.json()["detail"]
    assert admin.patch(f"/api/v1/alerts/rules/{rule.pk}", {"enabled": False}, format="json").status_code == 200
    assert admin.delete(f"/api/v1/alerts/rules/{rule.pk}").status_code == 204


def test_subscriptions_are_personal(api, world):
    agent = world.user("a", "support_agent")
    c = api.as_user(agent)
    r = c.post("/api/v1/alerts/subscriptions", {"alert_type": "job_failed", "channels": ["email"]}, format="json")
    assert r.status_code == 201 and r.json()["user"] == agent.pk
    assert c.post("/api/v1/alerts/subscriptions", {"alert_type": "job_failed"}, format="json").status_code == 400
    other = c.post("/api/v1/alerts/subscriptions", {"alert_type": "custom", "user": world.user("a", "viewer").pk}, format="json")
    assert other.status_code == 403
    assert c.post("/api/v1/alerts/subscriptions", {"alert_type": "custom", "channels": ["pigeon"]}, format="json").status_code == 400
    sub_id = r.json()["id"]
    assert c.put(f"/api/v1/alerts/subscriptions/{sub_id}", {"alert_type": "job_failed", "channels": ["slack"]}, format="json").status_code == 200
    assert api.as_user(world.user("a", "viewer")).get("/api/v1/alerts/subscriptions").json()["count"] == 0


def test_silences_crud_and_expire(api, world):
    c = api.as_user(world.user("a", "operator"))
    r = c.post("/api/v1/alerts/silences", {"matchers": [{"name": "alertname", "op": "=~", "value": "job_.*"}], "ends_at": "2099-01-01T00:00:00Z", "comment": "maint"}, format="json")
    assert r.status_code == 201 and r.json()["active"] is True
    bad = c.post("/api/v1/alerts/silences", {"matchers": [{"name": "a", "op": "=~", "value": "("}], "ends_at": "2099-01-01T00:00:00Z"}, format="json")
    assert bad.status_code == 400 and "regular expression" in bad.json()["detail"]
    assert api.as_user(world.user("a", "viewer")).post("/api/v1/alerts/silences", {"matchers": [], "ends_at": "2099-01-01T00:00:00Z"}, format="json").status_code == 403
    c = api.as_user(world.user("a", "operator"))  # one client: as_user switches its credentials
    assert c.post(f"/api/v1/alerts/silences/{r.json()['id']}/expire").json()["active"] is False


def test_escalation_policy_steps_validated(api, world):
    c = api.as_user(world.user("a", "admin"))
    assert c.post("/api/v1/alerts/escalation-policies", {"name": "p", "steps": [{"wait_minutes": 5}]}, format="json").status_code == 400
    r = c.post("/api/v1/alerts/escalation-policies", {"name": "p", "steps": [{"wait_minutes": 5, "roles": ["admin"]}], "repeat": 2}, format="json")
    assert r.status_code == 201, r.content


def test_ingest_token_shown_once(api, world):
    c = api.as_user(world.user("a", "admin"))
    r = c.post("/api/v1/alerts/ingest-tokens", {"name": "prom"}, format="json")
    assert r.status_code == 201 and r.json()["token"].startswith("opa_")
    assert c.get(f"/api/v1/alerts/ingest-tokens/{r.json()['id']}").json()["token"] is None
    assert api.as_user(world.user("a", "operator")).get("/api/v1/alerts/ingest-tokens").status_code == 403


def test_admin_actions_acknowledge_and_silence(client, world, alerts):
    broadcast, _, _ = alerts
    client.force_login(world.user("a", "admin"))
    url = "/admin/alerts/alert/"
    assert client.post(url, {"action": "acknowledge", "_selected_action": [broadcast.pk]}).status_code == 302
    broadcast.refresh_from_db()
    assert broadcast.status == AlertStatus.ACKNOWLEDGED
    client.post(url, {"action": "silence_like_this", "_selected_action": [broadcast.pk]})
    assert Alert.objects.get(pk=broadcast.pk).silenced
    from apps.alerts.models import Silence

    assert Silence.objects.get().matchers
