"""Generic webhooks: the JSON payload POSTed with two signatures of the same body.

- Standard Webhooks (https://www.standardwebhooks.com/, the `standardwebhooks` package): headers
  `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256>`, so receivers
  verify with an off-the-shelf library. The key: a `whsec_…` secret as is, any other secret's
  UTF-8 bytes (`standard_secret` gives the `whsec_` form to hand to a receiver).
- The portal's own, for existing receivers: `X-Opsportal-Timestamp: <unix seconds>` and
  `X-Opsportal-Signature: sha256=<hex hmac(secret, "<timestamp>." + body)>`.
Receivers refuse timestamps older than a few minutes (replays).

Sends run on the process's send loop (transports/loop.py): aiohttp, one keep-alive pool per
endpoint shared by every batch, at most NOTIFICATIONS_SEND_CONCURRENCY connections each. Each
secret's HMAC keys are set up once and copied per message (`_keys`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
import uuid
from functools import lru_cache

import aiohttp

from .base import Message, Transport, TransportError
from .loop import send_loop, session

TIMEOUT = (3, 10)
BODY_LIMIT = 65536  # bytes of a response read (an error's first 200 are kept); more closes the connection


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = _keys(secret)[0].copy()
    mac.update(timestamp.encode() + b"." + body)
    return f"sha256={mac.hexdigest()}"


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


class WebhookTransport(Transport):
    renders = False  # posts the structured payload only: no subject/text to render

    def send(self, message: Message) -> str:
        return send_loop().run(self.send_async(message))

    async def send_async(self, message: Message) -> str:
        if not message.url.startswith(("http://", "https://")):
            raise TransportError("A webhook URL must start with http:// or https://.", permanent=True)
        body = json.dumps(message.payload, separators=(",", ":"), default=str).encode()
        timestamp, msg_id = str(int(time.time())), message_id(message.payload)
        headers = {
            "Content-Type": "application/json", "User-Agent": "opsportal-webhook/1", "X-Opsportal-Timestamp": timestamp,
            "webhook-id": msg_id, "webhook-timestamp": timestamp,
        }
        if message.signing_secret:
            headers["X-Opsportal-Signature"] = sign(message.signing_secret, timestamp, body)
            headers["webhook-signature"] = _standard_signature(message.signing_secret, msg_id, timestamp, body)
        connect, read = TIMEOUT if message.timeout is None else (min(t, max(message.timeout, 0.1)) for t in TIMEOUT)
        # `connect` covers waiting for a pooled connection too, as urllib3's pool_timeout did
        timeout = aiohttp.ClientTimeout(total=None, connect=read, sock_connect=connect, sock_read=read)
        try:
            async with session().post(message.url, data=body, headers=headers, allow_redirects=False, timeout=timeout) as response:
                status = response.status
                answer = await response.content.read(BODY_LIMIT)
        except (aiohttp.ClientError, OSError, ValueError) as exc:  # OSError: TimeoutError too
            raise TransportError(f"Webhook not reached: {exc.__class__.__name__}: {exc}") from exc
        if status >= 300:
            # 4xx means the receiver will never take it (except timeouts and throttling).
            permanent = 400 <= status < 500 and status not in (408, 425, 429)
            raise TransportError(f"Webhook answered HTTP {status}: {answer[:200].decode(errors='replace')}", permanent=permanent)
        return f"HTTP {status}"


@lru_cache(maxsize=4096)
def _keys(secret: str) -> tuple[hmac.HMAC, hmac.HMAC]:
    """HMAC-SHA256 set up with the portal's key (the secret's bytes) and the Standard Webhooks key
    (a `whsec_` secret's base64, padded as the `standardwebhooks` package pads it; any other
    secret's bytes), each copied per message."""
    standard = secret.encode()
    if secret.startswith("whsec_"):
        try:
            standard = base64.b64decode(secret[6:] + "==")
        except (binascii.Error, ValueError) as exc:  # the channel must be fixed
            raise TransportError(f"The signing secret starts with whsec_ but is not a Standard Webhooks key: {exc.__class__.__name__}.",
                                 permanent=True) from exc
        if not standard:
            raise TransportError("The signing secret starts with whsec_ but is not a Standard Webhooks key: it is empty.", permanent=True)
    return hmac.new(secret.encode(), digestmod=hashlib.sha256), hmac.new(standard, digestmod=hashlib.sha256)


def _standard_signature(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    mac = _keys(secret)[1].copy()
    mac.update(f"{msg_id}.{timestamp}.".encode() + body)
    return "v1," + base64.b64encode(mac.digest()).decode()
