"""Reads: trends per endpoint, the health summary, the operations status."""

from __future__ import annotations

from datetime import timedelta

from django.db import connection
from django.db.models import Count, Q
from django.utils import timezone

from .choices import EndpointStatus, ResultStatus
from .models import CheckResult, Endpoint

WINDOWS = {"1h": (timedelta(hours=1), "minute", 5), "24h": (timedelta(hours=24), "hour", 1), "7d": (timedelta(days=7), "day", 1)}
BAD = [ResultStatus.DOWN]


def endpoint_trends(endpoint: Endpoint, *, window: str = "24h") -> dict:
    """Availability %, p50/p95 latency and failures over the window, plus per-bucket figures."""
    if window not in WINDOWS:
        from django.core.exceptions import ValidationError

        raise ValidationError({"window": f"Use one of {', '.join(WINDOWS)}."})
    span, unit, step = WINDOWS[window]
    since = timezone.now() - span
    rows = CheckResult.objects.filter(endpoint=endpoint, checked_at__gte=since).exclude(status=ResultStatus.STARTED)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"""SELECT date_bin(%s::interval, checked_at, %s) AS bucket, count(*),
                           count(*) FILTER (WHERE status = %s AND NOT in_maintenance),
                           percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms),
                           percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms)
                    FROM {CheckResult._meta.db_table}
                    WHERE endpoint_id = %s AND checked_at >= %s AND status <> %s
                    GROUP BY ROLLUP (bucket) ORDER BY bucket NULLS FIRST""",
                [f"{step} {unit}", since, ResultStatus.DOWN, endpoint.pk, since, ResultStatus.STARTED],
            )
            fetched = cursor.fetchall()
        total_row = fetched[0] if fetched and fetched[0][0] is None else (None, 0, 0, None, None)
        buckets = [r for r in fetched if r[0] is not None]
    else:  # SQLite: compute in Python
        values = list(rows.values_list("checked_at", "status", "latency_ms", "in_maintenance"))
        lat = sorted(v[2] for v in values if v[2] is not None)

        def pct(p, data):
            return data[min(len(data) - 1, int(round(p * (len(data) - 1))))] if data else None

        failures = sum(1 for v in values if v[1] == ResultStatus.DOWN and not v[3])
        total_row = (None, len(values), failures, pct(0.5, lat), pct(0.95, lat))
        buckets = []
    total, failures = total_row[1] or 0, total_row[2] or 0

    def fmt(x):
        return None if x is None else round(float(x), 2)

    return {
        "endpoint": endpoint.pk,
        "window": window,
        "since": since.isoformat(),
        "checks": total,
        "failures": failures,
        "availability_percent": round(100.0 * (total - failures) / total, 3) if total else None,
        "latency_p50_ms": fmt(total_row[3]),
        "latency_p95_ms": fmt(total_row[4]),
        "buckets": [
            {"start": b[0].isoformat(), "checks": b[1], "failures": b[2], "latency_p50_ms": fmt(b[3]), "latency_p95_ms": fmt(b[4])}
            for b in buckets
        ],
    }


def health_summary(endpoints) -> dict:
    """Overall status, counts by status and the worst endpoints of a (scoped) queryset."""
    counts = dict(endpoints.filter(enabled=True).values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    by_status = {s: counts.get(s, 0) for s in EndpointStatus.values}
    failing = endpoints.filter(enabled=True, in_maintenance=False)
    if failing.filter(status=EndpointStatus.DOWN).exists():
        overall = EndpointStatus.DOWN
    elif failing.filter(status=EndpointStatus.DEGRADED).exists():
        overall = EndpointStatus.DEGRADED
    elif by_status[EndpointStatus.UP]:
        overall = EndpointStatus.UP
    else:
        overall = EndpointStatus.UNKNOWN
    order = {EndpointStatus.DOWN: 0, EndpointStatus.DEGRADED: 1}
    worst = sorted(
        endpoints.filter(enabled=True).filter(Q(status__in=[EndpointStatus.DOWN, EndpointStatus.DEGRADED]))
        .values("id", "name", "status", "status_since", "status_reason", "in_maintenance", "last_latency_ms")[:50],
        key=lambda r: (order.get(r["status"], 9), r["status_since"] or timezone.now()),
    )[:10]
    return {
        "status": overall,
        "endpoints": endpoints.count(),
        "paused": endpoints.filter(enabled=False).count(),
        "in_maintenance": endpoints.filter(in_maintenance=True).count(),
        "counts": by_status,
        "worst": worst,
    }


def recent_latencies(endpoint_id: int, n: int = 30) -> list[float | None]:
    rows = CheckResult.objects.filter(endpoint_id=endpoint_id).exclude(status=ResultStatus.STARTED).order_by("-checked_at")
    return list(reversed([r for r in rows.values_list("latency_ms", flat=True)[:n]]))


GOOD = [ResultStatus.UP, ResultStatus.SLOW, ResultStatus.WARNING]


def percentile_cont(values: list[float], fraction: float) -> float | None:
    """PostgreSQL's percentile_cont (linear interpolation), for the SQLite path and tests."""
    data = sorted(values)
    if not data:
        return None
    pos = fraction * (len(data) - 1)
    low = int(pos)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (pos - low)


def latency_p95_by_rule(rules, *, now) -> dict[int, tuple[int, float | None]]:
    """{rule id: (samples, p95 ms)} over each latency rule's window: the latencies of the
    endpoint's successful checks (up, slow, warning) outside maintenance windows. On
    PostgreSQL one query for every rule (each reads its endpoint's results by the
    (endpoint, checked_at) index)."""
    rules = list(rules)
    if not rules:
        return {}
    if connection.vendor == "postgresql":
        from .models import TrendRule

        with connection.cursor() as cursor:
            cursor.execute(
                f"""SELECT r.id, count(c.latency_ms), percentile_cont(0.95) WITHIN GROUP (ORDER BY c.latency_ms)
                    FROM {TrendRule._meta.db_table} r
                    LEFT JOIN {CheckResult._meta.db_table} c
                      ON c.endpoint_id = r.endpoint_id AND c.checked_at > %s - make_interval(mins => r.window_minutes)
                     AND c.checked_at <= %s AND c.latency_ms IS NOT NULL AND c.status = ANY(%s) AND NOT c.in_maintenance
                    WHERE r.id = ANY(%s) GROUP BY r.id""",
                [now, now, [str(s) for s in GOOD], [r.pk for r in rules]],
            )
            return {row[0]: (row[1], None if row[2] is None else float(row[2])) for row in cursor.fetchall()}
    out = {}
    for rule in rules:
        latencies = list(
            CheckResult.objects.filter(
                endpoint_id=rule.endpoint_id, checked_at__gt=now - timedelta(minutes=rule.window_minutes), checked_at__lte=now,
                latency_ms__isnull=False, status__in=GOOD, in_maintenance=False,
            ).values_list("latency_ms", flat=True)
        )
        out[rule.pk] = (len(latencies), percentile_cont(latencies, 0.95))
    return out
