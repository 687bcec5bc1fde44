"""The transport interface."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


class TransportError(Exception):
    """A send failed. `permanent=True`: retrying cannot help (bad URL, rejected address), the
    delivery fails at once; otherwise it is retried with backoff."""

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


@dataclass
class Message:
    """What a transport sends: rendered subject/text/html plus the structured payload that
    webhooks post as JSON."""

    subject: str
    text: str
    html: str = ""
    priority: str = "medium"
    to_email: str = ""
    url: str = ""  # the channel's plaintext URL (decrypted just before sending)
    signing_secret: str = ""
    payload: dict = field(default_factory=dict)
    timeout: float | None = None  # seconds left in the channel's time budget (caps the transport's own timeout)


class Transport:
    """Send one message; raise TransportError on failure, return a short note on success.
    `renders`: whether the transport uses the rendered subject/text/html (False: payload only).
    `send_async` is what a batch awaits on the send loop (transports/loop.py): a transport that
    blocks keeps the default (its `send` on the loop's threads), one that speaks asyncio
    overrides it."""

    renders = True

    def send(self, message: Message) -> str:  # pragma: no cover - interface
        raise NotImplementedError

    async def send_async(self, message: Message) -> str:
        return await asyncio.get_running_loop().run_in_executor(None, self.send, message)
