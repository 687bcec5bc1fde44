"""Choices of the deployments app: environments, instance and operation states, strategies."""

from django.db import models


class Environment(models.TextChoices):
    PRODUCTION = "production", "Production"
    STAGING = "staging", "Staging"
    DEVELOPMENT = "development", "Development"
    TEST = "test", "Test"


class InstanceStatus(models.TextChoices):
    PROVISIONING = "provisioning", "Provisioning"
    ACTIVE = "active", "Active"
    UPGRADING = "upgrading", "Upgrading"
    SCALING = "scaling", "Scaling"
    SUSPENDED = "suspended", "Suspended"
    DESTROYED = "destroyed", "Destroyed"
    FAILED = "failed", "Failed"


class OperationKind(models.TextChoices):
    PROVISION = "provision", "Provision"
    UPGRADE = "upgrade", "Upgrade"
    SCALE = "scale", "Scale"
    SUSPEND = "suspend", "Suspend"
    RESUME = "resume", "Resume"
    DESTROY = "destroy", "Destroy"


class RunbookAction(models.TextChoices):
    """What a runbook maps to a job: an instance operation, or a customer-service provisioning."""

    PROVISION = "provision", "Provision"
    UPGRADE = "upgrade", "Upgrade"
    SCALE = "scale", "Scale"
    SUSPEND = "suspend", "Suspend"
    RESUME = "resume", "Resume"
    DESTROY = "destroy", "Destroy"
    CUSTOMER_SERVICE_PROVISION = "customer_service.provision", "Customer service: provision"


class OperationStatus(models.TextChoices):
    PENDING_APPROVAL = "pending_approval", "Pending approval"
    SCHEDULED = "scheduled", "Scheduled"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    ROLLED_BACK = "rolled_back", "Rolled back"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_OPERATION_STATUSES = (OperationStatus.PENDING_APPROVAL, OperationStatus.SCHEDULED, OperationStatus.RUNNING)
FINAL_OPERATION_STATUSES = (OperationStatus.SUCCEEDED, OperationStatus.FAILED, OperationStatus.ROLLED_BACK, OperationStatus.CANCELLED)


class Strategy(models.TextChoices):
    ALL_AT_ONCE = "all_at_once", "All at once"
    ROLLING = "rolling", "Rolling (batches)"


class Phase(models.TextChoices):
    FORWARD = "forward", "Forward"
    ROLLBACK = "rollback", "Rollback"


class BatchStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    CHECKING = "checking", "Health gate"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class Trigger(models.TextChoices):
    USER = "user", "User"
    API = "api", "API"
    SCHEDULE = "schedule", "Schedule"
    SYSTEM = "system", "System"


class ScheduleType(models.TextChoices):
    ONE_TIME = "one_time", "One time"
    RECURRING = "recurring", "Recurring"


class ProvisioningStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
