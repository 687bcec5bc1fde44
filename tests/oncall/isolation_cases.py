from apps.oncall.models import FeedToken, Layer, Override, Schedule
from tests.isolation import IsolationCase
from tests.oncall import factories as f

CASES = [
    IsolationCase(
        name="oncall.schedule",
        make=lambda w, key: f.schedule(w, key),
        api_list="oncall-schedule-list",
        api_detail="oncall-schedule-detail",
        admin_model=Schedule,
        create_payload=lambda w, foreign: {"tenant": foreign.tenant_id, "name": "sneaky", "timezone": "UTC"},
        patch_payload={"name": "hijacked"},
    ),
    IsolationCase(
        name="oncall.layer",
        make=lambda w, key: f.layer(w, key),
        api_list="oncall-layer-list",
        api_detail="oncall-layer-detail",
        admin_model=Layer,
        # a layer on tenant B's schedule, with B's people
        create_payload=lambda w, foreign: {
            "schedule": foreign.schedule_id,
            "name": "sneaky",
            "level": 5,
            "frequency": "daily",
            "start_date": "2026-01-01",
            "member_ids": foreign.member_ids,
        },
        patch_payload={"name": "hijacked", "member_ids": [1]},
    ),
    IsolationCase(
        name="oncall.override",
        make=lambda w, key: f.override(w, key),
        api_list="oncall-override-list",
        api_detail="oncall-override-detail",
        admin_model=Override,
        create_payload=lambda w, foreign: {
            "schedule": foreign.schedule_id,
            "user": foreign.user_id,
            "starts_at": "2026-03-01T00:00:00Z",
            "ends_at": "2026-03-02T00:00:00Z",
        },
        patch_payload={"reason": "hijacked"},
    ),
    IsolationCase(
        name="oncall.feed",
        make=lambda w, key: f.feed(w, key),
        api_list="oncall-feed-list",
        api_detail="oncall-feed-detail",
        admin_model=FeedToken,
        create_payload=lambda w, foreign: {"schedule": foreign.schedule_id},
        patch_payload={"name": "hijacked"},
    ),
]
