"""Delivery transports: one `Transport.send(message, delivery)` interface per channel kind,
imported lazily from a registry of dotted paths (healthchecks' transports, split per kind)."""

from __future__ import annotations

from functools import cache
from importlib import import_module

from ..choices import ChannelKind
from .base import Message, Transport, TransportError

REGISTRY: dict[str, str] = {
    ChannelKind.EMAIL: "apps.notifications.transports.email.EmailTransport",
    ChannelKind.WEBHOOK: "apps.notifications.transports.webhook.WebhookTransport",
    ChannelKind.SLACK: "apps.notifications.transports.apprise.AppriseTransport",
    ChannelKind.TEAMS: "apps.notifications.transports.apprise.AppriseTransport",
    ChannelKind.TELEGRAM: "apps.notifications.transports.apprise.AppriseTransport",
    ChannelKind.SMS: "apps.notifications.transports.apprise.AppriseTransport",
    ChannelKind.APPRISE: "apps.notifications.transports.apprise.AppriseTransport",
}


@cache
def get_transport(kind: str) -> Transport:
    try:
        path = REGISTRY[kind]
    except KeyError:
        raise TransportError(f"No transport for channel kind {kind!r}.", permanent=True) from None
    module, _, name = path.rpartition(".")
    return getattr(import_module(module), name)()


__all__ = ["Message", "Transport", "TransportError", "get_transport", "REGISTRY"]
