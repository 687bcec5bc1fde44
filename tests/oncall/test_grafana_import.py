"""`manage.py import_grafana_oncall`: schedules, rotations, single events, overrides and
escalation chains from a Grafana OnCall API export (tests/oncall/fixtures, shaped like its
public API lists), with what cannot be mapped reported."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command

from apps.alerts.models import EscalationPolicy
from apps.oncall import selectors
from apps.oncall.models import Layer, Override, Schedule

FIXTURE = Path(__file__).parent / "fixtures" / "grafana_oncall_export.json"
pytestmark = pytest.mark.django_db


def test_import_maps_rotations_restrictions_overrides_and_chains(world, tmp_path):
    out = io.StringIO()
    call_command("import_grafana_oncall", str(FIXTURE), "--tenant", "tenant-a", stdout=out)
    text = out.getvalue()
    assert "imported 3 schedule(s) and 1 escalation polic(ies)" in text
    alice, admin = world.user("a", "operator").pk, world.user("a", "admin").pk
    primary = Schedule.objects.get(tenant=world.tenant("a"), name="Primary on-call")
    weekly, nights = primary.layers.order_by("level")
    assert (weekly.frequency, weekly.member_ids, str(weekly.handoff_time)) == ("weekly", [alice, admin], "09:00:00")
    # 8 h nights inside a daily rotation: a 22:00–06:00 window; index 1 starts with the second group
    assert nights.restrictions == [
        {"weekdays": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "22:00", "end": "06:00"}
    ]
    assert nights.member_ids == [alice, admin]
    berlin = ZoneInfo("Europe/Berlin")
    night = selectors.oncall_now([primary.pk], at=datetime(2026, 1, 6, 23, tzinfo=berlin))[primary.pk]
    day = selectors.oncall_now([primary.pk], at=datetime(2026, 1, 6, 12, tzinfo=berlin))[primary.pk]
    assert (night.layer_id, day.layer_id, day.user_id) == (nights.pk, weekly.pk, alice)
    business = Schedule.objects.get(name="Business hours")
    layer = business.layers.get(kind="rotation")
    assert layer.timezone == "America/New_York" and layer.restrictions[0]["weekdays"] == ["mon", "tue", "wed", "thu", "fri"]
    assert (layer.restrictions[0]["start"], layer.restrictions[0]["end"]) == ("09:00", "17:00")
    assert business.layers.get(kind="calendar").shifts.get().user_id == admin
    cover = Override.objects.get(schedule=business)
    assert cover.starts_at == datetime(2026, 6, 3, tzinfo=UTC) and cover.user_id == admin
    policy = EscalationPolicy.objects.get(tenant=world.tenant("a"), name="Default")
    assert policy.steps == [{"wait_minutes": 0, "oncall_schedule_ids": [primary.pk]}, {"wait_minutes": 5, "user_ids": [admin]}]
    assert policy.repeat == 5
    for expected in (
        "frequency 'monthly' is not supported",
        "'U7XXXXXXXXXX7'",
        "step type 'resolve'",
        "'Nobody here'",
        "an iCal schedule",
    ):
        assert expected in text, expected
    # running again duplicates nothing
    call_command("import_grafana_oncall", str(FIXTURE), "--tenant", "tenant-a", stdout=io.StringIO())
    assert Schedule.objects.filter(tenant=world.tenant("a")).count() == 3 and Layer.objects.filter(schedule=primary).count() == 2


def test_bad_exports_are_refused_with_a_message(world, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"schedules": "nope"}))
    with pytest.raises(CommandError, match="Expected a list"):
        call_command("import_grafana_oncall", str(bad), "--tenant", "tenant-a")
    bad.write_text("{not json")
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("import_grafana_oncall", str(bad), "--tenant", "tenant-a")
    with pytest.raises(CommandError, match="No tenant"):
        call_command("import_grafana_oncall", str(FIXTURE), "--tenant", "nope")
    out = io.StringIO()
    call_command("import_grafana_oncall", str(FIXTURE), "--tenant", "tenant-a", "--dry-run", stdout=out)
    assert "would import 3" in out.getvalue() and not Schedule.objects.exists()
