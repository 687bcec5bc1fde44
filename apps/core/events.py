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
import functools
import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
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


# -- the one writer of the events table ------------------------------------------------------
# Every row of `core_event` is written here: one event (publish), many in one INSERT
# (write_events), or set-based by another app's SQL statement (insert_select_sql). The columns
# come from the model, so a new column gets its default on every path or fails loudly here.


def due_at(now):
    """When the sweeper takes over an event written at `now` that no task dispatched."""
    return now + timedelta(seconds=settings.EVENTS_SWEEP_AFTER_SECONDS)


def _new_event(name: str, tenant_id: int | None, payload: dict | None, actor, next_attempt_at):
    from .models import Event

    return Event(name=name, tenant_id=tenant_id, payload=payload or {}, actor_id=getattr(actor, "pk", None),
                 next_attempt_at=next_attempt_at)


def _tenant_id(tenant) -> int | None:
    return tenant if isinstance(tenant, int) or tenant is None else tenant.pk


def publish(name: str, *, tenant=None, payload: dict | None = None, actor=None):
    """Write an event in the caller's transaction and dispatch it after commit.

    If the broker is down at commit, the row stays pending and the sweeper dispatches it.
    """
    event = _new_event(name, _tenant_id(tenant), payload, actor, due_at(timezone.now()))
    event.save(force_insert=True)
    transaction.on_commit(lambda: enqueue_dispatch(event.pk))
    return event


def publish_many(name: str, *, payloads: list[dict], tenant=None, actor=None) -> list:
    """Write many events of one name in one INSERT (bulk services: ingestion, fan-out); one task
    dispatches them all after commit."""
    tenant_id = _tenant_id(tenant)
    return write_events([(name, tenant_id, p, actor) for p in payloads])


def write_events(rows: list[tuple[str, int | None, dict, object]], *, dispatch_now: int | None = None) -> list:
    """Write `(name, tenant_id, payload, actor)` events in one INSERT, in order; one task
    dispatches them all after commit (a service collecting the events of one operation).
    With `dispatch_now`, only that many are enqueued; the rest are due to the sweeper at once
    (a sweep flagging thousands of rows)."""
    from .models import Event

    now = timezone.now()
    due, late = due_at(now), now
    events = [_new_event(name, tenant_id, payload, actor, due if dispatch_now is None or i < dispatch_now else late)
              for i, (name, tenant_id, payload, actor) in enumerate(rows)]
    Event.objects.bulk_create(events, batch_size=1000)
    ids = [str(e.pk) for e in events[:dispatch_now]]
    if ids:
        transaction.on_commit(lambda: enqueue_dispatch_many(ids))
    return events


# columns another app's statement must give: the event's identity and content
_GIVEN = ("id", "name", "tenant_id", "payload")


@functools.cache
def _column_fields() -> tuple:
    from .models import Event

    return tuple(f for f in Event._meta.concrete_fields if not f.generated)


def insert_select_sql(exprs: dict[str, str]) -> str:
    """`INSERT INTO core_event (<every column>) SELECT <one expression each>` for a set-based
    statement of another app, which appends its `FROM …`. `exprs` maps column attnames to SQL
    expressions and must give id, name, tenant_id and payload; every other column gets
    publish()'s value as a parameter `%(event_<column>)s` — bind `insert_select_params(now)`.
    The statement's author casts its own expressions to the column types."""
    fields = _column_fields()
    known = {f.attname for f in fields}
    unknown = sorted(set(exprs) - known)
    if unknown:
        raise ValueError(f"core_event has no column {', '.join(unknown)}")
    missing = [c for c in _GIVEN if c not in exprs]
    if missing:
        raise ValueError(f"a set-based event insert must give {', '.join(missing)}")
    select = []
    for f in fields:
        if f.attname in exprs:
            select.append(exprs[f.attname])
        else:
            _default_for(f)  # refuse a column that has no value publish() would write
            select.append(f"CAST(%(event_{f.attname})s AS {f.cast_db_type(connection)})")
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    from .models import Event

    return f"INSERT INTO {Event._meta.db_table} ({columns}) SELECT {', '.join(select)}"


_PER_CALL = ("next_attempt_at", "actor_id", "created_at")


def insert_select_params(now, *, actor=None) -> dict:
    """The parameters of `insert_select_sql`'s columns the statement did not give: what
    publish() writes at `now` (the actor when the statement has no `actor_id` of its own)."""
    constant, per_row = _default_params()
    params = {**constant, "event_next_attempt_at": due_at(now), "event_created_at": now, "event_actor_id": getattr(actor, "pk", None)}
    for f in per_row:  # a default computed per call (none today)
        params[f"event_{f.attname}"] = f.get_db_prep_save(f.get_default(), connection)
    return params


@functools.cache
def _default_params() -> tuple[dict, list]:
    """The columns whose value publish() takes from a constant model default, prepared once, and
    those whose default is computed per call."""
    rest = [f for f in _column_fields() if f.attname not in _GIVEN and f.attname not in _PER_CALL]
    per_call = [f for f in rest if f.has_default() and callable(f.default) and f.default not in (list, dict)]
    return {f"event_{f.attname}": f.get_db_prep_save(_default_for(f), connection) for f in rest if f not in per_call}, per_call


def _default_for(field):
    if field.attname in _PER_CALL or field.has_default() or field.null:
        return field.get_default()
    raise TypeError(f"core_event.{field.column} has no default: give it in apps/core/events.py's writers")


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
