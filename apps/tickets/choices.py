"""Choices of the tickets app: statuses (with the transition table), priorities, actor types."""

from django.db import models


class TicketStatus(models.TextChoices):
    OPEN = "open", "Open"
    IN_PROGRESS = "in_progress", "In progress"
    WAITING = "waiting", "Waiting on customer"
    ESCALATED = "escalated", "Escalated"
    RESOLVED = "resolved", "Resolved"
    CLOSED = "closed", "Closed"


S = TicketStatus
# Allowed moves; anything else is a 400 naming the allowed targets.
TRANSITIONS: dict[str, frozenset[str]] = {
    S.OPEN: frozenset({S.IN_PROGRESS, S.WAITING, S.ESCALATED, S.RESOLVED, S.CLOSED}),
    S.IN_PROGRESS: frozenset({S.OPEN, S.WAITING, S.ESCALATED, S.RESOLVED, S.CLOSED}),
    S.WAITING: frozenset({S.OPEN, S.IN_PROGRESS, S.ESCALATED, S.RESOLVED, S.CLOSED}),
    S.ESCALATED: frozenset({S.OPEN, S.IN_PROGRESS, S.WAITING, S.RESOLVED, S.CLOSED}),
    S.RESOLVED: frozenset({S.OPEN, S.CLOSED}),
    S.CLOSED: frozenset({S.OPEN}),
}
# Open = still owed work (workload, SLA sweep). The SLA clock runs only in RUNNING statuses.
OPEN_STATUSES = frozenset({S.OPEN, S.IN_PROGRESS, S.WAITING, S.ESCALATED})
DONE_STATUSES = frozenset({S.RESOLVED, S.CLOSED})
CLOCK_RUNNING_STATUSES = frozenset({S.OPEN, S.IN_PROGRESS, S.ESCALATED})


class TicketPriority(models.TextChoices):
    LOW = "low", "Low"
    NORMAL = "normal", "Normal"
    HIGH = "high", "High"
    URGENT = "urgent", "Urgent"
    CRITICAL = "critical", "Critical"


class ActorType(models.TextChoices):
    CUSTOMER = "customer", "Customer"
    TENANT = "tenant", "Tenant"
    PARTNER = "partner", "Partner"
    PLATFORM = "platform", "Platform"


A = ActorType
# Routing matrix: origin → allowed targets.
ROUTES: dict[str, tuple[str, ...]] = {
    A.CUSTOMER: (A.TENANT,),
    A.TENANT: (A.PARTNER, A.PLATFORM),
    A.PARTNER: (A.PLATFORM, A.TENANT),
    A.PLATFORM: (A.TENANT, A.PARTNER),
}


class AssignmentMode(models.TextChoices):
    OFF = "off", "Off"
    ROUND_ROBIN = "round_robin", "Round robin"
    LEAST_LOADED = "least_loaded", "Least loaded"


class TimelineKind(models.TextChoices):
    CREATED = "created", "Created"
    STATUS = "status_changed", "Status changed"
    PRIORITY = "priority_changed", "Priority changed"
    ASSIGNED = "assigned", "Assigned"
    ESCALATED = "escalated", "Escalated"
    MESSAGE = "message", "Message"
    FIRST_RESPONSE = "first_response", "First response"
    SLA_AT_RISK = "sla_at_risk", "SLA at risk"
    SLA_BREACHED = "sla_breached", "SLA breached"
    ATTACHMENT = "attachment", "Attachment"
    SLA_PAUSED = "sla_maintenance", "SLA moved by maintenance"


class SlaTarget(models.TextChoices):
    FIRST_RESPONSE = "first_response", "First response"
    RESOLUTION = "resolution", "Resolution"
