"""Generic webhooks: the JSON payload POSTed with an HMAC-SHA256 signature.

Headers: `X-Opsportal-Timestamp: <unix seconds>` and
`X-Opsportal-Signature: sha256=<hex hmac(secret, "<timestamp>." + body)>`. A receiver recomputes
the HMAC over the raw body and refuses timestamps older than a few minutes (replays)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time

import requests

from .base import Message, Transport, TransportError

_local = threading.local()
TIMEOUT = (3, 10)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def _session() -> requests.Session:
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()  # keep-alive per thread
    return session


class WebhookTransport(Transport):
    def send(self, message: Message) -> str:
        if not message.url.startswith(("http://", "https://")):
            raise TransportError("A webhook URL must start with http:// or https://.", permanent=True)
        body = json.dumps(message.payload, separators=(",", ":"), default=str).encode()
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", "User-Agent": "opsportal-webhook/1", "X-Opsportal-Timestamp": timestamp}
        if message.signing_secret:
            headers["X-Opsportal-Signature"] = sign(message.signing_secret, timestamp, body)
        try:
            timeout = TIMEOUT if message.timeout is None else tuple(min(t, max(message.timeout, 0.1)) for t in TIMEOUT)
            response = _session().post(message.url, data=body, headers=headers, timeout=timeout, allow_redirects=False)
        except requests.RequestException as exc:
            raise TransportError(f"Webhook not reached: {exc.__class__.__name__}: {exc}") from exc
        if response.status_code >= 300:
            # 4xx means the receiver will never take it (except timeouts and throttling).
            permanent = 400 <= response.status_code < 500 and response.status_code not in (408, 425, 429)
            raise TransportError(f"Webhook answered HTTP {response.status_code}: {response.text[:200]}", permanent=permanent)
        return f"HTTP {response.status_code}"
