"""The check dispatcher: claim due endpoints, check them on the process's `CheckEngine`, record
results and endpoint states in bulk, publish status transitions (services.py re-exports these).

Schedule: every network endpoint has a fixed phase inside its interval (a hash of its id, as
Prometheus spreads scrapes), so 10,000 endpoints created in the same second are checked spread
over the interval from their second check on, not all in one second. A result's `scheduled_at`
is the endpoint's own slot: lateness = checked_at − scheduled_at.
"""

from __future__ import annotations

import logging
import queue
import time
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.core.events import write_events
from apps.maintenance.selectors import active_windows, candidate_windows

from .checkers import CheckSpec, Outcome, engine
from .choices import EndpointKind, EndpointStatus, ResultStatus
from .models import CheckResult, Endpoint

log = logging.getLogger(__name__)

STATE_FIELDS = [
    "status", "status_since", "status_reason", "notified_status", "consecutive_failures", "consecutive_slow",
    "in_maintenance", "last_checked_at", "last_latency_ms", "last_status_code", "last_error", "tls_expires_at",
    "last_scheduled_at",
]
STATE_TYPES = [  # PostgreSQL array types of STATE_FIELDS, for the one-statement UPDATE
    "varchar", "timestamptz", "varchar", "varchar", "int", "int", "bool", "timestamptz", "float8", "int", "varchar",
    "timestamptz", "timestamptz",
]
FLUSH_SECONDS = 0.2  # a batch writes what finished at most this often: a hanging check delays nobody else
PHASE_MULTIPLIER = 2654435761  # Knuth's multiplicative hash: consecutive ids land far apart in the interval


def phase_ms(endpoint_id: int, interval_seconds: int) -> int:
    """The endpoint's fixed offset inside its interval, in milliseconds."""
    return (endpoint_id * PHASE_MULTIPLIER) % (interval_seconds * 1000)


def next_slot(endpoint_id: int, interval_seconds: int, scheduled: datetime, now: datetime) -> datetime:
    """The endpoint's first slot (phase + k × interval) at least one interval after `scheduled`
    and after `now`: drift-free on its grid, never checked twice within an interval, and a
    dispatcher that fell behind skips the missed slots rather than bunching them."""
    iv = interval_seconds * 1000
    ph = phase_ms(endpoint_id, interval_seconds)
    base = max(int(scheduled.timestamp() * 1000) + iv, int(now.timestamp() * 1000) + 1)
    slot = ph + (base - ph + iv - 1) // iv * iv
    return datetime.fromtimestamp(slot / 1000, tz=UTC)


_CLAIM_SQL = """
    WITH due AS (
        SELECT id, next_check_at FROM {table}
        WHERE enabled AND next_check_at <= %(now)s ORDER BY next_check_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED
    ), slot AS (
        SELECT due.id, due.next_check_at AS scheduled, e.interval_seconds::bigint * 1000 AS iv,
               mod(e.id::numeric * {mult}, e.interval_seconds::bigint * 1000)::bigint AS ph,
               greatest(floor(extract(epoch FROM due.next_check_at) * 1000)::bigint + e.interval_seconds::bigint * 1000,
                        floor(extract(epoch FROM %(now)s::timestamptz) * 1000)::bigint + 1) AS base
        FROM due JOIN {table} e ON e.id = due.id
    )
    UPDATE {table} e SET next_check_at = CASE
            WHEN e.kind = %(heartbeat)s THEN %(now)s + make_interval(secs => e.interval_seconds)
            ELSE to_timestamp((slot.ph + (slot.base - slot.ph + slot.iv - 1) / slot.iv * slot.iv) / 1000.0) END
    FROM slot WHERE e.id = slot.id
    RETURNING e.id, e.kind, slot.scheduled
"""


