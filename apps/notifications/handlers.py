"""Notifications is a sink: every event that carries a `notify` block reaches people."""

from apps.core.events import subscribe


@subscribe("*")
def notify_from_event(event) -> None:
    """Turn `payload["notify"]` into notifications and deliveries (idempotent per event)."""
    from .services import notify_from_event as service

    service(event=event)
