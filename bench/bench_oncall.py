"""On-call schedules (docs/oncall.md): "who is on call" for 1,000 schedules × 3 layers at one
instant (target ≤ 50 ms total, the service `selectors.oncall_now` with its 4 queries included,
and the arithmetic alone), and the 14-day final schedule of one schedule (target ≤ 20 ms, with
its queries). Layers mix daily, weekly and 8-hour rotations in three time zones, one in three
restricted to weekdays 09:00–17:00; a fifth of the schedules have overrides. No peer: Grafana
OnCall (archived) computes this from iCalendar text per request. Rows are deleted at the end.
"""

from __future__ import annotations

import os
import statistics
import time
from datetime import UTC, date, datetime, timedelta

from common import line, percentile, setup_django

SCHEDULES = int(os.environ.get("BENCH_ONCALL_SCHEDULES", "1000"))
ROUNDS = int(os.environ.get("BENCH_ONCALL_ROUNDS", "30"))
SLUG = "bench-oncall"


def seed():
    from django.contrib.auth import get_user_model

    from apps.core.choices import OrgKind, Role
    from apps.oncall.models import Layer, Override, Schedule
    from apps.tenants.models import Membership, Organization

    tenant = Organization.objects.create(kind=OrgKind.TENANT, slug=SLUG, name="Bench on-call")
    users = [get_user_model().objects.create(username=f"{SLUG}-{i}") for i in range(12)]
    Membership.objects.bulk_create([Membership(user=u, organization=tenant, role=Role.OPERATOR) for u in users])
    zones = ["Europe/Berlin", "America/New_York", "Asia/Tokyo"]
    schedules = Schedule.objects.bulk_create(
        [Schedule(tenant=tenant, name=f"s{i}", timezone=zones[i % 3]) for i in range(SCHEDULES)]
    )
    layers, overrides = [], []
    weekdays = [{"weekdays": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}]
    now = datetime.now(UTC)
    for i, s in enumerate(schedules):
        for level, (freq, hours) in enumerate((("weekly", None), ("daily", None), ("custom", 8)), start=1):
            members = [users[(i + level + k) % len(users)].pk for k in range(3)]
            layers.append(
                Layer(
                    tenant=tenant,
                    schedule=s,
                    name=f"L{level}",
                    level=level,
                    frequency=freq,
                    shift_hours=hours,
                    start_date=date(2026, 1, 5),
                    handoff_time="09:00",
                    timezone=zones[(i + level) % 3],
                    member_ids=members,
                    restrictions=weekdays if (i + level) % 3 == 0 else [],
                )
            )
        if i % 5 == 0:
            overrides.append(
                Override(
                    tenant=tenant,
                    schedule=s,
                    user=users[i % len(users)],
                    starts_at=now - timedelta(hours=1),
                    ends_at=now + timedelta(hours=3),
                )
            )
    Layer.objects.bulk_create(layers, batch_size=2000)
    Override.objects.bulk_create(overrides)
    return tenant, [s.pk for s in schedules]


def cleanup():
    from django.contrib.auth import get_user_model

    from apps.oncall.models import Schedule
    from apps.tenants.models import Membership, Organization

    for tenant in Organization.objects.filter(slug=SLUG):
        Schedule.objects.filter(tenant=tenant).delete()
        Membership.objects.filter(organization=tenant).delete()
        tenant.delete()
    get_user_model().objects.filter(username__startswith=f"{SLUG}-").delete()


def main():
    setup_django()
    from apps.oncall import engine, selectors

    cleanup()
    _, ids = seed()
    try:
        at = datetime.now(UTC)
        selectors.oncall_now(ids, at=at)  # warm-up
        full = []
        for _ in range(ROUNDS):
            start = time.perf_counter()
            answers = selectors.oncall_now(ids, at=at)
            full.append((time.perf_counter() - start) * 1000)
        assert len(answers) == len(ids) and sum(a.user_id is not None for a in answers.values()) > 0
        loaded = selectors.load(ids, at, at + timedelta(microseconds=1))
        pure = []
        for _ in range(ROUNDS):
            start = time.perf_counter()
            for layers, overrides in loaded.values():
                engine.oncall_at(layers, overrides, at)
            pure.append((time.perf_counter() - start) * 1000)
        final = []
        for i in range(ROUNDS * 3):
            start = time.perf_counter()
            pieces = selectors.final_schedule(ids[i % len(ids)], start=at, days=14)
            final.append((time.perf_counter() - start) * 1000)
        line(
            "oncall",
            schedules=len(ids),
            layers=len(ids) * 3,
            who_now_1000_p50_ms=statistics.median(full),
            who_now_1000_p95_ms=percentile(full, 95),
            who_now_compute_only_p50_ms=statistics.median(pure),
            who_now_target_ms=50,
            final_14d_p50_ms=statistics.median(final),
            final_14d_p95_ms=percentile(final, 95),
            final_14d_target_ms=20,
            final_slices=len(pieces),
        )
    finally:
        cleanup()


if __name__ == "__main__":
    main()
