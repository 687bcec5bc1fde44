"""Services and API of the on-call app: bad input is a 400 with a message, overrides never
overlap, iCalendar imports are bounded, feeds are secret and revocable, gaps raise an alert."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from apps.oncall import selectors, services
from apps.oncall.models import FeedToken, Layer, Override
from tests.oncall import factories as f

BERLIN = ZoneInfo("Europe/Berlin")
pytestmark = pytest.mark.django_db


def _rotation(world, sched, **extra):
    values = {
        "name": "Daily",
        "level": 1,
        "frequency": "daily",
        "start_date": date(2026, 3, 1),
        "handoff_time": "09:00",
        "member_ids": [world.user("a", "operator").pk, world.user("a", "admin").pk],
    }
    values.update(extra)
    return services.layer_create(actor=world.user("a", "owner"), schedule=sched, **values)


def test_rotation_without_members_and_empty_week_are_400s(world, api):
    sched = f.schedule(world, "a")
    client = api.as_user(world.user("a", "owner"))
    url = reverse("oncall-layer-list")
    base = {"schedule": sched.pk, "name": "L", "level": 1, "frequency": "daily", "start_date": "2026-03-01"}
    empty = client.post(url, {**base, "member_ids": []}, format="json")
    assert empty.status_code == 400 and "at least one member" in str(empty.json())
    week = client.post(
        url,
        {
            **base,
            "member_ids": [world.user("a", "operator").pk],
            "restrictions": [{"weekdays": [], "start": "09:00", "end": "17:00"}],
        },
        format="json",
    )
    assert week.status_code == 400 and "whole week empty" in str(week.json())
    zero = client.post(
        url,
        {
            **base,
            "member_ids": [world.user("a", "operator").pk],
            "restrictions": [{"weekdays": ["mon"], "start": "09:00", "end": "09:00"}],
        },
        format="json",
    )
    assert zero.status_code == 400 and "empty" in str(zero.json())
    stranger = client.post(url, {**base, "member_ids": [world.user("b", "operator").pk]}, format="json")
    assert stranger.status_code == 400 and "Not staff" in str(stranger.json())
    ok = client.post(
        url,
        {
            **base,
            "member_ids": [world.user("a", "operator").pk],
            "restrictions": [{"weekdays": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}],
        },
        format="json",
    )
    assert ok.status_code == 201, ok.content
    assert Layer.objects.count() == 1


def test_overlapping_overrides_are_a_400(world, api):
    sched = f.schedule(world, "a")
    client = api.as_user(world.user("a", "admin"))
    url = reverse("oncall-override-list")
    body = {
        "schedule": sched.pk,
        "user": world.user("a", "viewer").pk,
        "starts_at": "2026-03-01T10:00:00Z",
        "ends_at": "2026-03-01T14:00:00Z",
    }
    assert client.post(url, body, format="json").status_code == 201
    clash = client.post(url, {**body, "starts_at": "2026-03-01T13:00:00Z", "ends_at": "2026-03-01T18:00:00Z"}, format="json")
    assert clash.status_code == 400 and "overlaps" in str(clash.json())
    backwards = client.post(url, {**body, "starts_at": "2026-03-02T13:00:00Z", "ends_at": "2026-03-02T12:00:00Z"}, format="json")
    assert backwards.status_code == 400
    adjacent = client.post(url, {**body, "starts_at": "2026-03-01T14:00:00Z", "ends_at": "2026-03-01T18:00:00Z"}, format="json")
    assert adjacent.status_code == 201
    assert Override.objects.count() == 2


def test_managers_manage_everyone_reads(world, api):
    sched = f.schedule(world, "a")
    _rotation(world, sched)
    for role, code in (("operator", 403), ("viewer", 403), ("admin", 200)):
        client = api.as_user(world.user("a", role))
        assert (
            client.patch(reverse("oncall-schedule-detail", args=[sched.pk]), {"description": role}, format="json").status_code
            == code
        )
        assert client.get(reverse("oncall-schedule-oncall", args=[sched.pk])).status_code == 200
        assert client.get(reverse("oncall-now")).status_code == 200
    client = api.as_user(world.user("a", "owner"))
    zone = client.post(reverse("oncall-schedule-list"), {"name": "Mars", "timezone": "Mars/Olympus"}, format="json")
    assert zone.status_code == 400 and "IANA" in str(zone.json())
    foreign_owner = client.post(
        reverse("oncall-schedule-list"), {"name": "X", "owners": [world.user("b", "admin").pk]}, format="json"
    )
    assert foreign_owner.status_code == 400


def test_oncall_now_api_and_dst_handoff_through_the_service(world, api):
    sched = f.schedule(world, "a")
    _rotation(world, sched)
    op, adm = world.user("a", "operator").pk, world.user("a", "admin").pk
    client = api.as_user(world.user("a", "viewer"))
    # 2026-03-29 is the spring-forward day in Berlin: 09:00 local is 07:00 UTC, the day before 08:00 UTC
    before = client.get(reverse("oncall-schedule-oncall", args=[sched.pk]) + "?at=2026-03-29T06:59:00Z").json()
    after = client.get(reverse("oncall-schedule-oncall", args=[sched.pk]) + "?at=2026-03-29T07:00:00Z").json()
    assert before["user_id"] != after["user_id"] and {before["user_id"], after["user_id"]} == {op, adm}
    pieces = selectors.final_schedule(sched.pk, start=datetime(2026, 3, 27, tzinfo=UTC), days=4)
    assert all(p.start.astimezone(BERLIN).hour == 9 for p in pieces[1:])
    bad = client.get(reverse("oncall-schedule-oncall", args=[sched.pk]) + "?at=yesterday")
    assert bad.status_code == 400 and "ISO 8601" in str(bad.json())
    listed = client.get(reverse("oncall-now")[:-1] + "?at=2026-03-29T07:00:00Z")  # both slash forms answer
    assert listed.status_code == 200 and listed.json()["results"][0]["user_id"] == after["user_id"]
    final = client.get(reverse("oncall-schedule-final", args=[sched.pk]) + "?at=2026-03-27T00:00:00Z&days=4")
    assert final.status_code == 200 and len(final.json()) == len(pieces)
    assert client.get(reverse("oncall-schedule-final", args=[sched.pk]) + "?days=400").status_code == 400


ICAL = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//EN
BEGIN:VEVENT
UID:weekly-1
DTSTART;TZID=Europe/Berlin:20260302T090000
DTEND;TZID=Europe/Berlin:20260303T090000
RRULE:FREQ=WEEKLY;BYDAY=MO
SUMMARY:On call: a-operator
END:VEVENT
BEGIN:VEVENT
UID:once-1
DTSTART:20260304T090000Z
DTEND:20260304T170000Z
SUMMARY:Somebody else
END:VEVENT
END:VCALENDAR
"""


