"""Admin: template preview, delivery retry, channel form keeps secrets sealed."""

from django.urls import reverse

from apps.core.crypto import PLACEHOLDER
from apps.notifications.models import ChannelConfig, Delivery
from tests.factories.notifications import ChannelConfigFactory, DeliveryFactory, NotificationFactory, NotificationTemplateFactory


def test_template_change_page_shows_a_preview(world, client):
    t = NotificationTemplateFactory(tenant=world.tenant("a"), channel="email", body_html="<p>{{ notification.message }}</p>")
    client.force_login(world.user("a", "owner"))
    page = client.get(reverse("admin:notifications_notificationtemplate_change", args=[t.pk])).content.decode()
    assert "Disk almost full on db-1" in page and "srcdoc" in page


def test_delivery_retry_action(world, client, django_capture_on_commit_callbacks):
    d = DeliveryFactory(notification=NotificationFactory(tenant=world.tenant("a"), recipient=world.user("a", "owner")), status="failed")
    client.force_login(world.user("a", "owner"))
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(reverse("admin:notifications_delivery_changelist"), {"action": "retry", "_selected_action": [d.pk]})
    assert r.status_code == 302
    d.refresh_from_db()
    assert d.status == "sent"  # eager worker sent it through the locmem email backend


def test_channel_form_seals_new_url_and_keeps_it_on_placeholder(world, client):
    client.force_login(world.user("a", "owner"))
    add = reverse("admin:notifications_channelconfig_add")
    r = client.post(add, {"name": "hook", "kind": "webhook", "url": "https://example.test/h", "signing_secret": "abc", "enabled": "on", "min_priority": "low", "notification_types": "[]"})
    assert r.status_code == 302, r.content.decode()[:3000]
    ch = ChannelConfig.objects.get()
    assert ch.get_secret() == "https://example.test/h" and ch.get_secret("signing_secret") == "abc" and "example" not in ch.url
    change = reverse("admin:notifications_channelconfig_change", args=[ch.pk])
    page = client.get(change).content.decode()
    assert "example.test" not in page and "abc" not in page.split("signing_secret")[1][:200]
    r = client.post(change, {"name": "hook2", "kind": "webhook", "url": PLACEHOLDER, "signing_secret": PLACEHOLDER, "enabled": "on", "min_priority": "low", "notification_types": "[]"})
    assert r.status_code == 302
    ch.refresh_from_db()
    assert ch.name == "hook2" and ch.get_secret() == "https://example.test/h" and ch.get_secret("signing_secret") == "abc"
    r = client.post(change, {"name": "hook2", "kind": "teams", "url": "msteams://x/y", "enabled": "on", "min_priority": "low", "notification_types": "[]"})
    assert r.status_code == 200 and "workflow://" in r.content.decode()


def test_channel_send_test_action(world, client, http_peer):
    ch = ChannelConfigFactory(tenant=world.tenant("a"), plain_url=http_peer.url)
    client.force_login(world.user("a", "owner"))
    r = client.post(reverse("admin:notifications_channelconfig_changelist"), {"action": "send_test", "_selected_action": [ch.pk]}, follow=True)
    assert "Test message sent." in r.content.decode() and len(http_peer.requests) == 1
    assert Delivery.objects.count() == 0
