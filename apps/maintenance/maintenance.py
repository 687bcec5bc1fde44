"""Maintenance tasks this app contributes: the core events outbox purge (core cannot register
it itself without importing a higher layer), PostgreSQL VACUUM (ANALYZE) and cache cleanup."""

from __future__ import annotations

from datetime import timedelta

from django.apps import apps
from django.conf import settings
from django.core.cache import caches
from django.db import connection
from django.utils import timezone

from .registry import TaskContext, TaskOutcome, register
from .services import purge_in_batches


@register("purge_events", crontab="30 3 * * *",
          description="Delete dispatched outbox events older than MAINTENANCE_EVENT_RETENTION_DAYS.")
def purge_events(ctx: TaskContext):
    from apps.core.choices import EventStatus
    from apps.core.models import Event

    days = int(ctx.params.get("days", settings.MAINTENANCE_EVENT_RETENTION_DAYS))
    cutoff = timezone.now() - timedelta(days=days)
    return purge_in_batches(Event.objects.filter(status=EventStatus.DISPATCHED, created_at__lt=cutoff), ctx=ctx)


@register("purge_maintenance_runs", crontab="45 3 * * *",
          description="Delete maintenance run records older than MAINTENANCE_RUN_RETENTION_DAYS.")
def purge_maintenance_runs(ctx: TaskContext):
    from .models import MaintenanceRun

    days = int(ctx.params.get("days", settings.MAINTENANCE_RUN_RETENTION_DAYS))
    cutoff = timezone.now() - timedelta(days=days)
    return purge_in_batches(MaintenanceRun.objects.filter(started_at__lt=cutoff), ctx=ctx)


def _portal_tables() -> list[str]:
    existing = set(connection.introspection.table_names())
    names = {m._meta.db_table for m in apps.get_models(include_auto_created=True)}
    return sorted(names & existing)


def _sizes(tables: list[str]) -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relname = ANY(%s)",
            [tables],
        )
        return {name: int(size) for name, size in cursor.fetchall()}


@register("db_maintenance", crontab="0 4 * * 0",
          description="PostgreSQL VACUUM (ANALYZE) of the portal's tables, sizes before and after.")
def db_maintenance(ctx: TaskContext):
    if connection.vendor != "postgresql":
        return TaskOutcome(details={"message": f"VACUUM (ANALYZE) needs PostgreSQL; this database is {connection.vendor}, nothing done."})
    tables = ctx.params.get("tables") or _portal_tables()
    before = _sizes(tables)
    if ctx.dry_run:
        return TaskOutcome(details={"tables": len(tables), "size_before": sum(before.values()), "message": "dry run: nothing vacuumed"})
    if connection.in_atomic_block:
        raise RuntimeError("VACUUM cannot run inside a transaction; run db_maintenance outside atomic().")
    full = bool(ctx.params.get("full"))
    # VACUUM cannot run inside a transaction block: use autocommit on a fresh cursor.
    connection.ensure_connection()
    previous = connection.get_autocommit()
    connection.set_autocommit(True)
    try:
        with connection.cursor() as cursor:
            for done, table in enumerate(tables, 1):
                cursor.execute(f'VACUUM ({"FULL, " if full else ""}ANALYZE) "{table}"')
                ctx.progress(done, len(tables))
    finally:
        connection.set_autocommit(previous)
    after = _sizes(tables)
    freed = sum(max(0, before.get(t, 0) - after.get(t, 0)) for t in tables)
    changed = {t: [before.get(t, 0), after.get(t, 0)] for t in tables if before.get(t) != after.get(t)}
    return TaskOutcome(bytes_freed=freed, details={
        "tables": len(tables), "full": full, "size_before": sum(before.values()), "size_after": sum(after.values()),
        "changed_tables": changed,
    })


@register("clear_cache", crontab=None, description="Clear the portal cache (all configured caches, or `alias`).")
def clear_cache(ctx: TaskContext):
    aliases = [ctx.params["alias"]] if ctx.params.get("alias") else list(settings.CACHES)
    if not ctx.dry_run:
        for alias in aliases:
            caches[alias].clear()
    return TaskOutcome(details={"caches": aliases, "message": "dry run: nothing cleared" if ctx.dry_run else "cleared"})