def checks_claim_due(*, limit: int | None = None, now: datetime | None = None) -> list[tuple[int, str, datetime]]:
    """Claim every enabled endpoint whose `next_check_at` is due, moving it to its next slot in
    the same statement (so two racing dispatchers never claim the same slot, and a lost batch
    only skips one check). Returns (id, kind, scheduled_at) for each claimed endpoint."""
    now = now or timezone.now()
    limit = limit or settings.MONITORING_MAX_DUE_PER_TICK
    table = Endpoint._meta.db_table
    if connection.vendor == "postgresql":
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_CLAIM_SQL.format(table=table, mult=PHASE_MULTIPLIER),
                           {"now": now, "limit": limit, "heartbeat": EndpointKind.HEARTBEAT})
            return [(r[0], r[1], r[2]) for r in cursor.fetchall()]
    with transaction.atomic():  # SQLite: one writer at a time, a plain read-then-update is safe
        rows = list(Endpoint.objects.filter(enabled=True, next_check_at__lte=now).order_by("next_check_at")[:limit])
        for e in rows:
            scheduled = e.next_check_at
            if e.kind == EndpointKind.HEARTBEAT:
                e.next_check_at = now + timedelta(seconds=e.interval_seconds)
            else:
                e.next_check_at = next_slot(e.pk, e.interval_seconds, scheduled, now)
            Endpoint.objects.filter(pk=e.pk).update(next_check_at=e.next_check_at)
        return [(e.pk, e.kind, scheduled) for e in rows]


def spec_for(e: Endpoint, scheduled_at=None) -> CheckSpec:
    return CheckSpec(
        endpoint_id=e.pk, kind=e.kind, host=e.host, port=e.port, path=e.path or "/", method=e.method,
        verify_tls=e.verify_tls, timeout=e.timeout_seconds, expected_status=e.expected_status,
        match_kind=e.match_kind, match_keyword=e.match_keyword, match_json_path=e.match_json_path,
        match_json_value=e.match_json_value, scheduled_at=scheduled_at,
    )


def checks_run_batch(*, endpoint_ids: list[int], scheduled: dict[int, datetime] | None = None) -> list[CheckResult]:
    """Check a batch of endpoints on this process's engine and record the results in bulk as
    they finish (every FLUSH_SECONDS), so a hanging endpoint holds back only its own result.
    A slot already recorded (a redelivered batch) is not checked again. Heartbeat endpoints in
    the batch were claimed because their deadline passed: they are late."""
    scheduled = scheduled or {}
    endpoints = {}
    for e in Endpoint.objects.filter(pk__in=endpoint_ids, enabled=True):
        slot = scheduled.get(e.pk)
        if slot is None or e.last_scheduled_at is None or e.last_scheduled_at < slot:
            endpoints[e.pk] = e
    now = datetime.now(UTC)
    late = [
        Outcome(endpoint_id=e.pk, ok=False, checked_at=now, scheduled_at=scheduled.get(e.pk),
                error=f"no ping since {e.last_ping_at:%Y-%m-%d %H:%M:%S} UTC (period {e.interval_seconds}s + grace {e.grace_seconds}s)")
        for e in endpoints.values() if e.kind == EndpointKind.HEARTBEAT and e.last_ping_at
    ]
    results = results_record(outcomes=late, endpoints=endpoints)
    specs = [spec_for(e, scheduled.get(e.pk)) for e in endpoints.values() if e.kind != EndpointKind.HEARTBEAT]
    if not specs:
        return results
    sink: queue.Queue = queue.Queue()
    engine(concurrency=settings.MONITORING_CONCURRENCY, body_limit=settings.MONITORING_BODY_LIMIT_BYTES,
           user_agent=settings.MONITORING_USER_AGENT).submit(specs, sink)
    # every check ends within its timeout (+ a certificate read of ≤ 5 s); the guard is for a dead engine
    give_up = time.monotonic() + max(s.timeout for s in specs) + 30
    pending, done = len(specs), []
    while pending:
        try:
            done.append(sink.get(timeout=max(0.0, give_up - time.monotonic())))
        except queue.Empty:
            log.error("monitoring: %d checks of a batch never finished; their slots are skipped", pending)
            break
        pending -= 1
        flush_at = time.monotonic() + FLUSH_SECONDS
        while pending and time.monotonic() < flush_at:  # gather what finishes meanwhile
            try:
                done.append(sink.get(timeout=max(0.0, flush_at - time.monotonic())))
                pending -= 1
            except queue.Empty:
                break
        results += results_record(outcomes=done, endpoints=endpoints)
        done = []
    return results


