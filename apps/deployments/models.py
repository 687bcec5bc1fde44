"""Models of the deployments app: instances, runbooks, operations (with their batches), schedules
and customer-service provisioning runs.

An operation is a row-driven state machine: every batch it starts is an `OperationBatch` pointing
at the targets `JobRun` that executes it, so a worker restart loses nothing — the next job-run
event (or the sweeper) picks the operation up from its rows.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.core.choices import Role
from apps.core.models import PortalManager, TenantOwnedModel

from .choices import (
    BatchStatus,
    Environment,
    InstanceStatus,
    OperationKind,
    OperationStatus,
    Phase,
    ProvisioningStatus,
    RunbookAction,
    Strategy,
    Trigger,
)

R = Role


def scope_through(queryset, ctx, tenant_path: str):
    """The tenant filter of `TenantOwnedModel.scope_queryset` for child rows."""
    from apps.core.choices import OrgKind

    if ctx.is_platform:
        return queryset
    if ctx.kind == OrgKind.TENANT and ctx.tenant_id:
        return queryset.filter(**{tenant_path: ctx.tenant_id})
    return queryset.none()


class Instance(TenantOwnedModel):
    """A deployed instance of the tenant's product on a set of targets (hosts)."""

    PORTAL_ROLE_ACTIONS = {"delete": {R.OWNER, R.ADMIN}}

    name = models.CharField(max_length=120)
    environment = models.CharField(max_length=12, choices=Environment.choices, default=Environment.STAGING)
    version = models.CharField(max_length=60, blank=True, default="")
    previous_version = models.CharField(max_length=60, blank=True, default="", editable=False)
    status = models.CharField(max_length=12, choices=InstanceStatus.choices, default=InstanceStatus.PROVISIONING, editable=False)
    cpu_cores = models.PositiveIntegerField(default=1, validators=[MinValueValidator(1), MaxValueValidator(1024)])
    memory_gb = models.PositiveIntegerField(default=1, validators=[MinValueValidator(1), MaxValueValidator(65536)])
    storage_gb = models.PositiveIntegerField(default=10, validators=[MinValueValidator(1), MaxValueValidator(1048576)])
    targets = models.ManyToManyField("targets.Target", blank=True, related_name="deployment_instances")
    config = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="deployments_instance_unique_name")]
        indexes = [models.Index(fields=["tenant", "status"], name="deploy_inst_status_idx")]

    def __str__(self) -> str:
        return self.name

    @property
    def labels(self) -> dict:
        """Labels for maintenance-window matchers (`{"instance": "<name>"}`)."""
        return {"instance": self.name, "environment": self.environment}

    def clean(self):
        if not isinstance(self.config, dict):
            raise ValidationError({"config": "The configuration is a JSON object."})


class Runbook(TenantOwnedModel):
    """Which job runs an operation: per tenant, or for one instance (which wins over the tenant's).

    The job runs on the instance's targets with the operation's parameters (only the parameters
    the job's schema declares are passed). Strategy and batch size are the defaults of operations
    that use this runbook."""

    action = models.CharField(max_length=40, choices=RunbookAction.choices)
    instance = models.ForeignKey(Instance, null=True, blank=True, on_delete=models.CASCADE, related_name="runbooks",
                                 help_text="Empty: the tenant's runbook for every instance.")
    job = models.ForeignKey("targets.Job", on_delete=models.PROTECT, related_name="deployment_runbooks")
    strategy = models.CharField(max_length=12, choices=Strategy.choices, default=Strategy.ALL_AT_ONCE)
    batch_percent = models.PositiveSmallIntegerField(default=25, validators=[MinValueValidator(1), MaxValueValidator(100)],
                                                     help_text="Rolling: share of the targets per batch.")
    health_gate = models.BooleanField(default=True, help_text="Rolling: check the instance's endpoints between batches.")
    description = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["action"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "action"], condition=Q(instance__isnull=True), name="deployments_runbook_tenant_uniq"),
            models.UniqueConstraint(fields=["instance", "action"], condition=Q(instance__isnull=False), name="deployments_runbook_instance_uniq"),
        ]

    def __str__(self) -> str:
        scope = self.instance.name if self.instance_id else "tenant"
        return f"{self.get_action_display()} ({scope}) → {self.job}"

    def clean(self):
        errors = {}
        if self.job_id and self.tenant_id and self.job.tenant_id != self.tenant_id:
            errors["job"] = "The job belongs to another tenant."
        if self.instance_id and self.tenant_id and self.instance.tenant_id != self.tenant_id:
            errors["instance"] = "The instance belongs to another tenant."
        if self.instance_id and self.action == RunbookAction.CUSTOMER_SERVICE_PROVISION:
            errors["instance"] = "Customer-service provisioning runbooks are per tenant."
        if errors:
            raise ValidationError(errors)


