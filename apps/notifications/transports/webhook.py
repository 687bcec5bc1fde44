"""Generic webhooks: the JSON payload POSTed with two signatures of the same body.

- Standard Webhooks (https://www.standardwebhooks.com/, the `standardwebhooks` package): headers
  `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256>`, so receivers
  verify with an off-the-shelf library. The key: a `whsec_…` secret as is, any other secret's
  UTF-8 bytes (`standard_secret` gives the `whsec_` form to hand to a receiver).
- The portal's own, for existing receivers: `X-Opsportal-Timestamp: <unix seconds>` and
  `X-Opsportal-Signature: sha256=<hex hmac(secret, "<timestamp>." + body)>`.
Receivers refuse timestamps older than a few minutes (replays).

Connections: one urllib3 pool per endpoint (scheme, host, port), shared by the process's send
threads and kept alive across batches, at most NOTIFICATIONS_SEND_CONCURRENCY connections each
(a thread waits for a free one); urllib3 costs about half the CPU of requests per POST."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import threading
import uuid
from datetime import UTC, datetime
from functools import lru_cache

import urllib3
from django.conf import settings
from standardwebhooks import Webhook

from .base import Message, Transport, TransportError

TIMEOUT = (3, 10)
_pools: tuple[tuple[int, int], urllib3.PoolManager] | None = None
_pools_lock = threading.Lock()


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def standard_secret(secret: str) -> str:
    """The channel's secret in the `whsec_<base64 key>` form a Standard Webhooks receiver takes."""
    if secret.startswith("whsec_"):
        return secret
    return "whsec_" + base64.b64encode(secret.encode()).decode()


def message_id(payload: dict) -> str:
    """One id per delivery, the same on every retry (receivers drop duplicates by it); a message
    that is not a delivery (a channel test) gets a fresh one."""
    delivery = payload.get("delivery_id")
    return f"msg_delivery_{delivery}" if delivery is not None else f"msg_{uuid.uuid4().hex}"


def pools() -> urllib3.PoolManager:
    """The process's keep-alive pools (made afresh after a fork, whose sockets are not ours, or
    when the concurrency setting changed)."""
    global _pools
    key = (os.getpid(), settings.NOTIFICATIONS_SEND_CONCURRENCY)
    current = _pools
    if current is None or current[0] != key:
        with _pools_lock:
            if _pools is None or _pools[0] != key:
                _pools = (key, urllib3.PoolManager(num_pools=256, maxsize=key[1], block=True, retries=False))
            current = _pools
    return current[1]


class WebhookTransport(Transport):
    renders = False  # posts the structured payload only: no subject/text to render

    def send(self, message: Message) -> str:
        if not message.url.startswith(("http://", "https://")):
            raise TransportError("A webhook URL must start with http:// or https://.", permanent=True)
        body = json.dumps(message.payload, separators=(",", ":"), default=str).encode()
        now = datetime.now(UTC).replace(microsecond=0)
        timestamp, msg_id = str(int(now.timestamp())), message_id(message.payload)
        headers = {
            "Content-Type": "application/json", "User-Agent": "opsportal-webhook/1", "X-Opsportal-Timestamp": timestamp,
            "webhook-id": msg_id, "webhook-timestamp": timestamp,
        }
        if message.signing_secret:
            headers["X-Opsportal-Signature"] = sign(message.signing_secret, timestamp, body)
            headers["webhook-signature"] = _standard_signature(message.signing_secret, msg_id, now, body)
        try:
            connect, read = TIMEOUT if message.timeout is None else (min(t, max(message.timeout, 0.1)) for t in TIMEOUT)
            response = pools().request("POST", message.url, body=body, headers=headers, redirect=False,
                                       timeout=urllib3.Timeout(connect=connect, read=read), pool_timeout=read)
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            raise TransportError(f"Webhook not reached: {exc.__class__.__name__}: {exc}") from exc
        if response.status >= 300:
            # 4xx means the receiver will never take it (except timeouts and throttling).
            permanent = 400 <= response.status < 500 and response.status not in (408, 425, 429)
            text = response.data[:200].decode(errors="replace")
            raise TransportError(f"Webhook answered HTTP {response.status}: {text}", permanent=permanent)
        return f"HTTP {response.status}"


@lru_cache(maxsize=1024)
def _signer(secret: str) -> Webhook:
    return Webhook(secret if secret.startswith("whsec_") else secret.encode())


def _standard_signature(secret: str, msg_id: str, when: datetime, body: bytes) -> str:
    try:
        return _signer(secret).sign(msg_id=msg_id, timestamp=when, data=body.decode())
    except Exception as exc:  # a whsec_ secret that is not base64: the channel must be fixed
        raise TransportError(f"The signing secret starts with whsec_ but is not a Standard Webhooks key: {exc.__class__.__name__}.",
                             permanent=True) from exc
