"""The on-call arithmetic without a database: rotations, restrictions, layers, overrides, DST."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apps.oncall import engine
from apps.oncall.models import parse_restrictions

BERLIN = ZoneInfo("Europe/Berlin")


def rotation(members, *, level=1, days=1, epoch=datetime(2026, 3, 1, 9, 0), tz=BERLIN, restrictions=(), id=1):
    return engine.LayerSpec(
        id=id,
        level=level,
        tz=tz,
        epoch=epoch,
        length=timedelta(days=days),
        members=tuple(members),
        restrictions=tuple(restrictions),
    )


def test_daily_handoff_stays_at_local_nine_across_dst_change():
    # Europe/Berlin springs forward on 2026-03-29 (02:00 → 03:00) and falls back on 2026-10-25.
    layer = rotation([1, 2])
    spring = engine.layer_intervals(layer, datetime(2026, 3, 27, tzinfo=UTC), datetime(2026, 3, 31, tzinfo=UTC))
    starts = [s.astimezone(BERLIN).strftime("%m-%d %H:%M") for s, _, _ in spring[1:]]
    assert starts == ["03-27 09:00", "03-28 09:00", "03-29 09:00", "03-30 09:00"]
    # the shift that spans the change is 23 hours long, the others 24
    lengths = [(e - s) / timedelta(hours=1) for s, e, _ in spring[1:-1]]
    assert lengths == [24, 23, 24]
    autumn = engine.layer_intervals(layer, datetime(2026, 10, 24, tzinfo=UTC), datetime(2026, 10, 27, tzinfo=UTC))
    assert [s.astimezone(BERLIN).hour for s, _, _ in autumn[1:]] == [9, 9, 9]
    assert (autumn[1][1] - autumn[1][0]) == timedelta(hours=25)
    # the instant service agrees with the timeline on both sides of the change
    for s, e, user in spring + autumn:
        assert engine.layer_user_at(layer, s) == user
        assert engine.layer_user_at(layer, e - timedelta(seconds=1)) == user


def test_weekly_rotation_takes_turns():
    layer = rotation([7, 8, 9], days=7, tz=ZoneInfo("UTC"), epoch=datetime(2026, 1, 5, 9))
    at = datetime(2026, 1, 5, 9, tzinfo=UTC)
    assert [engine.layer_user_at(layer, at + timedelta(weeks=w)) for w in range(4)] == [7, 8, 9, 7]
    assert engine.layer_user_at(layer, at - timedelta(seconds=1)) is None  # before the rotation starts


def test_restriction_weekdays_nine_to_five():
    windows = parse_restrictions([{"weekdays": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}])
    layer = rotation([1], days=7, epoch=datetime(2026, 1, 5, 0, 0), restrictions=windows)
    monday_noon = datetime(2026, 1, 5, 12, tzinfo=BERLIN)
    assert engine.layer_user_at(layer, monday_noon) == 1
    assert engine.layer_user_at(layer, monday_noon + timedelta(hours=6)) is None
    assert engine.layer_user_at(layer, datetime(2026, 1, 10, 12, tzinfo=BERLIN)) is None  # Saturday
    week = engine.layer_intervals(layer, datetime(2026, 1, 5, tzinfo=BERLIN), datetime(2026, 1, 12, tzinfo=BERLIN))
    assert len(week) == 5 and all((e - s) == timedelta(hours=8) for s, e, _ in week)


def test_overnight_restriction_crosses_midnight():
    windows = parse_restrictions([{"weekdays": ["fri"], "start": "22:00", "end": "06:00"}])
    layer = rotation([3], epoch=datetime(2026, 1, 1), restrictions=windows)
    assert engine.layer_user_at(layer, datetime(2026, 1, 9, 23, tzinfo=BERLIN)) == 3  # Friday night
    assert engine.layer_user_at(layer, datetime(2026, 1, 10, 5, tzinfo=BERLIN)) == 3  # Saturday early
    assert engine.layer_user_at(layer, datetime(2026, 1, 10, 7, tzinfo=BERLIN)) is None


def test_final_schedule_higher_layer_and_override_win_and_gaps_show():
    utc = ZoneInfo("UTC")
    base = rotation([1], tz=utc, epoch=datetime(2026, 1, 1), id=10)
    windows = parse_restrictions([{"weekdays": ["mon"], "start": "09:00", "end": "17:00"}])
    top = rotation([2], level=2, tz=utc, epoch=datetime(2026, 1, 1), restrictions=windows, id=20)
    start = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
    override = [(start + timedelta(hours=10), start + timedelta(hours=11), 3)]
    pieces = engine.final_schedule([base, top], override, start, start + timedelta(days=1))
    got = [(p.start.hour, p.end.hour, p.user_id, p.source) for p in pieces]
    assert got == [(0, 9, 1, "layer"), (9, 10, 2, "layer"), (10, 11, 3, "override"), (11, 17, 2, "layer"), (17, 0, 1, "layer")]
    answer = engine.oncall_at([base, top], override, start + timedelta(hours=10, minutes=30))
    assert (answer.user_id, answer.source, answer.next_user_id) == (3, "override", 2)
    answer = engine.oncall_at([base, top], [], start + timedelta(hours=12))
    assert (answer.user_id, answer.layer_id, answer.next_user_id) == (2, 20, 1)
    # only the restricted layer: nights are gaps
    holes = engine.gaps(engine.final_schedule([top], [], start, start + timedelta(days=1)))
    assert [(g.start.hour, g.end.hour) for g in holes] == [(0, 9), (17, 0)]


def test_instant_and_timeline_agree_everywhere():
    windows = parse_restrictions([{"weekdays": ["mon", "wed", "sat"], "start": "08:30", "end": "20:15"}])
    layers = [
        rotation([1, 2, 3], days=1, id=1),
        rotation([4, 5], level=2, days=7, restrictions=windows, id=2),
        engine.LayerSpec(id=3, level=3, tz=BERLIN, epoch=datetime(2026, 3, 20, 7), length=timedelta(hours=5), members=(6, 7)),
    ]
    start = datetime(2026, 3, 25, tzinfo=UTC)
    pieces = engine.final_schedule(layers, [], start, start + timedelta(days=14))
    t = start
    while t < start + timedelta(days=14):
        expected = next(p.user_id for p in pieces if p.start <= t < p.end)
        assert engine.oncall_at(layers, [], t).user_id == expected, t
        t += timedelta(minutes=37)