def test_ical_import_makes_a_calendar_layer_and_never_ending_recurrence_is_bounded(world, api, settings):
    sched = f.schedule(world, "a")
    client = api.as_user(world.user("a", "owner"))
    url = reverse("oncall-schedule-import-ical", args=[sched.pk])
    now = datetime(2026, 3, 1, tzinfo=UTC)
    result = services.schedule_import_ical(sched, actor=world.user("a", "owner"), data=ICAL.encode(), now=now)
    # weekly, never ending: bounded by the 90-day horizon
    assert 12 <= result["imported"] <= 14 and result["skipped"] == ["Somebody else"]
    answer = selectors.oncall_now([sched.pk], at=datetime(2026, 3, 9, 12, tzinfo=UTC))[sched.pk]
    assert answer.user_id == world.user("a", "operator").pk
    # every minute for ever: more occurrences than the cap within the horizon → a clear 400, fast
    minutely = ICAL.replace("FREQ=WEEKLY;BYDAY=MO", "FREQ=MINUTELY").replace(
        "DTEND;TZID=Europe/Berlin:20260303T090000", "DURATION:PT1M"
    )
    refused = client.post(url, {"ical": minutely}, format="json")
    assert refused.status_code == 400 and "too often" in str(refused.json())
    many = (
        "BEGIN:VCALENDAR\nVERSION:2.0\n"
        + "".join(
            f"BEGIN:VEVENT\nUID:{i}\nDTSTART:20260301T000000Z\nDTEND:20260301T010000Z\nSUMMARY:x\nEND:VEVENT\n"
            for i in range(100_000)
        )
        + "END:VCALENDAR\n"
    )
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 20 * 1024 * 1024
    with pytest.raises(ValidationError, match="larger than|more than"):
        services.schedule_import_ical(sched, actor=world.user("a", "owner"), data=many.encode())
    garbage = client.post(url, {"ical": "hello\x00world"}, format="json")
    assert garbage.status_code == 400
    not_ical = client.post(url, {"ical": "BEGIN:VCALENDAR\nnonsense"}, format="json")
    assert not_ical.status_code == 400, not_ical.content