# -- results and status -----------------------------------------------------------------------
def _next_state(e: Endpoint, outcome: Outcome, now: datetime) -> tuple[str, str, str]:
    """(result status, endpoint status, reason) for one outcome, updating counters on `e`."""
    if not outcome.ok:
        e.consecutive_failures += 1
        e.consecutive_slow = 0
        threshold = 1 if e.kind == EndpointKind.HEARTBEAT else e.failure_threshold
        status = EndpointStatus.DOWN if e.consecutive_failures >= threshold else e.status
        return ResultStatus.DOWN, status, outcome.error
    e.consecutive_failures = 0
    warn = ""
    if outcome.tls_expires_at and e.tls_expiry_warning_days:
        left = outcome.tls_expires_at - now
        if left < timedelta(days=e.tls_expiry_warning_days):
            warn = f"TLS certificate expires in {max(0, left.days)} days ({outcome.tls_expires_at:%Y-%m-%d})"
    # a heartbeat's latency is the job's duration, not a response-time budget
    if e.kind != EndpointKind.HEARTBEAT and outcome.latency_ms is not None and outcome.latency_ms > e.expected_response_ms:
        e.consecutive_slow += 1
        reason = f"response took {outcome.latency_ms:.0f} ms (expected ≤ {e.expected_response_ms} ms)"
        if e.consecutive_slow >= e.degraded_threshold:
            return ResultStatus.SLOW, EndpointStatus.DEGRADED, reason
        keep = e.status if e.status in (EndpointStatus.UP, EndpointStatus.DEGRADED) else EndpointStatus.UP
        return ResultStatus.SLOW, (EndpointStatus.DEGRADED if warn else keep), warn or reason
    e.consecutive_slow = 0
    if warn:
        return ResultStatus.WARNING, EndpointStatus.DEGRADED, warn
    return ResultStatus.UP, EndpointStatus.UP, ""


def _apply(e: Endpoint, outcome: Outcome, now: datetime, windows) -> CheckResult:
    result_status, status, reason = _next_state(e, outcome, now)
    e.in_maintenance = bool(windows) and bool(active_windows(tenant_id=e.tenant_id, obj=e, at=now, windows=windows))
    if status != e.status:
        e.status, e.status_since = status, now
    e.status_reason = reason[:500]
    e.last_checked_at = outcome.checked_at
    e.last_latency_ms = outcome.latency_ms
    e.last_status_code = outcome.status_code
    e.last_error = outcome.error[:500]
    if outcome.tls_expires_at:
        e.tls_expires_at = outcome.tls_expires_at
    if outcome.scheduled_at and (e.last_scheduled_at is None or outcome.scheduled_at > e.last_scheduled_at):
        e.last_scheduled_at = outcome.scheduled_at
    return CheckResult(
        endpoint_id=e.pk, checked_at=outcome.checked_at, scheduled_at=outcome.scheduled_at, status=result_status,
        latency_ms=outcome.latency_ms, status_code=outcome.status_code, error=outcome.error[:500],
        in_maintenance=e.in_maintenance,
    )


def results_record(*, outcomes: list[Outcome], endpoints: dict[int, Endpoint] | None = None) -> list[CheckResult]:
    """Write check results (one INSERT), endpoint states (one UPDATE) and the status transitions
    (one INSERT of events, only for endpoints whose announced status changes).

    During an active maintenance window for an endpoint its results are marked
    `in_maintenance` and down/degraded are not published (recovery is); once the window ends,
    the next failing check publishes, because `notified_status` still says what was announced.
    """
    if not outcomes:
        return []
    if endpoints is None:
        endpoints = {e.pk: e for e in Endpoint.objects.filter(pk__in=[o.endpoint_id for o in outcomes])}
    now = timezone.now()
    windows = candidate_windows(tenant_ids={e.tenant_id for e in endpoints.values()}, at=now)
    results, changed, events = [], [], []
    for outcome in outcomes:
        e = endpoints.get(outcome.endpoint_id)
        if e is None:
            continue
        results.append(_apply(e, outcome, now, windows))
        announced = announce(e)
        if announced:
            events.append(announced)
        changed.append(e)
    with transaction.atomic():
        CheckResult.objects.bulk_create(results, batch_size=1000)
        write_states(changed)
        if events:
            write_events(events)
    return results


