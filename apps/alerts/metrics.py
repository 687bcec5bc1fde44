"""Alerts ingested and deduplicated (alerts seen in the last WINDOW_HOURS), for /metrics.

Every ingested occurrence either opens an alert or is folded into one by fingerprint, so over the
alerts last seen in the window: ingested = sum of occurrences, deduplicated = that minus the
number of alerts. (Occurrences before the window of a long-firing alert are included.)"""

from datetime import timedelta

from django.db.models import Count, Sum
from django.utils import timezone

from apps.core.metrics import WINDOW_HOURS, gauge

from .choices import AlertStatus
from .models import Alert


def _window():
    since = timezone.now() - timedelta(hours=WINDOW_HOURS)
    return Alert.objects.filter(last_seen__gte=since).order_by().values_list("alert_type", "severity")


@gauge(
    "alerts_ingested",
    f"Alert occurrences of alerts seen in the last {WINDOW_HOURS} h, by type and severity.",
    ["type", "severity"],
)
def alerts_ingested():
    return {(t, s): n or 0 for t, s, n in _window().annotate(n=Sum("occurrences"))}


@gauge(
    "alerts_deduplicated",
    f"Occurrences folded into an existing alert (seen in the last {WINDOW_HOURS} h), by type and severity.",
    ["type", "severity"],
)
def alerts_deduplicated():
    return {(t, s): (n or 0) - c for t, s, n, c in _window().annotate(n=Sum("occurrences"), c=Count("id"))}


@gauge("alerts_open", "Alerts firing or acknowledged, by severity.", ["status", "severity"])
def alerts_open():
    rows = (
        Alert.objects.filter(status__in=[AlertStatus.FIRING, AlertStatus.ACKNOWLEDGED])
        .order_by()
        .values_list("status", "severity")
        .annotate(n=Count("id"))
    )
    return {(status, sev): n for status, sev, n in rows}
