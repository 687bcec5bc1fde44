"""Prometheus metrics of the portal: the exposition (multiprocess-aware), a registry of domain
gauges computed from the database at scrape time, and Celery task counters.

- Under gunicorn each worker process keeps its own counters; with `PROMETHEUS_MULTIPROC_DIR`
  (config/gunicorn.conf.py sets it and marks exited workers dead) they write to files there and
  one scrape sums every process's files. Without it (runserver, tests) the process registry.
- Domain gauges are counts from the database, so they are the same whoever answers the scrape
  and cover work done by every worker: each app contributes its own in `apps/<app>/metrics.py`
  (imported at start, keeping the layers: core never imports a domain app) through `gauge()`.
  One scrape runs them once, cached METRICS_CACHE_SECONDS so several scrapers cost one query set.
- Celery tasks: runtime histogram and failures counter from the worker's task signals
  (config/celery.py connects them); a worker started with CELERY_METRICS_PORT serves them.
See docs/operations.md ("Metrics") for the list and deploy/grafana-dashboard.json for a dashboard.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

log = logging.getLogger(__name__)
WINDOW_HOURS = 24  # "by status" counts of growing tables cover rows created in this window


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


# -- domain gauges: name, help, labels, and a function returning {label values: number} --------------
@dataclass(frozen=True)
class DomainGauge:
    name: str
    documentation: str
    labels: tuple[str, ...]
    func: Callable[[], dict[tuple[str, ...], float]]


_GAUGES: dict[str, DomainGauge] = {}


def gauge(name: str, documentation: str, labels: Iterable[str] = ()):
    """Decorator: register `func() -> {(label values...): value}` as gauge `opsportal_<name>`."""

    def register(func):
        _GAUGES[name] = DomainGauge(f"opsportal_{name}", documentation, tuple(labels), func)
        return func

    return register


class DomainCollector:
    """Runs every registered gauge function; one that fails is logged and left out (the scrape
    still answers; `opsportal_metric_errors` counts the failures of this scrape)."""

    def __init__(self):
        self._cache: tuple[float, list] | None = None

    def collect(self):
        from django.conf import settings

        ttl = getattr(settings, "METRICS_CACHE_SECONDS", 10)
        now = time.monotonic()
        if self._cache is None or now - self._cache[0] > ttl:
            self._cache = (now, self._compute())
        yield from self._cache[1]

    def _compute(self) -> list:
        families, errors = [], 0
        for spec in list(_GAUGES.values()):
            family = GaugeMetricFamily(spec.name, spec.documentation, labels=list(spec.labels))
            try:
                for values, number in sorted(spec.func().items()):
                    family.add_metric([str(v) for v in values], float(number))
            except Exception:
                errors += 1
                log.exception("metric %s could not be computed", spec.name)
                continue
            families.append(family)
        err = GaugeMetricFamily("opsportal_metric_errors", "Domain gauges that failed in the last computation.")
        err.add_metric([], errors)
        return [*families, err]


_domain = DomainCollector()
_discovered = False


def exposition() -> bytes:
    """The text answer of /metrics: every process's counters (multiprocess mode) or this process's,
    then the domain gauges."""
    import prometheus_client

    global _discovered
    if not _discovered:
        discover()
        _discovered = True
    if multiprocess_dir():
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        process = generate_latest(registry)
    else:
        process = generate_latest(prometheus_client.REGISTRY)
    domain = CollectorRegistry()
    domain.register(_domain)
    return process + generate_latest(domain)


def discover() -> None:
    """Import `apps.<app>.metrics` of every installed portal app (their gauges register)."""
    from django.utils.module_loading import autodiscover_modules

    autodiscover_modules("metrics")


# -- core's own gauges -----------------------------------------------------------------------------
@gauge("queue_depth", "Messages waiting in each Celery queue (Redis broker).", ["queue"])
def _queue_depth():
    import redis

    from config.celery import QUEUES, app

    url = app.conf.broker_url or ""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return {}
    # kombu keeps a queue in a Redis list of its name, plus one per priority step ("\x06\x16<n>")
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)  # a dead broker: a quick error
    try:
        with client.pipeline(transaction=False) as pipe:
            for q in QUEUES:
                for suffix in ("", *(f"\x06\x16{n}" for n in range(1, 10))):
                    pipe.llen(q + suffix)
            counts = pipe.execute()
    finally:
        client.close()
    per = len(counts) // len(QUEUES)
    return {(q,): sum(counts[i * per : (i + 1) * per]) for i, q in enumerate(QUEUES)}


@gauge("outbox_backlog", "Events in the core outbox not yet dispatched, by status.", ["status"])
def _outbox():
    from django.db.models import Count

    from .choices import EventStatus
    from .models import Event

    rows = Event.objects.exclude(status=EventStatus.DISPATCHED).values_list("status").annotate(n=Count("id"))
    out = {(s,): 0 for s in (EventStatus.PENDING, EventStatus.FAILED)}
    out.update({(status,): n for status, n in rows})
    return out


@gauge("outbox_oldest_pending_seconds", "Age of the oldest undispatched event (0 when none).")
def _outbox_age():
    from django.db.models import Min
    from django.utils import timezone

    from .choices import EventStatus
    from .models import Event

    oldest = Event.objects.filter(status=EventStatus.PENDING).aggregate(m=Min("created_at"))["m"]
    return {(): (timezone.now() - oldest).total_seconds() if oldest else 0.0}


@gauge(
    "beat_lag_seconds", "How late each enabled beat schedule is: now minus when it was due (0 when not due yet).", ["schedule"]
)
def _beat_lag():
    from django_celery_beat.models import PeriodicTask

    out = {}
    for task in (
        PeriodicTask.objects.filter(enabled=True).exclude(one_off=True).select_related("interval", "crontab", "solar", "clocked")
    ):
        last = task.last_run_at or task.start_time or task.date_changed
        try:
            remaining = task.schedule.remaining_estimate(last)
        except Exception:  # a schedule celery cannot evaluate: left out, not fatal
            continue
        out[(task.name,)] = max(0.0, -remaining.total_seconds())
    return out


# -- Celery task counters (worker processes) -------------------------------------------------------
TASK_RUNTIME = Histogram(
    "opsportal_task_runtime_seconds",
    "Run time of Celery tasks.",
    ["task", "queue"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
)
TASK_FAILURES = Counter("opsportal_task_failures", "Celery tasks that raised (retries included).", ["task", "queue"])
TASK_RETRIES = Counter("opsportal_task_retries", "Celery tasks that asked to be retried.", ["task", "queue"])
_started: dict[str, float] = {}


def _queue_of(task) -> str:
    info = getattr(task.request, "delivery_info", None) or {}
    return info.get("routing_key") or info.get("exchange") or "default"


def task_started(task_id=None, task=None, **kwargs):
    _started[task_id] = time.perf_counter()


def task_finished(task_id=None, task=None, state=None, **kwargs):
    began = _started.pop(task_id, None)
    if began is not None and task is not None:
        TASK_RUNTIME.labels(task.name, _queue_of(task)).observe(time.perf_counter() - began)


def task_failed(sender=None, task_id=None, **kwargs):
    if sender is not None:
        TASK_FAILURES.labels(sender.name, _queue_of(sender)).inc()


def task_retried(sender=None, request=None, **kwargs):
    if sender is not None:
        TASK_RETRIES.labels(sender.name, _queue_of(sender)).inc()


def remove_dead_files(directory: str) -> None:
    """Drop the metric files of processes that no longer run (a previous start of this container
    would otherwise be summed in); this process's own files stay."""
    import re

    for name in os.listdir(directory):
        match = re.fullmatch(r"[a-z_]+_(\d+)\.db", name)
        if not match or int(match.group(1)) == os.getpid():
            continue
        try:
            os.kill(int(match.group(1)), 0)
        except ProcessLookupError:
            os.unlink(os.path.join(directory, name))
        except PermissionError:  # alive, someone else's
            pass


def serve_worker_metrics(port: int) -> None:
    """Serve this worker's (all its pool processes') counters on 0.0.0.0:`port` (/metrics)."""
    from prometheus_client import start_http_server

    registry = CollectorRegistry()
    if directory := multiprocess_dir():
        from prometheus_client import multiprocess

        os.makedirs(directory, exist_ok=True)
        remove_dead_files(directory)
        multiprocess.MultiProcessCollector(registry)
    else:
        import prometheus_client

        registry = prometheus_client.REGISTRY
    start_http_server(port, registry=registry)
