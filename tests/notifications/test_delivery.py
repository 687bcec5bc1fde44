"""Deliveries against real peers on loopback: webhooks (HMAC), Apprise json://, SMTP."""

import hashlib
import hmac
import json
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from apps.notifications import services
from apps.notifications.choices import ChannelKind, DeliveryStatus, Digest
from apps.notifications.models import Delivery
from tests.factories.notifications import ChannelConfigFactory, NotificationTemplateFactory, PreferenceFactory


def _verify(request, secret):
    ts = request["headers"]["X-Opsportal-Timestamp"]
    expected = "sha256=" + hmac.new(secret.encode(), ts.encode() + b"." + request["body"], hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, request["headers"]["X-Opsportal-Signature"])


def _only_in_app(world, *users):
    for u in users:
        PreferenceFactory(tenant=world.tenant("a"), user=u, channels=["in_app"])


def test_shared_webhook_gets_one_signed_post_per_fan_out(world, http_peer, django_capture_on_commit_callbacks):
    _only_in_app(world, world.user("a", "admin"))
    ChannelConfigFactory(tenant=world.tenant("a"), plain_url=http_peer.url + "/hook", secret="k3y", min_priority="medium")
    ChannelConfigFactory(tenant=world.tenant("a"), name="urgent-only", plain_url=http_peer.url + "/urgent", secret="", min_priority="urgent")
    with django_capture_on_commit_callbacks(execute=True):
        services.notify_team(tenant=world.tenant("a"), role_filter="admin", title="DB failover", message="db-2 is primary", priority="high", action_url="/admin/x/")
    assert len(http_peer.requests) == 1
    req = http_peer.requests[0]
    assert req["path"] == "/hook" and _verify(req, "k3y")
    body = json.loads(req["body"])
    assert (body["title"], body["message"], body["priority"]) == ("DB failover", "db-2 is primary", "high")
    assert body["action_url"].endswith("/admin/x/") and body["action_url"].startswith("http")
    assert Delivery.objects.get(kind="webhook").status == DeliveryStatus.SENT


def test_tampered_body_fails_the_signature_check(world, http_peer, django_capture_on_commit_callbacks):
    ChannelConfigFactory(tenant=world.tenant("a"), plain_url=http_peer.url, secret="k3y")
    with django_capture_on_commit_callbacks(execute=True):
        services.notify_team(tenant=world.tenant("a"), role_filter="owner", title="x")
    req = dict(http_peer.requests[0])
    req["body"] = req["body"].replace(b"x", b"y")
    assert not _verify(req, "k3y")


def test_webhook_retries_after_500_with_backoff_then_succeeds(world, http_peer, django_capture_on_commit_callbacks, settings):
    settings.NOTIFICATIONS_BACKOFF_BASE = 30
    http_peer.statuses = [500, 503]
    ChannelConfigFactory(tenant=world.tenant("a"), plain_url=http_peer.url, secret="k")
    with django_capture_on_commit_callbacks(execute=True):
        services.notify_team(tenant=world.tenant("a"), role_filter="owner", title="retry me")
    d = Delivery.objects.get(kind="webhook")
    assert (d.status, d.attempts) == ("pending", 1) and "HTTP 500" in d.last_error
    first_wait = (d.next_attempt_at - timezone.now()).total_seconds()
    assert 20 <= first_wait <= 37  # 30 s ± 20 %
    assert services.deliveries_sweep() == 0  # not due yet
    assert services.deliveries_send(delivery_ids=[d.pk]) == {"sent": 0, "failed": 0, "retry": 0}
    later = d.next_attempt_at + timedelta(seconds=1)
    services.deliveries_send(delivery_ids=[d.pk], now=later)
    d.refresh_from_db()
    assert (d.status, d.attempts) == ("pending", 2)
    assert 47 <= (d.next_attempt_at - later).total_seconds() <= 73  # 60 s ± 20 %
    services.deliveries_send(delivery_ids=[d.pk], now=d.next_attempt_at)
    d.refresh_from_db()
    assert (d.status, d.attempts, d.last_error) == ("sent", 3, "")
    assert [r["status"] for r in http_peer.requests] == [500, 503, 200]


