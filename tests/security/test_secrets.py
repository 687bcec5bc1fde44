"""Secrets (credential secrets and passphrases, channel URLs and signing secrets) never appear in
API responses, admin pages or logs — even after a failing connection or channel test, whose
errors are the usual way a URL with a token leaks. Each test greps the rendered output."""

from __future__ import annotations

import logging

import pytest
from django.urls import reverse

CRED_SECRET = "Cred-S3cret-9f8e7d"
CRED_PASSPHRASE = "Pass-Phrase-1a2b3c"
CHANNEL_TOKEN = "T0kenInTheUrl-5e6f7a"
SIGNING = "Signing-Key-8b9c0d"


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(self.format(record))


@pytest.fixture
def logged():
    """Every log line of the portal's loggers (the LOGGING config does not propagate to caplog)."""
    handler = _Collect()
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    loggers = [logging.getLogger(name) for name in ("", "apps", "django", "django.request", "celery")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
    yield handler.lines
    for lg, level in zip(loggers, levels, strict=True):
        lg.removeHandler(handler)
        lg.setLevel(level)


@pytest.fixture
def secrets_world(world, api, logged):
    client = api.as_user(world.user("a", "admin"))
    cred = client.post("/api/v1/credentials/", {"name": "c1", "kind": "ssh_key", "username": "root", "secret": CRED_SECRET,
                                                "passphrase": CRED_PASSPHRASE}, format="json")
    assert cred.status_code == 201, cred.content
    target = client.post("/api/v1/targets/", {"name": "t1", "hostname": "127.0.0.1", "port": 9, "protocol": "ssh",
                                              "credential": cred.json()["id"]}, format="json")
    assert target.status_code == 201, target.content
    channel = client.post("/api/v1/notifications/channels/", {
        "name": "hook", "kind": "webhook", "url": f"http://127.0.0.1:9/hook/{CHANNEL_TOKEN}?key={CHANNEL_TOKEN}",
        "signing_secret": SIGNING}, format="json")
    assert channel.status_code == 201, channel.content
    # failing tests write errors into rows and logs: the classic leak
    client.post(f"/api/v1/targets/{target.json()['id']}/test/", {}, format="json")
    client.post(f"/api/v1/notifications/channels/{channel.json()['id']}/test/", {}, format="json")
    return client, {"credential": cred.json()["id"], "target": target.json()["id"], "channel": channel.json()["id"]}


def _assert_clean(text: str, where: str):
    for secret in (CRED_SECRET, CRED_PASSPHRASE, CHANNEL_TOKEN, SIGNING):
        assert secret not in text, f"{secret!r} leaked in {where}"


def test_api_responses_never_contain_secrets(secrets_world):
    client, ids = secrets_world
    for url in ("/api/v1/credentials/", f"/api/v1/credentials/{ids['credential']}/", "/api/v1/targets/",
                f"/api/v1/targets/{ids['target']}/", "/api/v1/notifications/channels/",
                f"/api/v1/notifications/channels/{ids['channel']}/"):
        r = client.get(url)
        assert r.status_code == 200, (url, r.status_code)
        _assert_clean(r.content.decode(), url)


def test_admin_pages_never_contain_secrets(secrets_world, world, client):
    _, ids = secrets_world
    client.force_login(world.user("a", "admin"))
    for name, pk in (("targets_credential", ids["credential"]), ("targets_target", ids["target"]),
                     ("notifications_channelconfig", ids["channel"])):
        for url in (reverse(f"admin:{name}_changelist"), reverse(f"admin:{name}_change", args=[pk])):
            r = client.get(url)
            assert r.status_code == 200, (url, r.status_code)
            _assert_clean(r.content.decode(), url)


def test_logs_never_contain_secrets(secrets_world, logged):
    assert any("channels" in line for line in logged), "the failing channel test logged nothing: the grep would prove nothing"
    _assert_clean("\n".join(logged), "logs")


@pytest.fixture
def echoing_receiver():
    """A loopback receiver that answers 503 with the path it was called on, as many 404/5xx pages
    do: the error a delivery records would carry the URL's token unless it is redacted."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Echo(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = f"Cannot POST {self.path}".encode()
            self.send_response(503)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.parametrize("reached", [False, True], ids=["refused", "echoed"])
def test_failed_delivery_error_has_no_channel_secret(world, echoing_receiver, reached):
    from apps.notifications import services
    from apps.notifications.choices import ChannelKind, DeliveryStatus
    from tests.factories.notifications import ChannelConfigFactory, DeliveryFactory, NotificationFactory

    tenant, user = world.tenant("a"), world.user("a", "admin")
    base = echoing_receiver if reached else "http://127.0.0.1:9"
    channel = ChannelConfigFactory(tenant=tenant, plain_url=f"{base}/hook/{CHANNEL_TOKEN}?key={CHANNEL_TOKEN}", secret=SIGNING)
    delivery = DeliveryFactory(notification=NotificationFactory(tenant=tenant, recipient=user), kind=ChannelKind.WEBHOOK, channel=channel)
    services.deliveries_send(delivery_ids=[delivery.pk])
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING and delivery.last_error
    if reached:  # the receiver echoed the token: it was there to redact
        assert "503" in delivery.last_error and "[redacted]" in delivery.last_error
    _assert_clean(delivery.last_error, "delivery.last_error")
