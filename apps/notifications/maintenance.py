"""Maintenance tasks notifications contributes to apps.maintenance's registry: old notifications
and finished deliveries are deleted in batches (`NOTIFICATIONS_RETENTION_DAYS`,
`NOTIFICATIONS_DELIVERY_RETENTION_DAYS`; 0 keeps them forever)."""

from datetime import timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from apps.maintenance.registry import TaskContext, TaskOutcome, register
from apps.maintenance.services import purge_in_batches

from .choices import DeliveryStatus

# Deliveries in these states are done: nothing will send, retry or digest them again.
FINISHED = (DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.SUPPRESSED, DeliveryStatus.DIGESTED)


def _days(ctx: TaskContext, setting: str) -> int:
    return int(ctx.params.get("days", getattr(settings, setting)))


@register("purge_notifications", crontab="20 3 * * *",
          description="Delete notifications older than NOTIFICATIONS_RETENTION_DAYS (and their deliveries), "
                      "except those with a delivery still in flight.")
def purge_notifications(ctx: TaskContext):
    from .models import Delivery, Notification

    days = _days(ctx, "NOTIFICATIONS_RETENTION_DAYS")
    if days <= 0:
        return TaskOutcome(details={"message": "NOTIFICATIONS_RETENTION_DAYS is 0: notifications are kept."})
    cutoff = timezone.now() - timedelta(days=days)
    # In flight: not finished yet, or carried by a digest that has not gone out yet.
    in_flight = Delivery.objects.filter(notification=OuterRef("pk")).filter(
        ~Q(status__in=FINISHED) | (Q(digest__isnull=False) & ~Q(digest__status__in=FINISHED))
    )
    old = Notification.objects.filter(created_at__lt=cutoff).exclude(Exists(in_flight))
    # Deliveries go first, so the notification batches do not cascade through large delivery sets.
    removed = purge_in_batches(
        Delivery.objects.filter(notification__in=old.values("pk")), ctx=ctx,
    )
    removed.update(purge_in_batches(old, ctx=ctx))
    return removed


@register("purge_deliveries", crontab="25 3 * * *",
          description="Delete sent, failed, suppressed and digested deliveries older than "
                      "NOTIFICATIONS_DELIVERY_RETENTION_DAYS (the notifications stay).")
def purge_deliveries(ctx: TaskContext):
    from .models import Delivery

    days = _days(ctx, "NOTIFICATIONS_DELIVERY_RETENTION_DAYS")
    if days <= 0:
        return TaskOutcome(details={"message": "NOTIFICATIONS_DELIVERY_RETENTION_DAYS is 0: deliveries are kept."})
    cutoff = timezone.now() - timedelta(days=days)
    # A digest still waiting to go out keeps the rows it carries (they point at it).
    waiting_digest_items = Delivery.objects.filter(digest__isnull=False).exclude(digest__status__in=FINISHED)
    old = Delivery.objects.filter(created_at__lt=cutoff, status__in=FINISHED).exclude(pk__in=waiting_digest_items.values("pk"))
    return purge_in_batches(old, ctx=ctx)
