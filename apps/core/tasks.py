"""Core tasks and the base class every portal task uses.

`PortalTask`: acks_late, rejected back to the queue when the worker dies, failures logged with
the task's arguments, retries with exponential backoff and jitter for transient errors only
(`TRANSIENT_ERRORS`), and a task that fails for good (a permanent error, or its retries exhausted)
handed to the dead-letter writer an upper app registers (`register_dead_letter`; targets stores a
`FailedTask` row). Tasks are entry points: re-read the row, return early when the work is done or
taken, call a service.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from celery import Task, shared_task
from django.db import InterfaceError, OperationalError, connection, transaction

log = logging.getLogger(__name__)

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (OperationalError, InterfaceError, ConnectionError, TimeoutError)
_dead_letter: list[Callable[..., object]] = []


def register_dead_letter(writer: Callable[..., object]) -> None:
    """Install the writer of failed tasks: writer(task_name=, task_id=, args=, kwargs=, exc=, traceback_text=)."""
    _dead_letter[:] = [writer]


def dead_letter(*, task_name: str, task_id: str, args, kwargs, exc: BaseException, traceback_text: str) -> None:
    """Record a task that failed for good. The failure may have broken this thread's database
    connection (a dropped backend), so an unusable one is replaced first; a write that still
    fails is logged, never raised into the worker."""
    for writer in _dead_letter:
        try:
            if not connection.in_atomic_block and connection.connection is not None and not connection.is_usable():
                connection.close()  # the next query reconnects
            with transaction.atomic():  # a savepoint when an eager task fails inside the caller's transaction
                writer(task_name=task_name, task_id=task_id, args=args, kwargs=kwargs, exc=exc, traceback_text=traceback_text)
        except Exception:
            log.exception("could not dead-letter task %s[%s]", task_name, task_id)


class PortalTask(Task):
    acks_late = True
    reject_on_worker_lost = True
    autoretry_for = TRANSIENT_ERRORS
    retry_backoff = 2
    retry_backoff_max = 300
    retry_jitter = True
    max_retries = 8

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        log.error("task %s[%s] failed args=%r kwargs=%r: %r", self.name, task_id, args, kwargs, exc)
        super().on_failure(exc, task_id, args, kwargs, einfo)
        dead_letter(task_name=self.name, task_id=task_id, args=args, kwargs=kwargs, exc=exc, traceback_text=str(einfo))


@shared_task(base=PortalTask, name="core.dispatch_event")
def dispatch_event_task(event_id: str) -> str | None:
    """Run the handlers of one outbox event (no-op if already dispatched or taken)."""
    from .services import event_dispatch

    event = event_dispatch(event_id=event_id)
    return event.status if event else None


@shared_task(base=PortalTask, name="core.dispatch_events")
def dispatch_events_task(event_ids: list[str]) -> int:
    """Run the handlers of a batch of outbox events (from `publish_many`)."""
    from .services import event_dispatch

    return sum(1 for pk in event_ids if event_dispatch(event_id=pk) is not None)


@shared_task(base=PortalTask, name="core.sweep_events")
def sweep_events_task() -> int:
    """Beat: dispatch events the broker lost or whose retry is due."""
    from .services import events_sweep

    return events_sweep()


@shared_task(base=PortalTask, name="core.dispatch_due")
def dispatch_due_task() -> dict:
    """Beat, every second: claim the rows of every due set due within the look-ahead and send
    their fire tasks (apps/core/duefire.py)."""
    from .duefire import dispatch

    return dispatch()


@shared_task(base=PortalTask, name="core.fire_due")
def fire_due_task(name: str, ids: list, due: str):
    """Fire a chunk of claimed rows of one due set at their due time (sent with eta = due)."""
    from datetime import datetime

    from .duefire import fire

    result = fire(name=name, ids=ids, due=datetime.fromisoformat(due))
    return result if isinstance(result, (int, dict, list)) else None