class Operation(TenantOwnedModel):
    """One operation on an instance (provision, upgrade, scale, suspend, resume, destroy), run as
    its runbook's job on the instance's targets, all at once or in rolling batches with a health
    gate between them; approvals (four eyes), maintenance windows and rollback on failure."""

    PORTAL_ROLE_ACTIONS = {
        "add": {R.OWNER, R.ADMIN, R.OPERATOR},
        "approve": {R.OWNER, R.ADMIN},
        "reject": {R.OWNER, R.ADMIN},
        "cancel": {R.OWNER, R.ADMIN, R.OPERATOR},
        "run": {R.OWNER, R.ADMIN, R.OPERATOR},
    }

    instance = models.ForeignKey(Instance, on_delete=models.PROTECT, related_name="operations")
    operation = models.CharField(max_length=10, choices=OperationKind.choices)
    parameters = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=OperationStatus.choices, default=OperationStatus.SCHEDULED)
    strategy = models.CharField(max_length=12, choices=Strategy.choices, default=Strategy.ALL_AT_ONCE)
    batch_percent = models.PositiveSmallIntegerField(default=100, validators=[MinValueValidator(1), MaxValueValidator(100)])
    health_gate = models.BooleanField(default=True)
    rollback_on_failure = models.BooleanField(default=False)
    require_window = models.BooleanField(default=False, help_text="Wait for an active maintenance window before starting.")
    runbook = models.ForeignKey(Runbook, null=True, blank=True, on_delete=models.SET_NULL, related_name="operations")
    job = models.ForeignKey("targets.Job", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.USER)
    triggered_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    schedule = models.ForeignKey("DeploymentSchedule", null=True, blank=True, on_delete=models.SET_NULL, related_name="operations")
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    approved_at = models.DateTimeField(null=True, blank=True)
    approval_expires_at = models.DateTimeField(null=True, blank=True)
    from_version = models.CharField(max_length=60, blank=True, default="")
    instance_status_before = models.CharField(max_length=12, blank=True, default="")
    phase = models.CharField(max_length=10, choices=Phase.choices, default=Phase.FORWARD)
    waiting_since = models.DateTimeField(null=True, blank=True, help_text="Set while waiting for a maintenance window.")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    window_id = models.BigIntegerField(null=True, blank=True, help_text="The maintenance window this operation opened.")
    error = models.TextField(blank=True, default="")
    log = models.JSONField(default=list, blank=True, help_text="Step log: [{at, message}].")

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["tenant", "status"], name="deploy_op_status_idx"),
            models.Index(fields=["instance", "status"], name="deploy_op_instance_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_operation_display()} {self.instance.name} #{self.pk}"

    def add_log(self, message: str) -> None:
        self.log = [*(self.log or []), {"at": timezone.now().isoformat(), "message": message}]

    @property
    def job_run_ids(self) -> list[int]:
        return [b.job_run_id for b in self.batches.all() if b.job_run_id]


class OperationBatch(models.Model):
    """One batch of an operation: its targets, the job run that executed it, and the health gate."""

    operation = models.ForeignKey(Operation, on_delete=models.CASCADE, related_name="batches")
    phase = models.CharField(max_length=10, choices=Phase.choices, default=Phase.FORWARD)
    index = models.PositiveIntegerField()
    target_ids = models.JSONField(default=list)
    target_names = models.JSONField(default=list)
    status = models.CharField(max_length=10, choices=BatchStatus.choices, default=BatchStatus.PENDING)
    job_run = models.ForeignKey("targets.JobRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="deployment_batches")
    gate_passed = models.BooleanField(null=True, blank=True)
    gate_detail = models.TextField(blank=True, default="")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = PortalManager()

    class Meta:
        ordering = ["operation", "phase", "index"]
        constraints = [models.UniqueConstraint(fields=["operation", "phase", "index"], name="deployments_batch_uniq")]
        indexes = [models.Index(fields=["status", "started_at"], name="deploy_batch_status_idx")]

    def __str__(self) -> str:
        return f"{self.operation_id} {self.phase} batch {self.index + 1}"

    @classmethod
    def scope_queryset(cls, queryset, ctx, action):
        return scope_through(queryset, ctx, "operation__tenant_id")


class DeploymentSchedule(TenantOwnedModel):
    """A scheduled operation, fired by the due-schedule dispatcher (apps/core/duefire.py) when
    `next_fire_at` comes; paused = `enabled` False (`next_fire_at` NULL).

    Its timing is kept on a display-only, always disabled django-celery-beat PeriodicTask (a
    ClockedSchedule one-off, a CrontabSchedule in the tenant's time zone, or an IntervalSchedule)
    that the properties below read; it is changed on the schedule's own page (`schedule_retime`).
    Deleting the PeriodicTask deletes the schedule."""

    PORTAL_ROLE_ACTIONS = {"add": {R.OWNER, R.ADMIN, R.OPERATOR}, "pause": {R.OWNER, R.ADMIN, R.OPERATOR},
                           "resume": {R.OWNER, R.ADMIN, R.OPERATOR}}

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    instance = models.ForeignKey(Instance, null=True, blank=True, on_delete=models.CASCADE, related_name="schedules")
    operation = models.CharField(max_length=10, choices=OperationKind.choices)
    parameters = models.JSONField(default=dict, blank=True)
    scheduled_at = models.DateTimeField(help_text="When (one-time) or from when (recurring) it fires.")
    timezone = models.CharField(max_length=64, default="UTC")
    periodic_task = models.OneToOneField("django_celery_beat.PeriodicTask", on_delete=models.CASCADE, related_name="deployment_schedule")
    metadata = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    last_fired_at = models.DateTimeField(null=True, blank=True)
    fire_count = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    enabled = models.BooleanField(default=True, help_text="Paused when off.")
    next_fire_at = models.DateTimeField(null=True, blank=True, db_index=True, editable=False,
                                        help_text="When the dispatcher fires it next (empty: paused, done, or never).")

    class Meta:
        ordering = ["scheduled_at"]

    def __str__(self) -> str:
        return f"{self.get_operation_display()} {self.instance or ''} ({self.schedule_type})"

    @property
    def schedule_type(self) -> str:
        from .choices import ScheduleType

        return ScheduleType.ONE_TIME if self.periodic_task.clocked_id else ScheduleType.RECURRING

    @property
    def cron_expression(self) -> str | None:
        c = self.periodic_task.crontab
        if c is None:
            return None
        return f"{c.minute} {c.hour} {c.day_of_month} {c.month_of_year} {c.day_of_week}"

    @property
    def interval_seconds(self) -> int | None:
        i = self.periodic_task.interval
        if i is None:
            return None
        factor = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400, "microseconds": 0}.get(i.period, 1)
        return i.every * factor

    @property
    def next_run_at(self):
        from .scheduling import next_run

        return next_run(self)


class ProvisioningRun(TenantOwnedModel):
    """A customer-service provisioning (the `customer_service.provision` runbook's job run) whose
    result is reported back to the tenants app."""

    PORTAL_ROLE_ACTIONS = {"add": set(), "change": set(), "delete": set()}

    service_id = models.BigIntegerField(db_index=True, help_text="tenants.CustomerService id.")
    request_event_id = models.UUIDField(unique=True)
    runbook = models.ForeignKey(Runbook, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    job_run = models.OneToOneField("targets.JobRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=10, choices=ProvisioningStatus.choices, default=ProvisioningStatus.RUNNING)
    error = models.TextField(blank=True, default="")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"provisioning of service {self.service_id}"
