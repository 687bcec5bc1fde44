"""The tenant timeline at millions of events: BENCH_TIMELINE_EVENTS (default 2,000,000) outbox
rows over 20 tenants and 30 days, inserted set-based (INSERT … SELECT generate_series, a mix of
alert/ticket/job/health/deployment/maintenance/config events and events no timeline kind shows),
ANALYZEd, then p50/p95 of `timeline_page` — the service the API and the admin page call — for:
the first page of every kind, one rare kind (config), two kinds, a one-day date window, the 20th
page followed by cursor, a non-admin operator (alerts assigned to others left out) and the API
(DRF, JWT-less force_authenticate). The reference is the previous query shape (name prefixes
over the tenant's events, ordered by time) on the same rows: `old_config_p95_ms` and the ratio.
No outside peer keeps a per-tenant event stream like this one. The rows are deleted at the end.
"""

from __future__ import annotations

import os
import random
import time

from common import line, percentile, setup_django

PREFIX = "bench-timeline"
EVENTS = int(os.environ.get("BENCH_TIMELINE_EVENTS", "2000000"))
TENANTS = 20
ROUNDS = int(os.environ.get("BENCH_TIMELINE_ROUNDS", "200"))
CHUNK = 250_000
# (first bucket of 100, topic, name): 30 % alerts, 25 % tickets, 15 % job runs, 10 % health, …
MIX = [(0, "alert", "alert.fired"), (30, "ticket", "ticket.created"), (55, "job_run", "job_run.succeeded"),
       (70, "endpoint", "endpoint.down"), (80, "deployment", "deployment.operation_started"),
       (83, "maintenance_window", "maintenance_window.created"), (84, "runbook", "runbook.finished"),
       (86, "config", "config.updated"), (87, "notification", "notification.sent"), (97, "customer", "customer.active")]


def _insert(cursor, tenant_ids: list[int], admin_id: int) -> float:
    case = " ".join(f"WHEN i %% 100 >= {start} THEN '{name}'" for start, _, name in reversed(MIX))
    start = time.perf_counter()
    for first in range(1, EVENTS + 1, CHUNK):
        last = min(EVENTS, first + CHUNK - 1)
        cursor.execute(
            f"""INSERT INTO core_event (id, name, tenant_id, payload, actor_id, status, attempts, handled, next_attempt_at, last_error, created_at)
                SELECT gen_random_uuid(), CASE {case} END, (%s::bigint[])[1 + (i / 7) %% {TENANTS}],
                       jsonb_build_object('id', i, 'title', 'bench event #' || i, 'object_type', 'bench.row',
                                          'assigned_to_id', CASE WHEN i %% 5 = 0 THEN 999999 END),
                       CASE WHEN i %% 100 = 86 THEN %s END, 'dispatched', 1, '[]'::jsonb, now(), '',
                       now() - make_interval(secs => (i::float8 * 30 * 86400 / %s))
                FROM generate_series(%s, %s) AS i""",
            [tenant_ids, admin_id, EVENTS, first, last],
        )
    cursor.execute("ANALYZE core_event")
    return time.perf_counter() - start


def _measure(fn) -> tuple[float, float]:
    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return percentile(times, 50) * 1000, percentile(times, 95) * 1000


def main() -> None:
    setup_django()
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.db.models import Q
    from django.utils import timezone
    from rest_framework.test import APIClient

    from apps.alerts.timeline import timeline_page
    from apps.core.choices import OrgKind, Role
    from apps.core.models import Event
    from apps.tenants.models import Membership, Organization

    User = get_user_model()
    tag = f"{PREFIX}-{os.getpid()}"
    platform = Organization.objects.create(kind=OrgKind.PLATFORM, slug=f"{tag}-platform", name="bench platform")
    tenants = [Organization.objects.create(kind=OrgKind.TENANT, slug=f"{tag}-{i}", name=f"bench tenant {i}") for i in range(TENANTS)]
    admin = User.objects.create(username=f"{tag}-admin", is_staff=True)
    operator = User.objects.create(username=f"{tag}-operator", is_staff=True)
    Membership.objects.create(user=admin, organization=platform, role=Role.ADMIN)
    Membership.objects.create(user=operator, organization=tenants[0], role=Role.OPERATOR)
    ids = [t.pk for t in tenants]
    try:
        with connection.cursor() as cursor:
            insert_s = _insert(cursor, ids, admin.pk)
        slugs = [t.slug for t in tenants]
        now = timezone.now()
        day_after, day_before = (now - timedelta(days=10)).isoformat(), (now - timedelta(days=9)).isoformat()

        def page(**kw):
            return timeline_page(user=admin, tenant_slug=random.choice(slugs), **kw)

        first = _measure(lambda: page())
        config = _measure(lambda: page(kinds="config"))
        two = _measure(lambda: page(kinds="alert,endpoint"))
        window = _measure(lambda: page(kinds="alert,ticket", after=day_after, before=day_before))
        cursors = []
        result = timeline_page(user=admin, tenant_slug=slugs[0])
        for _ in range(19):
            result = timeline_page(user=admin, tenant_slug=slugs[0], cursor=result["next_cursor"])
            cursors.append(result["next_cursor"])
        deep = _measure(lambda: timeline_page(user=admin, tenant_slug=slugs[0], cursor=cursors[-1]))
        op = _measure(lambda: timeline_page(user=operator, tenant_slug=slugs[0], kinds="alert"))
        client = APIClient()
        client.force_authenticate(admin)

        def api():
            r = client.get(f"/api/v1/tenants/{random.choice(slugs)}/timeline", {"limit": 50})
            assert r.status_code == 200, r.content

        api_fig = _measure(api)

        def old_shape():  # the previous implementation's query: name prefixes, no topic
            qs = Event.objects.filter(Q(name__startswith="config."), tenant_id=random.choice(ids)).exclude(name="alert.daily_summary")
            list(qs.order_by("-created_at", "-pk").only("id", "name", "created_at", "payload")[:51])

        old = _measure(old_shape)
        line("timeline", events=EVENTS, tenants=TENANTS, insert_s=insert_s, rounds=ROUNDS,
             first_page_p50_ms=first[0], first_page_p95_ms=first[1], config_p95_ms=config[1], two_kinds_p95_ms=two[1],
             day_window_p95_ms=window[1], page20_p95_ms=deep[1], operator_alerts_p95_ms=op[1], api_p50_ms=api_fig[0],
             api_p95_ms=api_fig[1], old_config_p95_ms=old[1], old_vs_new_config=old[1] / config[1] if config[1] else float("nan"))
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM core_event WHERE tenant_id = ANY(%s)", [ids])
        Membership.objects.filter(user__in=[admin, operator]).delete()
        User.objects.filter(pk__in=[admin.pk, operator.pk]).delete()
        Organization.objects.filter(pk__in=[*ids, platform.pk]).delete()


if __name__ == "__main__":
    main()