def test_feed_is_secret_hashed_and_revocable(world, api, client):
    sched = f.schedule(world, "a")
    _rotation(world, sched)
    owner = api.as_user(world.user("a", "owner"))
    made = owner.post(reverse("oncall-feed-list"), {"schedule": sched.pk}, format="json")
    assert made.status_code == 201, made.content
    url = made.json()["url"]
    token = url.rsplit("/", 1)[1].removesuffix(".ics")
    row = FeedToken.objects.get()
    assert token not in (row.token_hash, row.prefix) and len(row.token_hash) == 64
    got = client.get(f"/oncall/feed/{token}.ics")
    assert got.status_code == 200 and b"BEGIN:VEVENT" in got.content and b"a-operator" in got.content
    assert owner.get(reverse("oncall-feed-detail", args=[row.pk])).json()["url"] is None
    assert client.get(f"/oncall/feed/{token[:-2]}xx.ics").status_code == 404
    # a person's own feed: only their shifts
    mine = api.as_user(world.user("a", "operator")).post(reverse("oncall-feed-list"), {}, format="json")
    assert mine.status_code == 201, mine.content
    body = client.get("/oncall/feed/" + mine.json()["url"].rsplit("/", 1)[1]).content
    assert b"a-operator" in body and b"a-admin" not in body
    # (one client: as_user switches who it is) the operator does not see the owner's feed
    assert owner.post(reverse("oncall-feed-revoke", args=[row.pk])).status_code == 404
    owner = api.as_user(world.user("a", "owner"))
    assert owner.post(reverse("oncall-feed-revoke", args=[row.pk])).status_code == 200
    assert client.get(f"/oncall/feed/{token}.ics").status_code == 404


def test_gap_in_the_next_week_raises_an_alert_and_tells_the_owners(world, django_capture_on_commit_callbacks):
    from apps.alerts.models import Alert
    from apps.notifications.models import Notification

    sched = f.schedule(world, "a")
    sched.owners.set([world.user("a", "admin")])
    now = datetime.now(UTC)
    _rotation(
        world,
        sched,
        start_date=(now - timedelta(days=10)).date(),
        restrictions=[{"weekdays": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}],
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert services.gaps_check(now=now) == {"found": 1, "closed": 0}
    assert services.gaps_check(now=now) == {"found": 0, "closed": 0}  # only changes publish
    alert = Alert.objects.get(resource_type="oncall.schedule", resource_id=str(sched.pk))
    assert alert.alert_type == "oncall_gap" and alert.status == "firing"
    assert Notification.objects.filter(recipient=world.user("a", "admin"), notification_type="oncall_gap").exists()
    # cover the week: the gap closes and the alert resolves
    services.layer_create(
        actor=world.user("a", "owner"),
        schedule=sched,
        name="Backup",
        level=0,
        frequency="weekly",
        start_date=(now - timedelta(days=10)).date(),
        member_ids=[world.user("a", "viewer").pk],
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert services.gaps_check(now=now) == {"found": 0, "closed": 1}
    alert.refresh_from_db()
    assert alert.status == "resolved"
    from apps.oncall.tasks import check_gaps_task, notify_shifts_task

    assert check_gaps_task() == {"found": 0, "closed": 0} and notify_shifts_task() == 0
