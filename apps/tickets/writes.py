"""Writes a service collects and makes at the end of its transaction: the timeline rows and the
outbox events of one ticket operation, one INSERT each, and one task that dispatches all the
events after commit (instead of an INSERT and a task per row)."""

from __future__ import annotations

from apps.core.events import write_events

from .models import TicketEvent


class BatchedWrites:
    """Timeline rows and outbox events of one service call, written with one INSERT each at the
    end of its transaction (`flush`); one task dispatches all the events after commit. The
    events are the rows `apps.core.events.publish` would write, in the same order."""

    def __init__(self) -> None:
        self.timeline_rows: list[TicketEvent] = []
        self.events: list[tuple] = []  # (name, tenant_id, payload, actor) for core.events.write_events

    def timeline(self, ticket, kind, *, actor=None, text="", **data) -> TicketEvent:
        row = TicketEvent(ticket=ticket, kind=kind, actor=actor, text=text[:300], data=data)
        self.timeline_rows.append(row)
        return row

    def publish(self, name: str, ticket, *, actor, payload: dict) -> None:
        self.events.append((name, ticket.tenant_id, payload, actor))

    def flush(self) -> None:
        if self.timeline_rows:
            TicketEvent.objects.bulk_create(self.timeline_rows)
        if self.events:
            write_events(self.events)
