"""Outgoing webhooks signed the Standard Webhooks way (issue 19.4), checked by a real receiver on
loopback that verifies with the `standardwebhooks` library's own verifier."""

import base64
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks import Webhook

from apps.notifications import services
from apps.notifications.choices import DeliveryStatus
from apps.notifications.models import Delivery
from apps.notifications.transports.base import Message, TransportError
from apps.notifications.transports.webhook import WebhookTransport, standard_secret
from tests.factories.notifications import ChannelConfigFactory
from tests.notifications.test_delivery import _verify

WHSEC = "whsec_" + base64.b64encode(b"a 24-byte receiver key!!").decode()


class Receiver:
    """Verifies every POST with `Webhook(secret).verify`; 204 if it passes, 401 with the reason."""

    def __init__(self, secret):
        self.secret, self.seen = secret, []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = dict(self.headers)
                try:
                    payload = Webhook(receiver.secret).verify(body, headers)
                    status, reason = 204, ""
                except Exception as exc:  # the library's verdict, whatever it is
                    payload, status, reason = None, 401, f"{type(exc).__name__}: {exc}"
                receiver.seen.append({"headers": headers, "body": body, "payload": payload, "status": status})
                self.send_response(status)
                self.send_header("Content-Length", str(len(reason)))
                self.end_headers()
                self.wfile.write(reason.encode())

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(request):
    peer = Receiver(request.param)
    yield peer
    peer.close()


@pytest.mark.parametrize("receiver", [WHSEC], indirect=True)
def test_a_delivery_passes_the_librarys_verifier_and_keeps_the_old_header(world, receiver, django_capture_on_commit_callbacks):
    ChannelConfigFactory(tenant=world.tenant("a"), plain_url=receiver.url, secret=WHSEC, min_priority="low")
    with django_capture_on_commit_callbacks(execute=True):
        services.notify_team(tenant=world.tenant("a"), role_filter="owner", title="disk full", message="db-1 at 97 %")
    assert [s["status"] for s in receiver.seen] == [204], receiver.seen
    seen = receiver.seen[0]
    assert seen["payload"]["title"] == "disk full"
    delivery = Delivery.objects.get(kind="webhook")
    assert delivery.status == DeliveryStatus.SENT
    assert seen["headers"]["webhook-id"] == f"msg_delivery_{delivery.pk}"  # stable across retries
    assert _verify({"headers": seen["headers"], "body": seen["body"]}, WHSEC)  # existing receivers keep working


@pytest.mark.parametrize("receiver", ["whsec_" + base64.b64encode(b"k3y").decode()], indirect=True)
def test_a_plain_secret_is_the_standard_key_as_bytes(receiver):
    assert standard_secret("k3y") == receiver.secret
    message = Message(subject="s", text="t", url=receiver.url, signing_secret="k3y", payload={"type": "test", "delivery_id": 7})
    WebhookTransport().send(message)
    WebhookTransport().send(message)  # a retry: same id, the receiver can drop the duplicate
    assert [s["status"] for s in receiver.seen] == [204, 204]
    assert receiver.seen[0]["headers"]["webhook-id"] == receiver.seen[1]["headers"]["webhook-id"] == "msg_delivery_7"


@pytest.mark.parametrize("receiver", [WHSEC], indirect=True)
def test_a_wrong_secret_or_a_tampered_body_fails_verification(receiver):
    wrong = Message(subject="s", text="t", url=receiver.url, signing_secret="whsec_" + base64.b64encode(b"other").decode(),
                    payload={"type": "test"})
    with pytest.raises(TransportError, match="401") as refused:
        WebhookTransport().send(wrong)
    assert refused.value.permanent and "No matching signature" in str(refused.value)
    broken = Message(subject="s", text="t", url=receiver.url, signing_secret="whsec_!!!", payload={"type": "test"})
    with pytest.raises(TransportError, match="not a Standard Webhooks key") as refused:
        WebhookTransport().send(broken)
    assert refused.value.permanent
    unsigned = Message(subject="s", text="t", url=receiver.url, payload={"type": "test"})
    with pytest.raises(TransportError, match="Missing required headers"):
        WebhookTransport().send(unsigned)
    # the library refuses a body changed after signing
    good = Message(subject="s", text="t", url=receiver.url, signing_secret=WHSEC, payload={"type": "test", "n": 1})
    WebhookTransport().send(good)
    last = receiver.seen[-1]
    assert last["status"] == 204
    with pytest.raises(Exception, match="No matching signature"):
        Webhook(WHSEC).verify(last["body"].replace(b'"n":1', b'"n":2'), last["headers"])
    # test messages (no delivery) get a fresh id each
    WebhookTransport().send(good.__class__(**{**good.__dict__, "payload": {"type": "test"}}))
    WebhookTransport().send(good.__class__(**{**good.__dict__, "payload": {"type": "test"}}))
    assert receiver.seen[-1]["headers"]["webhook-id"] != receiver.seen[-2]["headers"]["webhook-id"]
