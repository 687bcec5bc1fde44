"""Demo notifications for acme: preferences that show quiet hours and a daily digest, and a few
in-app notifications (no external channel: nothing is sent anywhere). Idempotent."""

from datetime import time

from django.contrib.auth import get_user_model

from .choices import ALL_TYPES, Digest, NotificationType, Priority
from .models import Notification, Preference
from .services import notify_team

NOTES = [
    ("operator", NotificationType.SYSTEM_ALERT, "Welcome to opsportal", "Notifications about your tenant appear here.", Priority.LOW),
    ("admin", NotificationType.JOB_RUN_FAILED, "Job 'Disk usage report' failed on web-2", "df: /data: No such file or directory", Priority.HIGH),
    ("owner", NotificationType.ENDPOINT_DOWN, "Portal health check is down", "GET /health/ answered 503 twice in a row.", Priority.URGENT),
]


def seed(*, orgs, stdout) -> None:
    acme = orgs.get("acme")
    if acme is None:
        return
    users = {u.username: u for u in get_user_model().objects.filter(username__startswith="acme-")}
    admin, operator = users.get("acme-admin"), users.get("acme-operator")
    if admin:
        Preference.objects.get_or_create(tenant=acme, user=admin, notification_type=ALL_TYPES, defaults={
            "channels": ["in_app", "email"], "min_priority": {"email": Priority.HIGH},
            "quiet_start": time(22, 0), "quiet_end": time(7, 0), "urgent_bypasses_quiet": True,
        })
    if operator:
        Preference.objects.get_or_create(tenant=acme, user=operator, notification_type=ALL_TYPES, defaults={
            "channels": ["in_app", "email"], "digest": Digest.DAILY,
        })
    if Notification.objects.filter(tenant=acme, metadata__demo=True).exists():
        return
    for role, ntype, title, message, priority in NOTES:
        notify_team(tenant=acme, role_filter=role, notification_type=ntype, title=title, message=message,
                    priority=priority, metadata={"demo": True}, auto_send=False)
    stdout.write("notifications: acme preferences (quiet hours, daily digest) and 3 in-app notifications\n")
