"""The API: team notifications (seed 000), my notifications, preferences, channels."""

import pytest
from django.urls import reverse

from apps.core.crypto import PLACEHOLDER, decrypt
from apps.notifications.models import ChannelConfig, Notification, Preference
from tests.factories.notifications import ChannelConfigFactory, NotificationFactory

TEAM = "/api/v1/notifications/team"
# the team-notify tests (marked `sqlite`) also run on SQLite, the embedded default


@pytest.mark.sqlite
def test_team_by_role_answers_as_the_seed(world, api):
    client = api.as_user(world.user("a", "owner"))
    r = client.post(TEAM, {"role_filter": "support_agent", "title": "New Ticket Assigned", "message": "High priority", "priority": "urgent", "action_url": "/tickets/TCK-1", "action_label": "View Ticket"}, format="json")
    assert r.status_code == 201, r.content
    assert r.json() == {"notifications_created": 1, "target_count": 1, "role_filter": "support_agent", "team_members": None, "notification_type": "system_alert", "priority": "urgent"}
    n = Notification.objects.get()
    assert n.recipient == world.user("a", "support_agent") and n.metadata["team_notification"] is True


@pytest.mark.sqlite
def test_team_by_members(world, api):
    client = api.as_user(world.user("a", "admin"))
    ids = [world.user("a", "viewer").pk, world.user("a", "operator").pk]
    r = client.post(TEAM, {"team_members": ids, "title": "Emergency", "priority": "high"}, format="json")
    assert r.status_code == 201 and r.json()["notifications_created"] == 2 and r.json()["team_members"] == 2


@pytest.mark.sqlite
@pytest.mark.parametrize(
    "body, text",
    [
        ({"title": "x"}, "exactly one of team_members"),
        ({"title": "x", "role_filter": "admin", "team_members": [1]}, "exactly one of team_members"),
        ({"title": "x", "role_filter": "janitor"}, "Unknown role 'janitor'"),
        ({"title": "", "role_filter": "admin"}, "needs a title"),
        ({"title": "x", "role_filter": "admin", "priority": "mega"}, "priority"),
    ],
)
def test_team_bad_input_is_400_with_a_message(world, api, body, text):
    r = api.as_user(world.user("a", "owner")).post(TEAM, body, format="json")
    assert r.status_code == 400 and text in r.json()["detail"], r.content
    assert not Notification.objects.exists()


@pytest.mark.sqlite
def test_team_foreign_member_is_400(world, api):
    foreign = world.user("b", "viewer")
    r = api.as_user(world.user("a", "owner")).post(TEAM, {"title": "x", "team_members": [foreign.pk]}, format="json")
    assert r.status_code == 400 and str(foreign.pk) in r.json()["detail"]


@pytest.mark.sqlite
def test_team_forbidden_for_viewers_and_customers_and_other_tenants(world, api):
    assert api.as_user(world.user("a", "viewer")).post(TEAM, {"title": "x", "role_filter": "admin"}, format="json").status_code == 403
    assert api.as_user(world.user("a", "customer")).post(TEAM, {"title": "x", "role_filter": "admin"}, format="json").status_code == 403
    r = api.as_user(world.user("a", "owner")).post(TEAM, {"title": "x", "role_filter": "admin", "tenant_id": world.tenant("b").pk}, format="json")
    assert r.status_code == 400 and not Notification.objects.exists()


@pytest.mark.sqlite
def test_platform_admin_names_the_tenant(world, api):
    client = api.as_user(world.user("platform", "admin"))
    assert client.post(TEAM, {"title": "x", "role_filter": "admin"}, format="json").status_code == 400
    r = client.post(TEAM, {"title": "x", "role_filter": "admin", "tenant_id": world.tenant("b").pk}, format="json")
    assert r.status_code == 201 and Notification.objects.get().recipient == world.user("b", "admin")


def test_my_notifications_filters_read_and_archive(world, api):
    me, other = world.user("a", "operator"), world.user("a", "admin")
    a = NotificationFactory(tenant=world.tenant("a"), recipient=me, priority="high", notification_type="ticket_assigned")
    b = NotificationFactory(tenant=world.tenant("a"), recipient=me, priority="low")
    NotificationFactory(tenant=world.tenant("a"), recipient=other)
    client = api.as_user(me)
    url = reverse("notification-list")
    assert {r["id"] for r in client.get(url).json()["results"]} == {a.pk, b.pk}
    assert [r["id"] for r in client.get(url, {"priority": "high"}).json()["results"]] == [a.pk]
    assert [r["id"] for r in client.get(url, {"type": "ticket_assigned"}).json()["results"]] == [a.pk]
    assert client.get(reverse("notification-unread-count")).json() == {"count": 2}
    r = client.post(reverse("notification-read", args=[a.pk]))
    assert r.status_code == 200 and r.json()["is_read"] is True
    assert [r["id"] for r in client.get(url, {"unread": "true"}).json()["results"]] == [b.pk]
    assert client.post(reverse("notification-read-all")).json() == {"count": 1}
    assert client.get(reverse("notification-unread-count")).json() == {"count": 0}
    assert client.post(reverse("notification-archive", args=[b.pk])).status_code == 200
    assert [r["id"] for r in client.get(url).json()["results"]] == [a.pk]
    assert [r["id"] for r in client.get(url, {"archived": "true"}).json()["results"]] == [b.pk]


