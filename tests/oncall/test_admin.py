"""The admin: on call now in the changelist, the 14-day SVG timeline with gaps highlighted,
writes through the services (an overlapping override comes back as a form error), the
iCalendar import page, and shift start/end notices."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from apps.core.models import Event
from apps.oncall import services
from apps.oncall.models import Override
from tests.oncall import factories as f
from tests.oncall.test_services import ICAL

pytestmark = pytest.mark.django_db


def _weekday_schedule(world):
    sched = f.schedule(world, "a")
    services.layer_create(
        actor=world.user("a", "owner"),
        schedule=sched,
        name="Office",
        level=1,
        frequency="weekly",
        start_date=(timezone.now() - timedelta(days=30)).date(),
        member_ids=[world.user("a", "operator").pk],
        restrictions=[{"weekdays": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}],
    )
    return sched


def test_change_page_draws_the_next_14_days_with_gaps(world, client):
    sched = _weekday_schedule(world)
    client.force_login(world.user("a", "viewer"))
    page = client.get(reverse("admin:oncall_schedule_change", args=[sched.pk])).content.decode()
    assert "<svg" in page and "oncall-timeline" in page
    assert page.count('class="oncall-gap"') >= 10  # nights and weekends of two weeks
    assert "a-operator" in page and "Nobody on call" in page
    listing = client.get(reverse("admin:oncall_schedule_changelist")).content.decode()
    assert sched.name in listing and ("a-operator" in listing or "nobody" in listing)


def test_admin_override_overlap_is_a_form_error_and_import_page_works(world, client):
    sched = _weekday_schedule(world)
    client.force_login(world.user("a", "owner"))
    start = datetime(2026, 5, 4, 10, tzinfo=UTC)
    services.override_create(
        actor=world.user("a", "owner"),
        schedule=sched,
        user=world.user("a", "viewer"),
        starts_at=start,
        ends_at=start + timedelta(hours=4),
    )
    form = {
        "schedule": sched.pk,
        "user": world.user("a", "admin").pk,
        "starts_at_0": "2026-05-04",
        "starts_at_1": "12:00:00",
        "ends_at_0": "2026-05-04",
        "ends_at_1": "18:00:00",
        "reason": "swap",
    }
    answer = client.post(reverse("admin:oncall_override_add"), form)
    assert answer.status_code == 200 and "overlaps" in answer.content.decode()
    assert Override.objects.count() == 1
    upload = SimpleUploadedFile("team.ics", ICAL.encode(), content_type="text/calendar")
    done = client.post(reverse("admin:oncall_schedule_import_ical", args=[sched.pk]), {"file": upload, "name": "Team"})
    assert done.status_code == 302
    assert sched.layers.filter(kind="calendar", name="Team").exists()
    client.force_login(world.user("a", "operator"))  # reads, may not import
    assert client.get(reverse("admin:oncall_schedule_import_ical", args=[sched.pk])).status_code == 403


def test_shift_start_and_end_are_told_to_the_person(world):
    sched = f.schedule(world, "a")
    services.layer_create(
        actor=world.user("a", "owner"),
        schedule=sched,
        name="Daily",
        level=1,
        frequency="daily",
        start_date=datetime(2026, 1, 1).date(),
        handoff_time="09:00",
        member_ids=[world.user("a", "operator").pk, world.user("a", "admin").pk],
    )
    before = datetime(2026, 3, 2, 7, 55, tzinfo=UTC)  # 08:55 in Berlin
    assert services.shifts_notify(now=before) == 0  # first run: only the mark
    assert services.shifts_notify(now=before + timedelta(minutes=10)) == 2  # the 09:00 handoff
    started = Event.objects.get(name="oncall.shift_started")
    ended = Event.objects.get(name="oncall.shift_ended")
    assert started.payload["notify"]["user_ids"] != ended.payload["notify"]["user_ids"]
    assert services.shifts_notify(now=before + timedelta(minutes=20)) == 0


def test_admin_adds_a_layer_through_the_service(world, client):
    sched = f.schedule(world, "a")
    client.force_login(world.user("a", "owner"))
    form = {
        "schedule": sched.pk,
        "name": "Nights",
        "level": 3,
        "kind": "rotation",
        "frequency": "daily",
        "interval": 1,
        "start_date": "2026-01-05",
        "handoff_time": "22:00",
        "timezone": "",
        "restrictions": "[]",
        "member_ids": f"[{world.user('b', 'operator').pk}]",
    }
    refused = client.post(reverse("admin:oncall_layer_add"), form)
    assert refused.status_code == 200 and "Not staff" in refused.content.decode()
    done = client.post(reverse("admin:oncall_layer_add"), {**form, "member_ids": f"[{world.user('a', 'operator').pk}]"})
    assert done.status_code == 302, done.content.decode()[:2000]
    layer = sched.layers.get()
    assert layer.tenant_id == sched.tenant_id and layer.member_ids == [world.user("a", "operator").pk]
    page = client.get(reverse("admin:oncall_layer_change", args=[layer.pk])).content.decode()
    assert "a-operator" in page


def test_nobody_on_call_is_shown_without_a_deprecated_format_html_call(world, client):
    """A schedule with no layer has nobody on call: the page says so in red, and Django's
    format_html is called with arguments (without them it is deprecated and will raise)."""
    import warnings

    from django.utils.deprecation import RemovedInDjango60Warning

    sched = f.schedule(world, "a")
    client.force_login(world.user("a", "viewer"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RemovedInDjango60Warning)
        page = client.get(reverse("admin:oncall_schedule_change", args=[sched.pk])).content.decode()
    assert '<b style="color:#c62828">nobody</b>' in page
