"""Writes a service collects and makes at the end of its transaction: the timeline rows and the
outbox events of one ticket operation, one INSERT each, and one task that dispatches all the
events after commit (instead of an INSERT and a task per row)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.core.events import enqueue_dispatch_many
from apps.core.models import Event

from .models import TicketEvent


class BatchedWrites:
    """Timeline rows and outbox events of one service call, written with one INSERT each at the
    end of its transaction (`flush`); one task dispatches all the events after commit. The
    events are the rows `apps.core.events.publish` would write, in the same order."""

    def __init__(self) -> None:
        self.timeline_rows: list[TicketEvent] = []
        self.events: list[Event] = []

    def timeline(self, ticket, kind, *, actor=None, text="", **data) -> TicketEvent:
        row = TicketEvent(ticket=ticket, kind=kind, actor=actor, text=text[:300], data=data)
        self.timeline_rows.append(row)
        return row

    def publish(self, name: str, ticket, *, actor, payload: dict) -> None:
        due = timezone.now() + timedelta(seconds=settings.EVENTS_SWEEP_AFTER_SECONDS)
        self.events.append(Event(name=name, tenant_id=ticket.tenant_id, payload=payload, actor_id=getattr(actor, "pk", None), next_attempt_at=due))

    def flush(self) -> None:
        if self.timeline_rows:
            TicketEvent.objects.bulk_create(self.timeline_rows)
        if self.events:
            Event.objects.bulk_create(self.events)
            ids = [str(e.pk) for e in self.events]
            transaction.on_commit(lambda: enqueue_dispatch_many(ids))
