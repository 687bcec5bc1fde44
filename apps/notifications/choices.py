"""Choices of the notifications app: types, priorities, channel kinds, delivery states."""

from django.db import models


class NotificationType(models.TextChoices):
    """Known notification types. Publishers may use other lower-case names (the `type` of a
    `notify` block); preferences are keyed by the name, `*` meaning every type."""

    SYSTEM_ALERT = "system_alert", "System alert"
    TICKET_CREATED = "ticket_created", "Ticket created"
    TICKET_ASSIGNED = "ticket_assigned", "Ticket assigned"
    TICKET_ESCALATED = "ticket_escalated", "Ticket escalated"
    TICKET_SLA_AT_RISK = "ticket_sla_at_risk", "Ticket SLA at risk"
    TICKET_SLA_BREACHED = "ticket_sla_breached", "Ticket SLA breached"
    TICKET_MESSAGE = "ticket_message", "Ticket message"
    TICKET_RESOLVED = "ticket_resolved", "Ticket resolved"
    JOB_RUN_SUCCEEDED = "job_run_succeeded", "Job run succeeded"
    JOB_RUN_FAILED = "job_run_failed", "Job run failed"
    DEPLOYMENT_STARTED = "deployment_started", "Deployment started"
    DEPLOYMENT_SUCCEEDED = "deployment_succeeded", "Deployment succeeded"
    DEPLOYMENT_FAILED = "deployment_failed", "Deployment failed"
    ALERT_FIRED = "alert_fired", "Alert fired"
    ALERT_ESCALATED = "alert_escalated", "Alert escalated"
    ALERT_RESOLVED = "alert_resolved", "Alert resolved"
    ENDPOINT_DOWN = "endpoint_down", "Endpoint down"
    ENDPOINT_UP = "endpoint_up", "Endpoint up"
    DIGEST = "digest", "Digest"


ALL_TYPES = "*"


class Priority(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    URGENT = "urgent", "Urgent"


PRIORITY_RANK = {Priority.LOW: 10, Priority.MEDIUM: 20, Priority.HIGH: 30, Priority.URGENT: 40}


class ChannelKind(models.TextChoices):
    """Where a notification can go. `in_app` is the Notification row itself (always created);
    `email` goes to the recipient's address through Django's email backend; the rest are
    ChannelConfig rows (Apprise URLs, or a signed generic webhook)."""

    IN_APP = "in_app", "In-app"
    EMAIL = "email", "Email"
    SLACK = "slack", "Slack"
    TEAMS = "teams", "Microsoft Teams"
    TELEGRAM = "telegram", "Telegram"
    SMS = "sms", "SMS"
    WEBHOOK = "webhook", "Signed webhook"
    APPRISE = "apprise", "Other Apprise URL"


CONFIG_KINDS = [k for k in ChannelKind if k not in (ChannelKind.IN_APP, ChannelKind.EMAIL)]


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    SUPPRESSED = "suppressed", "Suppressed"
    BATCHED = "batched", "Waiting for digest"
    DIGESTED = "digested", "Sent in a digest"


class SuppressReason(models.TextChoices):
    NONE = "", "—"
    PREFERENCE = "preference", "Preference"
    QUIET_HOURS = "quiet_hours", "Quiet hours"
    RATE_LIMIT = "rate_limit", "Rate limit"
    CHANNEL_DISABLED = "channel_off", "Channel disabled"


class Digest(models.TextChoices):
    OFF = "off", "Off"
    HOURLY = "hourly", "Hourly"
    DAILY = "daily", "Daily"
