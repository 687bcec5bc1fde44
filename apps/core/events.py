"""Events: how news travels up the layers without an upward import.

A lower app publishes (`publish("ticket.sla_breached", tenant=t, payload={...})`) inside its own
transaction; a higher app subscribes in its `handlers.py`:

    @subscribe("ticket.sla_breached")
    def raise_sla_alert(event): ...

Handlers are found by name at start-up (every installed app's `handlers` module), so the
publisher never imports the subscriber. Patterns may end in `*` ("ticket.*"). Handlers must be
idempotent: a retry after a partial failure runs only the handlers that have not succeeded, but a
worker killed mid-handler runs that handler again.
"""

from __future__ import annotations

import atexit
import fnmatch
import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

log = logging.getLogger(__name__)

Handler = Callable[["Event"], None]  # noqa: F821
_registry: list[tuple[str, str, Handler]] = []


def subscribe(pattern: str) -> Callable[[Handler], Handler]:
    """Register a handler for events whose name matches `pattern`."""

    def decorator(func: Handler) -> Handler:
        key = f"{func.__module__}.{func.__qualname__}"
        if not any(k == key and p == pattern for p, k, _ in _registry):
            _registry.append((pattern, key, func))
        return func

    return decorator


def handlers_for(name: str) -> list[tuple[str, Handler]]:
    return [(key, func) for pattern, key, func in _registry if fnmatch.fnmatchcase(name, pattern)]


def publish(name: str, *, tenant=None, payload: dict | None = None, actor=None):
    """Write an event in the caller's transaction and dispatch it after commit.

    If the broker is down at commit, the row stays pending and the sweeper dispatches it.
    """
    from .models import Event

    event = Event.objects.create(
        name=name,
        tenant_id=tenant if isinstance(tenant, int) or tenant is None else tenant.pk,
        payload=payload or {},
        actor_id=getattr(actor, "pk", None),
        next_attempt_at=timezone.now() + timedelta(seconds=settings.EVENTS_SWEEP_AFTER_SECONDS),
    )
    transaction.on_commit(lambda: enqueue_dispatch(event.pk))
    return event


def publish_many(name: str, *, payloads: list[dict], tenant=None, actor=None) -> list:
    """Write many events of one name in one INSERT (bulk services: ingestion, fan-out); one task
    dispatches them all after commit."""
    tenant_id = tenant if isinstance(tenant, int) or tenant is None else tenant.pk
    return write_events([(name, tenant_id, p, actor) for p in payloads])


def write_events(rows: list[tuple[str, int | None, dict, object]]) -> list:
    """Write `(name, tenant_id, payload, actor)` events in one INSERT, in order; one task
    dispatches them all after commit (a service collecting the events of one operation)."""
    from .models import Event

    due = timezone.now() + timedelta(seconds=settings.EVENTS_SWEEP_AFTER_SECONDS)
    events = Event.objects.bulk_create(
        [Event(name=name, tenant_id=tenant_id, payload=payload, actor_id=getattr(actor, "pk", None), next_attempt_at=due)
         for name, tenant_id, payload, actor in rows],
        batch_size=1000,
    )
    ids = [str(e.pk) for e in events]
    transaction.on_commit(lambda: enqueue_dispatch_many(ids))
    return events


def enqueue_dispatch_many(event_ids: list[str]) -> None:
    """Have these committed events dispatched: at once, or (EVENTS_DISPATCH_COALESCE_MS > 0 and
    Celery not eager) together with the other ids this process commits within that window."""
    if settings.EVENTS_DISPATCH_COALESCE_MS > 0 and not _eager():
        _coalescer.add(event_ids)
    else:
        send_dispatch(event_ids)


def enqueue_dispatch(event_id) -> None:
    enqueue_dispatch_many([str(event_id)])


def send_dispatch(event_ids: list[str]) -> None:
    """One task per 500 ids now (a single id: the single-event task)."""
    from .tasks import dispatch_event_task, dispatch_events_task

    for start in range(0, len(event_ids), 500):
        chunk = event_ids[start : start + 500]
        try:
            if len(chunk) == 1:
                dispatch_event_task.apply_async(args=[chunk[0]])
            else:
                dispatch_events_task.apply_async(args=[chunk])
        except Exception as exc:  # broker down: the sweeper will pick the rows up
            log.warning("%d events not enqueued (%s); the sweeper will dispatch them", len(chunk), exc)


def _eager() -> bool:
    from celery import current_app

    return bool(current_app.conf.task_always_eager)


class _Coalescer:
    """Per process: ids gathered for EVENTS_DISPATCH_COALESCE_MS by a daemon thread, then one
    `send_dispatch`. A forked child starts empty; at exit what is held is sent."""

    def __init__(self):
        self._reset()

    def _reset(self):
        self._lock = threading.Lock()
        self._ids: list[str] = []
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, event_ids: list[str]) -> None:
        with self._lock:
            self._ids.extend(str(i) for i in event_ids)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="event-dispatch-coalescer", daemon=True)
                self._thread.start()
        self._wake.set()

    def flush(self) -> int:
        with self._lock:
            ids, self._ids = self._ids, []
            self._wake.clear()
        if ids:
            send_dispatch(ids)
        return len(ids)

    def _run(self) -> None:
        while True:
            self._wake.wait()
            time.sleep(settings.EVENTS_DISPATCH_COALESCE_MS / 1000)
            try:
                self.flush()
            except Exception:  # never let the thread die on a bug; the sweeper covers the rows
                log.exception("event dispatch coalescer")


_coalescer = _Coalescer()
os.register_at_fork(after_in_child=_coalescer._reset)
atexit.register(_coalescer.flush)
