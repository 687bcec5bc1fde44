"""Rows of the on-call app for tests: a schedule with a weekly rotation of the tenant's staff."""

from __future__ import annotations

from datetime import date
from itertools import count

from apps.oncall.models import FeedToken, Layer, Override, Schedule

_seq = count(1)


def schedule(world, key: str, name: str | None = None, **extra) -> Schedule:
    # names are unique per tenant, and the admin crawl makes every case's row in one world
    return Schedule.objects.create(tenant=world.tenant(key), name=name or f"Primary {key} {next(_seq)}", timezone="Europe/Berlin", **extra)


def layer(world, key: str, sched: Schedule | None = None, **extra) -> Layer:
    sched = sched or schedule(world, key)
    values = {
        "name": "Weekly",
        "level": 1,
        "frequency": "weekly",
        "start_date": date(2026, 1, 5),
        "handoff_time": "09:00",
        "member_ids": [world.user(key, "operator").pk, world.user(key, "admin").pk],
    }
    values.update(extra)
    return Layer.objects.create(tenant=sched.tenant, schedule=sched, **values)


def override(world, key: str, **extra) -> Override:
    from datetime import UTC, datetime

    sched = schedule(world, key, name=f"Overridden {key} {next(_seq)}")
    values = {
        "user": world.user(key, "viewer"),
        "starts_at": datetime(2026, 2, 1, tzinfo=UTC),
        "ends_at": datetime(2026, 2, 2, tzinfo=UTC),
    }
    values.update(extra)
    return Override.objects.create(tenant=sched.tenant, schedule=sched, **values)


def feed(world, key: str) -> FeedToken:
    from apps.oncall.services import feed_create

    return feed_create(actor=world.user(key, "owner"), schedule=schedule(world, key, name=f"Fed {key}"))[0]