def test_nobody_marks_someone_elses_notification_read(world, api):
    theirs = NotificationFactory(tenant=world.tenant("a"), recipient=world.user("a", "viewer"))
    client = api.as_user(world.user("a", "owner"))  # a manager sees it in the admin, but it is not theirs
    assert client.post(reverse("notification-read", args=[theirs.pk])).status_code == 404
    assert client.post(reverse("notification-read-all")).json() == {"count": 0}
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_preferences_get_and_put_my_own(world, api):
    me = world.user("a", "viewer")
    client = api.as_user(me)
    url = reverse("notification-preference-list")
    r = client.post(url, {"notification_type": "*", "channels": ["in_app", "email"], "timezone": "Europe/Berlin", "quiet_start": "22:00", "quiet_end": "07:00", "digest": "daily"}, format="json")
    assert r.status_code == 201, r.content
    pref = Preference.objects.get()
    assert (pref.user, pref.tenant, pref.digest) == (me, world.tenant("a"), "daily")
    r = client.put(reverse("notification-preference-detail", args=[pref.pk]), {"notification_type": "*", "channels": ["in_app"], "min_priority": {"email": "urgent"}}, format="json")
    assert r.status_code == 200, r.content
    assert client.get(url).json()["results"][0]["channels"] == ["in_app"]
    for bad, field in [({"channels": ["pigeon"]}, "channels"), ({"timezone": "Moon/Base"}, "timezone"), ({"quiet_start": "22:00", "quiet_end": None}, "quiet_end"), ({"min_priority": {"email": "whenever"}}, "min_priority")]:
        r = client.put(reverse("notification-preference-detail", args=[pref.pk]), {"notification_type": "*", **bad}, format="json")
        assert r.status_code == 400 and field in r.json()["errors"], (bad, r.content)
    other = world.user("a", "operator")
    r = client.post(url, {"user": other.pk, "notification_type": "alert_fired", "channels": []}, format="json")
    assert r.status_code == 403


def test_channels_are_write_only_and_validated(world, api):
    client = api.as_user(world.user("a", "admin"))
    url = reverse("notification-channel-list")
    r = client.post(url, {"name": "ops", "kind": "slack", "url": "slack://T1/B2/abcdef"}, format="json")
    assert r.status_code == 201, r.content
    assert r.json()["url"] == PLACEHOLDER and "abcdef" not in r.content.decode()
    ch = ChannelConfig.objects.get()
    assert ch.url.startswith("v") and "abcdef" not in ch.url and decrypt(ch.url) == "slack://T1/B2/abcdef"
    r = client.patch(reverse("notification-channel-detail", args=[ch.pk]), {"url": PLACEHOLDER, "name": "ops2"}, format="json")
    assert r.status_code == 200 and ChannelConfig.objects.get().get_secret() == "slack://T1/B2/abcdef"
    r = client.post(url, {"name": "teams", "kind": "teams", "url": "msteams://a/b/c"}, format="json")
    assert r.status_code == 400 and "workflow://" in r.json()["detail"]
    assert client.post(url, {"name": "teams", "kind": "teams", "url": "workflow://host:443/wf/sig"}, format="json").status_code == 201
    r = client.post(url, {"name": "junk", "kind": "apprise", "url": "nonsense://"}, format="json")
    assert r.status_code == 400 and "Apprise does not understand" in r.json()["detail"]
    assert api.as_user(world.user("a", "operator")).post(url, {"name": "x", "kind": "webhook", "url": "http://x"}, format="json").status_code == 403


def test_channel_send_test_endpoint(world, api, http_peer):
    ch = ChannelConfigFactory(tenant=world.tenant("a"), plain_url=http_peer.url, secret="")
    client = api.as_user(world.user("a", "owner"))
    r = client.post(reverse("notification-channel-test", args=[ch.pk]))
    assert r.status_code == 200 and r.json()["ok"] is True and len(http_peer.requests) == 1
    assert api.as_user(world.user("a", "operator")).post(reverse("notification-channel-test", args=[ch.pk])).status_code == 403
