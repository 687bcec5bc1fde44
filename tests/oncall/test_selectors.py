"""The loader behind "who is on call": the PostgreSQL fast path and the portable ORM path give
the same answers, and the compiled-layer cache notices every change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from apps.oncall import selectors, services
from tests.oncall import factories as f

pytestmark = pytest.mark.django_db


def test_fast_and_portable_paths_agree_and_cache_sees_changes(world, monkeypatch):
    scheds = [f.schedule(world, "a", name=f"s{i}") for i in range(3)]
    for i, s in enumerate(scheds):
        f.layer(world, "a", s, frequency="daily" if i else "weekly")
    services.override_create(
        actor=world.user("a", "owner"),
        schedule=scheds[0],
        user=world.user("a", "viewer"),
        starts_at=datetime(2026, 2, 3, tzinfo=UTC),
        ends_at=datetime(2026, 2, 4, tzinfo=UTC),
    )
    at = datetime(2026, 2, 3, 12, tzinfo=UTC)
    ids = [s.pk for s in scheds]
    fast = selectors.oncall_now(ids, at=at)
    monkeypatch.setattr(selectors, "USE_PG_FAST_PATH", False)
    selectors._CACHE.clear()
    assert selectors.oncall_now(ids, at=at) == fast
    assert fast[scheds[0].pk].source == "override" and fast[scheds[0].pk].next_user_id is not None
    # a change of a layer reaches the next answer (the cached compile is stale)
    layer = scheds[1].layers.get()
    services.layer_update(layer, actor=world.user("a", "owner"), member_ids=[world.user("a", "support_agent").pk])
    assert selectors.oncall_now(ids, at=at)[scheds[1].pk].user_id == world.user("a", "support_agent").pk
    monkeypatch.setattr(selectors, "USE_PG_FAST_PATH", True)
    services.layer_delete(layer, actor=world.user("a", "owner"))
    assert selectors.oncall_now(ids, at=at + timedelta(minutes=1))[scheds[1].pk].source == "gap"
