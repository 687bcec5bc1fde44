"""Choices of the customers part of the tenants app (no bare status strings in logic)."""

from django.db import models


class CustomerState(models.TextChoices):
    REGISTERED = "registered", "Registered"
    VERIFIED = "verified", "Verified"
    ONBOARDING = "onboarding", "Onboarding"
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"
    TERMINATED = "terminated", "Terminated"


S = CustomerState
# The lifecycle state machine: state → states it may move to.
CUSTOMER_TRANSITIONS: dict[str, tuple[str, ...]] = {
    S.REGISTERED: (S.VERIFIED, S.TERMINATED),
    S.VERIFIED: (S.ONBOARDING, S.TERMINATED),
    S.ONBOARDING: (S.ACTIVE, S.TERMINATED),
    S.ACTIVE: (S.SUSPENDED, S.TERMINATED),
    S.SUSPENDED: (S.ACTIVE, S.TERMINATED),
    S.TERMINATED: (),
}


class ServiceStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PROVISIONING = "provisioning", "Provisioning"
    ACTIVE = "active", "Active"
    FAILED = "failed", "Failed"
    SUSPENDED = "suspended", "Suspended"
    TERMINATED = "terminated", "Terminated"


SS = ServiceStatus
SERVICE_TRANSITIONS: dict[str, tuple[str, ...]] = {
    SS.PENDING: (SS.PROVISIONING, SS.ACTIVE, SS.FAILED, SS.TERMINATED),
    SS.PROVISIONING: (SS.ACTIVE, SS.FAILED, SS.TERMINATED),
    SS.FAILED: (SS.PENDING, SS.PROVISIONING, SS.TERMINATED),
    SS.ACTIVE: (SS.SUSPENDED, SS.TERMINATED),
    SS.SUSPENDED: (SS.ACTIVE, SS.TERMINATED),
    SS.TERMINATED: (),
}


class ExportFormat(models.TextChoices):
    JSON = "json", "JSON"
    CSV = "csv", "CSV"


class ExportStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    EXPIRED = "expired", "Expired"


class DeletionStatus(models.TextChoices):
    PENDING = "pending", "Pending (grace period)"
    RUNNING = "running", "Erasing"
    CANCELLED = "cancelled", "Cancelled"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
