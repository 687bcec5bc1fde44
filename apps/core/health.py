"""Health probes: liveness (the process answers), readiness (database, cache, broker, migrations)
and a status report of worker and beat heartbeats. Bodies are JSON with check names and exception
class names only (no reprs, no hosts); the full error goes to the log.

Probes are answered by `HealthProbeMiddleware` before host validation, the HTTPS redirect and
sessions: orchestrators probe a container by IP, and liveness must not touch the database.
"""

from __future__ import annotations

import logging
import socket
import threading
import time

from django.conf import settings
from django.http import HttpResponseForbidden, JsonResponse

logger = logging.getLogger(__name__)

LIVE_PATHS = frozenset({"/health/live", "/health/live/"})
READY_PATHS = frozenset({"/health/ready", "/health/ready/", "/health/"})  # /health/: the old URL, now readiness
PROBE_TIMEOUT = 1.0  # seconds per network check, so a dead peer answers 503 quickly
_migrated = False  # once every migration is applied it stays so for this process


def _redis_ping(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=PROBE_TIMEOUT, socket_timeout=PROBE_TIMEOUT)
    try:
        client.ping()
    finally:
        client.close()


def check_database() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def check_cache() -> None:
    config = settings.CACHES["default"]
    if "redis" in config["BACKEND"].lower():
        # the portal's cache swallows Redis errors (apps/core/cache.py), so ask Redis itself
        location = config["LOCATION"]
        _redis_ping(location[0] if isinstance(location, (list, tuple)) else location)
        return
    from django.core.cache import cache

    cache.set("health:probe", "1", 10)
    if cache.get("health:probe") != "1":
        raise RuntimeError("cache did not return what was stored")


def check_broker() -> None:
    url = settings.CELERY_BROKER_URL
    if url.startswith(("redis://", "rediss://")):
        _redis_ping(url)
        return
    from kombu import Connection

    with Connection(url, connect_timeout=PROBE_TIMEOUT) as conn:
        conn.ensure_connection(max_retries=1)


def check_migrations() -> None:
    global _migrated
    if _migrated:
        return
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        raise RuntimeError(f"{len(plan)} migration(s) not applied, first {plan[0][0]}")
    _migrated = True


READY_CHECKS = {"database": check_database, "cache": check_cache, "broker": check_broker, "migrations": check_migrations}


def readiness() -> tuple[bool, dict]:
    results = {}
    for name, check in READY_CHECKS.items():
        started = time.monotonic()
        try:
            check()
        except Exception as exc:  # any failure makes the instance not ready; named, not raised
            logger.warning("health: %s check failed: %s: %s", name, type(exc).__name__, exc)
            results[name] = {"ok": False, "error": type(exc).__name__}
        else:
            results[name] = {"ok": True}
        results[name]["ms"] = round((time.monotonic() - started) * 1000, 1)
    return all(r["ok"] for r in results.values()), results


def live_view(request):
    """The process is up and answering; depends on nothing."""
    return JsonResponse({"status": "ok"})


def ready_view(request):
    """200 when the database, cache and broker answer and no migration is pending, else 503."""
    ok, checks = readiness()
    return JsonResponse({"status": "ok" if ok else "fail", "checks": checks}, status=200 if ok else 503)


class HealthProbeMiddleware:
    """First in MIDDLEWARE: answers live/ready probes before anything else runs."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path in LIVE_PATHS:
            return live_view(request)
        if request.path in READY_PATHS:
            return ready_view(request)
        return self.get_response(request)


# -- heartbeats of workers and beat -----------------------------------------------------------
HEARTBEAT_PREFIX = "health:heartbeat:"
HEARTBEAT_TTL = 7 * 24 * 3600  # a process silent this long drops out of the report
HEARTBEAT_EVERY = 10.0  # seconds between writes from one process
_written: dict[tuple[str, str], float] = {}


def record_heartbeat(kind: str, name: str, *, at: float | None = None, force: bool = False) -> None:
    """Note that a worker or beat process is alive (kept in the cache, shared by every process)."""
    from django.core.cache import cache

    now = time.monotonic()
    if not force and at is None and now - _written.get((kind, name), -HEARTBEAT_EVERY) < HEARTBEAT_EVERY:
        return
    _written[(kind, name)] = now
    cache.set(f"{HEARTBEAT_PREFIX}{kind}:{name}", at if at is not None else time.time(), HEARTBEAT_TTL)
    names = cache.get(f"{HEARTBEAT_PREFIX}{kind}") or []
    if name not in names:
        cache.set(f"{HEARTBEAT_PREFIX}{kind}", [*names, name], HEARTBEAT_TTL)


def heartbeats(kind: str) -> list[dict]:
    from django.core.cache import cache

    names = cache.get(f"{HEARTBEAT_PREFIX}{kind}") or []
    seen = cache.get_many([f"{HEARTBEAT_PREFIX}{kind}:{n}" for n in names])
    now = time.time()
    out = []
    for name in names:
        at = seen.get(f"{HEARTBEAT_PREFIX}{kind}:{name}")
        if at is not None:
            age = round(max(0.0, now - at), 1)
            out.append({"name": name, "last_heartbeat_seconds": age, "stale": age > settings.HEALTH_HEARTBEAT_STALE_SECONDS})
    return sorted(out, key=lambda h: h["last_heartbeat_seconds"])


def status_view(request):
    """Workers and beat with their last heartbeat age: staff or `Bearer $METRICS_TOKEN`.
    503 when a kind has no fresh heartbeat; never part of liveness or readiness."""
    from .views import staff_or_metrics_token

    if not staff_or_metrics_token(request):
        return HttpResponseForbidden("Health status needs a staff login or the metrics bearer token.")
    workers, beat = heartbeats("worker"), heartbeats("beat")
    ok = any(not w["stale"] for w in workers) and any(not b["stale"] for b in beat)
    return JsonResponse({"status": "ok" if ok else "degraded", "workers": workers, "beat": beat}, status=200 if ok else 503)


def _safe_record(kind: str, name: str, **kwargs) -> None:
    try:
        record_heartbeat(kind, name, **kwargs)
    except Exception:  # a heartbeat must never break a task or the beat loop
        logger.exception("health: heartbeat of %s %s not recorded", kind, name)


def connect_signals() -> None:
    """Workers note a heartbeat when ready, on Celery's own heartbeat and after tasks; beat from a thread."""
    from celery import signals

    @signals.worker_ready.connect(weak=False)
    def _ready(sender=None, **kwargs):
        _safe_record("worker", getattr(sender, "hostname", None) or socket.gethostname(), force=True)

    @signals.heartbeat_sent.connect(weak=False)
    def _heart(sender=None, **kwargs):
        _safe_record("worker", getattr(getattr(sender, "eventer", None), "hostname", None) or socket.gethostname())

    @signals.task_postrun.connect(weak=False)
    def _after_task(sender=None, **kwargs):
        request = getattr(sender, "request", None)
        if getattr(request, "is_eager", False):  # run in the caller's process: no worker's heartbeat
            return
        _safe_record("worker", getattr(request, "hostname", None) or socket.gethostname())

    @signals.beat_init.connect(weak=False)
    def _beat(sender=None, **kwargs):
        name = f"beat@{socket.gethostname()}"

        def loop():
            while True:
                _safe_record("beat", name, force=True)
                time.sleep(HEARTBEAT_EVERY)

        threading.Thread(target=loop, name="health-heartbeat", daemon=True).start()
