"""The operations status: what an operator looks at first."""

from __future__ import annotations

from django.apps import apps
from django.conf import settings

from apps.core.tenancy import acting

from .models import Endpoint
from .selectors import health_summary


def _queue_depths() -> dict:
    from config.celery import QUEUES

    if not settings.CELERY_BROKER_URL.startswith("redis"):
        return {q: None for q in QUEUES}
    import redis

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=2)
    try:
        return {q: client.llen(q) for q in QUEUES}
    except redis.RedisError as exc:
        return {"error": str(exc)}
    finally:
        client.close()


def _workers() -> dict:
    from config.celery import app

    try:
        replies = app.control.ping(timeout=0.5) or []
    except Exception as exc:  # broker down: report it, do not fail the page
        return {"count": 0, "error": str(exc)}
    return {"count": len(replies), "names": sorted(name for r in replies for name in r)}


def _running_jobs(user) -> dict | None:
    # targets is on monitoring's layer: read its model by label only when it exists, no import.
    try:
        model = apps.get_model("targets", "JobRun")
    except LookupError:
        return None
    field_names = {f.name for f in model._meta.fields}
    if "status" not in field_names:
        return None
    qs = model.objects.visible_to(user) if hasattr(model.objects, "visible_to") else model.objects.none()
    return {"running": qs.filter(status="running").count()}


def operations_status(user) -> dict:
    from apps.maintenance.models import MaintenanceRun

    ctx = acting(user)
    data: dict = {"monitoring": health_summary(Endpoint.objects.visible_to(user)), "running_jobs": _running_jobs(user)}
    if ctx.is_platform:
        data["queues"] = _queue_depths()
        data["workers"] = _workers()
        data["maintenance_runs"] = list(
            MaintenanceRun.objects.order_by("-started_at").values(
                "id", "task", "status", "started_at", "duration_seconds", "total_rows", "bytes_freed")[:10]
        )
    return data