def test_webhook_4xx_fails_permanently_and_last_attempt_fails(world, http_peer, django_capture_on_commit_callbacks, settings):
    http_peer.statuses = [410]
    ChannelConfigFactory(tenant=world.tenant("a"), plain_url=http_peer.url)
    with django_capture_on_commit_callbacks(execute=True):
        services.notify_team(tenant=world.tenant("a"), role_filter="owner", title="gone")
    d = Delivery.objects.get(kind="webhook")
    assert (d.status, d.attempts) == ("failed", 1) and "410" in d.last_error
    settings.NOTIFICATIONS_MAX_ATTEMPTS = 1
    http_peer.statuses = [500]
    assert services.delivery_retry(actor=world.user("a", "owner"), delivery_ids=[d.pk]) == 1
    d.refresh_from_db()
    assert d.status == "pending"
    services.deliveries_send(delivery_ids=[d.pk])
    d.refresh_from_db()
    assert d.status == "failed"


def test_apprise_json_target_receives_the_notification(world, http_peer, django_capture_on_commit_callbacks):
    user = world.user("a", "admin")
    PreferenceFactory(tenant=world.tenant("a"), user=user, channels=["in_app", "apprise"])
    ChannelConfigFactory(tenant=world.tenant("a"), kind=ChannelKind.APPRISE, user=user, plain_url=f"json://127.0.0.1:{http_peer.port}/apprise", secret="")
    with django_capture_on_commit_callbacks(execute=True):
        services.notify_team(tenant=world.tenant("a"), team_members=[user.pk], title="Alert fired", message="CPU 99%", priority="urgent")
    assert len(http_peer.requests) == 1
    body = json.loads(http_peer.requests[0]["body"])
    assert body["title"] == "[Urgent] Alert fired" and "CPU 99%" in body["message"] and body["type"] == "failure"
    assert Delivery.objects.get(kind="apprise").status == "sent"


def test_apprise_failure_is_retried(world, http_peer, django_capture_on_commit_callbacks):
    http_peer.statuses = [500]
    ChannelConfigFactory(tenant=world.tenant("a"), kind=ChannelKind.APPRISE, plain_url=f"json://127.0.0.1:{http_peer.port}/", secret="")
    with django_capture_on_commit_callbacks(execute=True):
        services.notify_team(tenant=world.tenant("a"), role_filter="owner", title="x")
    d = Delivery.objects.get(kind="apprise")
    assert d.status == "pending" and d.attempts == 1 and d.last_error


def test_nothing_is_sent_during_quiet_hours(world, http_peer, django_capture_on_commit_callbacks, mailoutbox):
    user = world.user("a", "admin")
    now = timezone.now().astimezone(ZoneInfo("America/Sao_Paulo"))
    PreferenceFactory(
        tenant=world.tenant("a"), user=user, channels=["in_app", "email", "webhook"], timezone="America/Sao_Paulo",
        quiet_start=(now - timedelta(minutes=30)).time(), quiet_end=(now + timedelta(minutes=30)).time(),
    )
    ChannelConfigFactory(tenant=world.tenant("a"), user=user, plain_url=http_peer.url)
    with django_capture_on_commit_callbacks(execute=True):
        services.notify_team(tenant=world.tenant("a"), team_members=[user.pk], title="sleep", priority="high")
    assert http_peer.requests == [] and mailoutbox == []
    assert set(Delivery.objects.values_list("status", "reason")) == {("suppressed", "quiet_hours")}


def test_digest_over_a_personal_webhook_lists_the_batched_items(world, http_peer, django_capture_on_commit_callbacks):
    user = world.user("a", "operator")
    PreferenceFactory(tenant=world.tenant("a"), user=user, channels=["in_app", "webhook"], digest=Digest.DAILY, timezone="Europe/Berlin")
    ChannelConfigFactory(tenant=world.tenant("a"), user=user, plain_url=http_peer.url, secret="d")
    for title in ("one", "two", "three"):
        services.notify_team(tenant=world.tenant("a"), team_members=[user.pk], title=title)
    due = Delivery.objects.filter(status="batched").first().next_attempt_at
    assert due.astimezone(ZoneInfo("Europe/Berlin")).hour == 8
    with django_capture_on_commit_callbacks(execute=True):
        assert services.digests_send(now=due) == 1
    # The eager task ran at the real clock, before the digest's time; send it at its time.
    digest = Delivery.objects.get(notification__isnull=True)
    assert digest.status == "pending" and http_peer.requests == []
    services.deliveries_send(delivery_ids=[digest.pk], now=due)
    assert len(http_peer.requests) == 1 and _verify(http_peer.requests[0], "d")
    body = json.loads(http_peer.requests[0]["body"])
    assert body["type"] == "digest" and [i["title"] for i in body["items"]] == ["one", "two", "three"]


