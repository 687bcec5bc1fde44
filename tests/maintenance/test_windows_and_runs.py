"""Maintenance windows (one-off, cron and RRULE across DST, scope) and recorded runs."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.utils import timezone

from apps.core.models import Event
from apps.maintenance.choices import RunStatus
from apps.maintenance.models import MaintenanceRun
from apps.maintenance.selectors import active_windows, in_maintenance
from apps.maintenance.services import maintenance_run, window_create
from apps.monitoring.models import CheckResult
from apps.monitoring.services import endpoint_create

pytestmark = pytest.mark.django_db


def _w(world, **kw):
    return window_create(actor=None, tenant_id=world.tenant("a").pk, name=kw.pop("name", "w"), **kw)


def test_one_off_window_tenant_scope(world):
    w = _w(world, starts_at=timezone.now() - timedelta(minutes=1), ends_at=timezone.now() + timedelta(minutes=30))
    assert in_maintenance(tenant_id=world.tenant("a").pk)
    assert not in_maintenance(tenant_id=world.tenant("b").pk)
    assert not in_maintenance(tenant_id=world.tenant("a").pk, at=w.ends_at + timedelta(seconds=1))
    assert Event.objects.filter(name="maintenance_window.created").count() == 1


def test_cron_window_is_dst_safe_in_local_time(world):
    # Every Sunday 02:30 Europe/Berlin for 60 minutes; 2026-03-29 is the spring-forward Sunday
    # (02:00 → 03:00), 2026-04-05 is a normal Sunday at UTC+2.
    w = _w(world, recurrence="cron", cron="30 1 * * 0", duration_minutes=60, timezone="Europe/Berlin",
           starts_at=datetime(2026, 1, 1, tzinfo=UTC))
    assert w.is_active(datetime(2026, 4, 4, 23, 45, tzinfo=UTC))  # 01:45 CEST Sunday
    assert not w.is_active(datetime(2026, 4, 5, 0, 45, tzinfo=UTC))  # 02:45 CEST: over
    assert w.is_active(datetime(2026, 1, 4, 0, 45, tzinfo=UTC))  # 01:45 CET in winter = 00:45 UTC
    assert not w.is_active(datetime(2026, 1, 4, 23, 45, tzinfo=UTC))


def test_rrule_window_and_object_and_label_scope(world):
    e = endpoint_create(actor=None, tenant_id=world.tenant("a").pk, name="x", host="127.0.0.1", port=80, labels={"instance": "db-1"})
    other = endpoint_create(actor=None, tenant_id=world.tenant("a").pk, name="y", host="127.0.0.1", port=81)
    w = _w(world, recurrence="rrule", rrule="FREQ=DAILY;BYHOUR=3;BYMINUTE=0", duration_minutes=30, timezone="America/New_York",
           starts_at=datetime(2026, 1, 1, tzinfo=UTC), scope="objects", label_matchers={"instance": "db-1"})
    at = datetime(2026, 7, 10, 7, 10, tzinfo=UTC)  # 03:10 EDT
    assert active_windows(tenant_id=e.tenant_id, obj=e, at=at) == [w]
    assert active_windows(tenant_id=e.tenant_id, obj=other, at=at) == []
    assert not in_maintenance(tenant_id=e.tenant_id, at=at)  # not tenant-wide
    assert not w.is_active(datetime(2026, 7, 10, 7, 40, tzinfo=UTC))


def test_invalid_windows_are_refused_with_messages(world):
    with pytest.raises(ValidationError) as exc:
        _w(world, starts_at=timezone.now(), ends_at=timezone.now() - timedelta(hours=1))
    assert "ends_at" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        _w(world, recurrence="cron", cron="61 * * * *", duration_minutes=10, starts_at=timezone.now())
    assert "cron" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        _w(world, recurrence="rrule", rrule="FREQ=SOMETIMES", duration_minutes=10, starts_at=timezone.now(), timezone="Mars/Base")
    assert {"rrule", "timezone"} <= set(exc.value.message_dict)


def _old_results(world, n):
    e = endpoint_create(actor=None, tenant_id=world.tenant("a").pk, name="old", host="127.0.0.1", port=80)
    old = timezone.now() - timedelta(days=40)
    CheckResult.objects.bulk_create([CheckResult(endpoint=e, checked_at=old, status="up") for _ in range(n)])
    CheckResult.objects.create(endpoint=e, checked_at=timezone.now(), status="up")
    return e


def test_purge_check_results_in_batches_with_dry_run(world):
    _old_results(world, 25)
    dry = maintenance_run(task="purge_check_results", dry_run=True, batch_size=10)
    assert dry.status == RunStatus.SUCCEEDED and dry.total_rows == 25 and CheckResult.objects.count() == 26
    progress = []
    run = maintenance_run(task="purge_check_results", batch_size=10, progress=lambda d, t: progress.append(d))
    assert run.rows_removed == {"monitoring_checkresult": 25} and CheckResult.objects.count() == 1
    assert progress == [10, 20, 25]  # three short transactions, not one long delete
    assert run.finished_at and run.duration_seconds is not None


def test_lock_prevents_overlapping_runs(world):
    cache.add("maintenance:lock:purge_check_results", "999", timeout=60)
    run = maintenance_run(task="purge_check_results")
    assert run.status == RunStatus.SKIPPED and "in progress" in run.error
    cache.delete("maintenance:lock:purge_check_results")
    assert maintenance_run(task="purge_check_results").status == RunStatus.SUCCEEDED


def test_failing_task_is_recorded_and_unknown_task_refused(world):
    from apps.maintenance import registry

    registry.register("boom_test", lambda ctx: 1 / 0)
    run = maintenance_run(task="boom_test")
    assert run.status == RunStatus.FAILED and "ZeroDivisionError" in run.error and run.finished_at
    with pytest.raises(ValidationError):
        maintenance_run(task="nope")


def test_commands_vacuum_cache_and_events(world, capsys):
    _old_results(world, 3)
    call_command("purge_check_results", "--dry-run")
    assert "would remove 3 rows" in capsys.readouterr().out
    cache.set("k", 1)
    call_command("clear_cache")
    assert cache.get("k") is None
    call_command("purge_events")
    assert MaintenanceRun.objects.filter(task="purge_events", status="succeeded").exists()


def test_schedules_are_collected_for_beat():
    from apps.core.periodic import collect

    names = {s.name for s in collect()}
    assert {"maintenance: purge_check_results", "maintenance: db_maintenance", "monitoring: dispatch due checks"} <= names


@pytest.mark.django_db(transaction=True)
def test_db_maintenance_vacuums_with_sizes_before_and_after(capsys):
    call_command("db_maintenance")
    assert "db_maintenance: succeeded" in capsys.readouterr().out
    run = MaintenanceRun.objects.filter(task="db_maintenance").get()
    assert run.details["tables"] > 10 and run.details["size_before"] > 0 and "size_after" in run.details


def test_runs_are_platform_only_and_api_run_queues_a_task(world, api):
    MaintenanceRun.objects.create(task="purge_events", status="succeeded")
    assert api.as_user(world.user("a", "owner")).get("/api/v1/maintenance/runs/").status_code == 403
    assert api.as_user(world.user("a", "owner")).post("/api/v1/maintenance/runs/run/", {"task": "clear_cache"}).status_code == 403
    admin = api.as_user(world.user("platform", "admin"))
    assert admin.get("/api/v1/maintenance/runs/").json()["results"][0]["task"] == "purge_events"
    assert admin.post("/api/v1/maintenance/runs/run/", {"task": "nope"}, format="json").status_code == 400
    resp = admin.post("/api/v1/maintenance/runs/run/", {"task": "clear_cache", "dry_run": True}, format="json")
    assert resp.status_code == 202  # eager in tests: the run is recorded already
    assert MaintenanceRun.objects.filter(task="clear_cache", trigger="api", dry_run=True, status="succeeded").exists()


def test_window_api_create_with_objects(world, api):
    e = endpoint_create(actor=None, tenant_id=world.tenant("a").pk, name="e", host="127.0.0.1", port=80)
    client = api.as_user(world.user("a", "operator"))
    resp = client.post("/api/v1/maintenance/windows/", {
        "name": "patching", "starts_at": timezone.now().isoformat(), "ends_at": (timezone.now() + timedelta(hours=1)).isoformat(),
        "objects": [{"type": "monitoring.endpoint", "id": e.pk}]}, format="json")
    assert resp.status_code == 201, resp.content
    body = resp.json()
    assert body["scope"] == "objects" and body["objects_in_scope"] == [{"type": "monitoring.endpoint", "id": e.pk}]
    assert body["active_now"] is True
    other = endpoint_create(actor=None, tenant_id=world.tenant("b").pk, name="b", host="127.0.0.1", port=80)
    refused = client.post("/api/v1/maintenance/windows/", {
        "name": "x", "starts_at": timezone.now().isoformat(), "ends_at": (timezone.now() + timedelta(hours=1)).isoformat(),
        "objects": [{"type": "monitoring.endpoint", "id": other.pk}]}, format="json")
    assert refused.status_code == 400