def write_states(endpoints: list[Endpoint]) -> None:
    """Every endpoint's STATE_FIELDS in one UPDATE … FROM unnest(arrays) (Django's bulk_update
    builds a CASE per field and row: 85 % of a 1,000-check batch's time)."""
    if not endpoints:
        return
    if connection.vendor != "postgresql":
        Endpoint.objects.bulk_update(endpoints, STATE_FIELDS, batch_size=500)
        return
    columns = ", ".join(f"{f} = v.{f}" for f in STATE_FIELDS)
    arrays = ", ".join(f"%s::{t}[]" for t in ["bigint", *STATE_TYPES])
    sql = (f"UPDATE {Endpoint._meta.db_table} e SET {columns} FROM unnest({arrays}) AS v(id, {', '.join(STATE_FIELDS)}) "
           "WHERE e.id = v.id")
    params = [[e.pk for e in endpoints]] + [[getattr(e, f) for e in endpoints] for f in STATE_FIELDS]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def announce(e: Endpoint) -> tuple | None:
    """The event row for the endpoint's status if it differs from what was last announced (and
    `notified_status` moved), else None."""
    if e.status == e.notified_status or e.status == EndpointStatus.UNKNOWN:
        return None
    if e.status in (EndpointStatus.DOWN, EndpointStatus.DEGRADED) and e.in_maintenance:
        return None  # silenced by a maintenance window; published when the window ends if still failing
    if e.status == EndpointStatus.UP and e.notified_status == EndpointStatus.UNKNOWN:
        e.notified_status = EndpointStatus.UP  # first success: nothing to recover from
        return None
    event = event_row(e, e.status, previous=e.notified_status, reason=e.status_reason)
    e.notified_status = e.status
    return event


EVENT_BY_STATUS = {EndpointStatus.DOWN: "endpoint.down", EndpointStatus.DEGRADED: "endpoint.degraded", EndpointStatus.UP: "endpoint.up"}


def event_row(e: Endpoint, status: str, *, previous: str, reason: str) -> tuple[str, int, dict, None]:
    """(name, tenant_id, payload, actor) of an endpoint's status event (apps.core.events.write_events)."""
    verb = {EndpointStatus.DOWN: "is down", EndpointStatus.DEGRADED: "is degraded", EndpointStatus.UP: "recovered"}[status]
    title = f"{e.name} {verb}" + (f": {reason}" if reason and status != EndpointStatus.UP else "")
    url = f"/admin/monitoring/endpoint/{e.pk}/change/"
    priority = {EndpointStatus.DOWN: "high", EndpointStatus.DEGRADED: "medium", EndpointStatus.UP: "low"}[status]
    payload = {
        "id": e.pk, "object_type": "monitoring.endpoint", "title": title[:300], "url": url,
        "name": e.name, "kind": e.kind, "target": e.url, "status": status, "previous_status": previous,
        "reason": reason, "since": e.status_since.isoformat() if e.status_since else None,
        "latency_ms": e.last_latency_ms, "status_code": e.last_status_code, "labels": e.labels,
        "linked_type": e.linked_type, "linked_id": e.linked_id,
        "severity": {EndpointStatus.DOWN: "critical", EndpointStatus.DEGRADED: "warning", EndpointStatus.UP: "info"}[status],
        "fingerprint": f"monitoring.endpoint:{e.pk}",
        "notify": {
            "type": EVENT_BY_STATUS[status].replace(".", "_"), "priority": priority, "title": title[:300],
            "message": reason, "roles": ["owner", "admin", "operator"], "action_url": url, "action_label": "Open endpoint",
        },
    }
    return EVENT_BY_STATUS[status], e.tenant_id, payload, None
