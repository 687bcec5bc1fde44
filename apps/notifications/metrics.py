"""Deliveries by channel kind and status (created in the last WINDOW_HOURS), for /metrics."""

from datetime import timedelta

from django.db.models import Count
from django.utils import timezone

from apps.core.metrics import WINDOW_HOURS, gauge

from .models import Delivery


@gauge(
    "deliveries",
    f"Notification deliveries created in the last {WINDOW_HOURS} h, by channel kind and status.",
    ["channel", "status"],
)
def deliveries():
    since = timezone.now() - timedelta(hours=WINDOW_HOURS)
    rows = Delivery.objects.filter(created_at__gte=since).order_by().values_list("kind", "status").annotate(n=Count("id"))
    return {(kind, status): n for kind, status, n in rows}
