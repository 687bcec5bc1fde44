import pytest
from django.db import transaction
from django.utils import timezone

from apps.core import events
from apps.core.choices import EventStatus
from apps.core.models import Event
from apps.core.services import event_dispatch, events_sweep
from tests.conftest import wait_for

CALLS: list[tuple[str, str]] = []
FAIL_ONCE: set[str] = set()


@events.subscribe("test.thing.*")
def record(event):
    CALLS.append(("record", event.payload["n"]))


@events.subscribe("test.thing.flaky")
def flaky(event):
    if event.payload["n"] not in FAIL_ONCE:
        FAIL_ONCE.add(event.payload["n"])
        raise RuntimeError("transient")
    CALLS.append(("flaky", event.payload["n"]))


@pytest.fixture(autouse=True)
def _reset():
    CALLS.clear()
    FAIL_ONCE.clear()


def test_event_is_dispatched_after_commit(db, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        ev = events.publish("test.thing.created", payload={"n": "1"})
        assert CALLS == []  # nothing runs before commit
    ev.refresh_from_db()
    assert ev.status == EventStatus.DISPATCHED
    assert CALLS == [("record", "1")]


def test_rolled_back_publish_leaves_nothing(db):
    with pytest.raises(RuntimeError), transaction.atomic():
        events.publish("test.thing.created", payload={"n": "2"})
        raise RuntimeError
    assert not Event.objects.filter(name="test.thing.created").exists()


def test_failed_handler_is_retried_alone(db):
    ev = events.publish("test.thing.flaky", payload={"n": "3"})
    first = event_dispatch(event_id=ev.pk)
    assert first.status == EventStatus.PENDING and first.attempts == 1
    assert "transient" in first.last_error
    assert CALLS == [("record", "3")]
    Event.objects.filter(pk=ev.pk).update(next_attempt_at=timezone.now())
    assert events_sweep() == 1
    ev.refresh_from_db()
    assert ev.status == EventStatus.DISPATCHED
    # the handler that had succeeded did not run twice
    assert CALLS == [("record", "3"), ("flaky", "3")]


def test_dispatch_is_idempotent(db):
    ev = events.publish("test.thing.created", payload={"n": "4"})
    event_dispatch(event_id=ev.pk)
    assert event_dispatch(event_id=ev.pk) is None
    assert CALLS == [("record", "4")]


def test_gives_up_after_max_attempts(db, settings):
    settings.EVENTS_MAX_ATTEMPTS = 1
    ev = events.publish("test.thing.flaky", payload={"n": "5"})
    event_dispatch(event_id=ev.pk)
    ev.refresh_from_db()
    assert ev.status == EventStatus.FAILED


def test_sweeper_delivers_what_the_broker_lost(db, monkeypatch):
    from apps.core import tasks

    def broker_down(*a, **k):
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks.dispatch_event_task, "apply_async", broker_down)
    events.enqueue_dispatch("00000000-0000-0000-0000-000000000000")  # logs, does not raise
    ev = events.publish("test.thing.created", payload={"n": "6"})
    assert events_sweep() == 0  # not due yet
    Event.objects.filter(pk=ev.pk).update(next_attempt_at=timezone.now())
    assert events_sweep() == 1
    assert CALLS == [("record", "6")]


@pytest.mark.worker
def test_real_worker_dispatches_published_events(celery_worker):
    with transaction.atomic():
        ev = events.publish("test.thing.created", payload={"n": "7"})
    wait_for(lambda: Event.objects.get(pk=ev.pk).status == EventStatus.DISPATCHED)
    assert ("record", "7") in CALLS


def test_publish_many_dispatches_all_after_commit(db, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        rows = events.publish_many("test.thing.bulk", payloads=[{"n": str(i)} for i in range(5)])
    assert {Event.objects.get(pk=r.pk).status for r in rows} == {EventStatus.DISPATCHED}
    assert sorted(n for _, n in CALLS) == ["0", "1", "2", "3", "4"]


def test_coalesced_dispatch_sends_one_task_for_what_a_process_commits_within_the_window(celery_worker, settings, monkeypatch):
    """EVENTS_DISPATCH_COALESCE_MS > 0 (the production default): events committed by separate
    requests of one process within the window go to the real worker in one task; all dispatched."""
    settings.EVENTS_DISPATCH_COALESCE_MS = 200
    sent = []
    real_send = events.send_dispatch
    monkeypatch.setattr(events, "send_dispatch", lambda ids: (sent.append(list(ids)), real_send(ids)))
    published = []
    for i in range(5):  # five transactions, as five requests would commit
        with transaction.atomic():
            published.append(events.publish("test.thing.created", payload={"n": f"c{i}"}))
    wait_for(lambda: Event.objects.filter(pk__in=[e.pk for e in published], status=EventStatus.DISPATCHED).count() == 5)
    assert sent == [[str(e.pk) for e in published]]  # one task, in commit order
    assert sorted(n for _, n in CALLS if n.startswith("c")) == ["c0", "c1", "c2", "c3", "c4"]


def test_coalesced_ids_are_sent_at_exit_and_a_forked_child_starts_empty(settings, monkeypatch):
    settings.EVENTS_DISPATCH_COALESCE_MS = 60_000  # the thread would wait a minute
    monkeypatch.setattr(events, "_eager", lambda: False)
    sent = []
    monkeypatch.setattr(events, "send_dispatch", lambda ids: sent.append(list(ids)))
    coalescer = events._Coalescer()
    monkeypatch.setattr(events, "_coalescer", coalescer)
    events.enqueue_dispatch_many(["a", "b"])
    events.enqueue_dispatch("c")
    assert sent == []  # still held
    assert coalescer.flush() == 3 and sent == [["a", "b", "c"]]  # what atexit runs
    coalescer.add(["d"])
    coalescer._reset()  # what a forked child runs (os.register_at_fork)
    assert coalescer.flush() == 0 and sent == [["a", "b", "c"]]
