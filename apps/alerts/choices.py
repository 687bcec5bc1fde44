"""Choices of the alerts app: types, severities, statuses, rule types, matcher operators."""

from django.db import models


class AlertType(models.TextChoices):
    SLA_AT_RISK = "sla_at_risk", "SLA at risk"
    SLA_BREACHED = "sla_breached", "SLA breached"
    CRITICAL_TICKET = "critical_ticket", "Critical ticket"
    ESCALATED_TICKET = "escalated_ticket", "Escalated ticket"
    HIGH_WORKLOAD = "high_workload", "High workload"
    UNASSIGNED_CRITICAL = "unassigned_critical", "Unassigned critical ticket"
    JOB_FAILED = "job_failed", "Job failed"
    ENDPOINT_DOWN = "endpoint_down", "Endpoint down"
    ENDPOINT_TREND = "endpoint_trend", "Endpoint trend (latency p95, TLS expiry)"
    PAYMENT_FAILED = "payment_failed", "Payment failed"
    SCHEDULE_MISSED = "schedule_missed", "Scheduled run missed"
    HIGH_PRIORITY_QUEUE = "high_priority_queue", "High-priority items in queue"
    ONCALL_GAP = "oncall_gap", "On-call gap (nobody on call within 7 days)"
    CUSTOM = "custom", "Custom"
    EXTERNAL = "external", "External (Alertmanager)"


class Severity(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"


SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}
# Notification priority per severity (the `notify` block of docs/events.md).
SEVERITY_PRIORITY = {Severity.INFO: "low", Severity.WARNING: "high", Severity.CRITICAL: "urgent"}


class AlertStatus(models.TextChoices):
    FIRING = "firing", "Firing"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"


class AlertSource(models.TextChoices):
    EVENT = "event", "Event"
    RULE = "rule", "Rule"
    CHECK = "check", "Built-in check"
    INGEST = "ingest", "Ingestion"
    MANUAL = "manual", "Manual"


class RuleType(models.TextChoices):
    SLA = "sla", "SLA"
    THRESHOLD = "threshold", "Threshold"
    EVENT = "event", "Event"
    SCHEDULE = "schedule", "Schedule"
    ALERT = "alert", "On alert (incident actions)"


class MatchOp(models.TextChoices):
    EQ = "=", "equals"
    NE = "!=", "does not equal"
    RE = "=~", "matches regex"
    NRE = "!~", "does not match regex"


class RunbookStatus(models.TextChoices):
    PENDING_APPROVAL = "pending_approval", "Waiting for approval"
    REJECTED = "rejected", "Rejected"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


RUNBOOK_OPEN_STATUSES = (RunbookStatus.PENDING_APPROVAL, RunbookStatus.QUEUED, RunbookStatus.RUNNING)

# Ticket priority for an alert severity (incident loop).
SEVERITY_TICKET_PRIORITY = {Severity.INFO: "normal", Severity.WARNING: "high", Severity.CRITICAL: "critical"}