def test_email_through_a_real_smtp_server_has_text_and_html(world, smtp_peer, django_capture_on_commit_callbacks):
    user = world.user("a", "admin")
    NotificationTemplateFactory(
        tenant=world.tenant("a"), notification_type="job_run_failed", channel="email",
        subject="Job failed: {{ notification.title }}", body_text="{{ notification.message }}", body_html="<b>{{ notification.message }}</b>",
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.notify_team(tenant=world.tenant("a"), team_members=[user.pk], title="backup", message="exit <1>", notification_type="job_run_failed")
    assert len(smtp_peer.messages) == 1
    envelope = smtp_peer.messages[0]
    assert envelope.rcpt_tos == [user.email]
    raw = envelope.content.decode()
    assert "Subject: Job failed: backup" in raw and "text/plain" in raw and "text/html" in raw
    assert "<b>exit &lt;1&gt;</b>" in raw  # HTML is autoescaped
    assert Delivery.objects.get(kind="email").status == "sent"


@pytest.mark.parametrize("answer, status", [("452 4.3.1 Insufficient system storage", "pending"), ("550 5.1.1 No such user", "failed")])
def test_email_refused_at_rcpt_retries_on_4xx_and_fails_on_5xx(world, smtp_peer, django_capture_on_commit_callbacks, answer, status):
    """A relay whose spool is full answers 452 to RCPT TO: that is "try later", not a lost email."""
    user = world.user("a", "admin")
    smtp_peer.rcpt_answers = [answer]
    with django_capture_on_commit_callbacks(execute=True):
        services.notify_team(tenant=world.tenant("a"), team_members=[user.pk], title="spool", message="m", notification_type="job_run_failed")
    d = Delivery.objects.get(kind="email")
    assert (d.status, d.attempts) == (status, 1) and answer[:3] in d.last_error
    assert smtp_peer.messages == []
    if status == "pending":
        services.deliveries_send(delivery_ids=[d.pk], now=d.next_attempt_at + timedelta(seconds=1))
        d.refresh_from_db()
        assert (d.status, d.attempts) == ("sent", 2) and len(smtp_peer.messages) == 1


def test_email_default_templates_in_locmem(world, mailoutbox, django_capture_on_commit_callbacks):
    user = world.user("a", "admin")
    with django_capture_on_commit_callbacks(execute=True):
        services.notify_team(tenant=world.tenant("a"), team_members=[user.pk], title="Hello", message="Line", action_url="/admin/", action_label="Open")
    mail = mailoutbox[0]
    assert mail.subject == "[Medium] Hello" and "Open: http" in mail.body
    html, mime = mail.alternatives[0]
    assert mime == "text/html" and "<h2" in html and 'href="http' in html


def test_user_without_email_fails_permanently(world, mailoutbox, django_capture_on_commit_callbacks):
    user = world.user("a", "admin")
    user.email = ""
    user.save()
    with django_capture_on_commit_callbacks(execute=True):
        services.notify_team(tenant=world.tenant("a"), team_members=[user.pk], title="x")
    d = Delivery.objects.get(kind="email")
    assert d.status == "failed" and "no email address" in d.last_error


def test_channel_test_sends_and_records(world, http_peer):
    good = ChannelConfigFactory(tenant=world.tenant("a"), plain_url=http_peer.url, secret="t")
    bad = ChannelConfigFactory(tenant=world.tenant("a"), name="bad", plain_url="http://127.0.0.1:9/")
    assert services.channel_test(actor=world.user("a", "owner"), channel=good) == (True, "Test message sent.")
    ok, detail = services.channel_test(actor=world.user("a", "owner"), channel=bad)
    assert not ok and "not reached" in detail
    bad.refresh_from_db()
    assert bad.last_test_ok is False and bad.last_error
    assert _verify(http_peer.requests[0], "t") and json.loads(http_peer.requests[0]["body"])["type"] == "test"
