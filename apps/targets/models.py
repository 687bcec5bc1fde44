"""Models of the targets app: credentials, targets and groups, versioned jobs, schedules, runs.

Output of a run is stored twice, on purpose: each step keeps a capped stdout/stderr (for the
per-target result), and `JobRunOutput` keeps the chunks in arrival order with a monotonically
growing id that clients poll with `?after=<id>` (a tail API that never renders a run whole).
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords

from apps.core.choices import OrgKind
from apps.core.crypto import EncryptedTextField, decrypt
from apps.core.models import PortalManager, TenantOwnedModel
from apps.core.tenancy import Acting

from .choices import (
    SSH_KINDS,
    WINRM_KINDS,
    ConnectionResult,
    CredentialKind,
    OnFailure,
    OverlapPolicy,
    Protocol,
    RunStatus,
    StepStatus,
    Stream,
    TargetOS,
    Trigger,
    WinRMScheme,
)


def scope_through(queryset, ctx: Acting, tenant_path: str, partner_visible: bool = False):
    """The tenant filter of `TenantOwnedModel.scope_queryset`, through a relation (child rows)."""
    if ctx.is_platform:
        return queryset
    if ctx.kind == OrgKind.TENANT and ctx.tenant_id:
        return queryset.filter(**{tenant_path: ctx.tenant_id})
    if ctx.kind == OrgKind.PARTNER and partner_visible and ctx.served_tenant_ids:
        return queryset.filter(**{f"{tenant_path}__in": ctx.served_tenant_ids})
    return queryset.none()


class Credential(TenantOwnedModel):
    """A secret used to reach targets (WinRM, SSH password or key, API token). The secret and the
    key passphrase are sealed with AES-GCM under the newest key version; only `get_secret()` and
    `get_passphrase()` decrypt. Shared with single users through django-guardian grants."""

    PORTAL_OBJECT_GRANTS = True
    # Viewers and support agents see a credential only when it is shared with them (guardian).
    PORTAL_ROLE_ACTIONS = {"view": {"owner", "admin", "operator"}, "rotate": {"owner", "admin"}, "share": {"owner", "admin"}}

    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=20, choices=CredentialKind.choices)
    username = models.CharField(max_length=200, blank=True)
    secret = EncryptedTextField(blank=True, editable=False)
    passphrase = EncryptedTextField(blank=True, editable=False)
    description = models.TextField(blank=True)
    rotated_at = models.DateTimeField(null=True, blank=True, editable=False)

    # Audit of the definition, never of the sealed columns.
    history = HistoricalRecords(excluded_fields=["secret", "passphrase"])

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="targets_credential_unique_name")]

    def __str__(self) -> str:
        return self.name

    def get_secret(self) -> str:
        return decrypt(self.secret) if self.secret else ""

    def get_passphrase(self) -> str:
        return decrypt(self.passphrase) if self.passphrase else ""

    @property
    def has_secret(self) -> bool:
        return bool(self.secret)


class TargetGroup(TenantOwnedModel):
    """A named set of targets (a job's default targets, a schedule's scope)."""

    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="targets_group_unique_name")]

    def __str__(self) -> str:
        return self.name


class WinRMTransport(models.TextChoices):
    NTLM = "ntlm", "NTLM"
    BASIC = "basic", "Basic"
    KERBEROS = "kerberos", "Kerberos"


class Target(TenantOwnedModel):
    """A host that jobs run on, over SSH or WinRM, with the credential that reaches it."""

    name = models.CharField(max_length=200)
    hostname = models.CharField(max_length=255)
    os = models.CharField(max_length=10, choices=TargetOS.choices, default=TargetOS.LINUX)
    protocol = models.CharField(max_length=10, choices=Protocol.choices, default=Protocol.SSH)
    port = models.PositiveIntegerField(null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(65535)],
                                       help_text="Empty: 22 for SSH, 5985/5986 for WinRM over HTTP/HTTPS.")
    winrm_transport = models.CharField(max_length=10, choices=WinRMTransport.choices, default=WinRMTransport.NTLM)
    winrm_scheme = models.CharField(max_length=5, choices=WinRMScheme.choices, default=WinRMScheme.HTTPS)
    verify_tls = models.BooleanField(default=True)
    credential = models.ForeignKey(Credential, null=True, blank=True, on_delete=models.PROTECT, related_name="targets")
    tags = models.JSONField(default=list, blank=True)
    groups = models.ManyToManyField(TargetGroup, blank=True, related_name="targets")
    enabled = models.BooleanField(default=True)
    last_test_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_test_result = models.CharField(max_length=10, choices=ConnectionResult.choices, default="", blank=True, editable=False)
    last_test_message = models.TextField(blank=True, editable=False)

    history = HistoricalRecords(m2m_fields=[groups], excluded_fields=["last_test_at", "last_test_result", "last_test_message"])

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="targets_target_unique_name")]
        indexes = [models.Index(fields=["tenant", "enabled"], name="targets_target_enabled_idx")]

    def __str__(self) -> str:
        return self.name

    @property
    def effective_port(self) -> int:
        if self.port:
            return self.port
        if self.protocol == Protocol.SSH:
            return 22
        return 5986 if self.winrm_scheme == WinRMScheme.HTTPS else 5985

    def clean(self):
        errors = {}
        if self.credential_id and self.tenant_id and self.credential.tenant_id != self.tenant_id:
            errors["credential"] = "The credential belongs to another tenant."
        elif self.credential_id:
            kinds = SSH_KINDS if self.protocol == Protocol.SSH else WINRM_KINDS
            if self.credential.kind not in kinds:
                errors["credential"] = f"A {self.get_credential_kind_label()} credential cannot be used over {self.get_protocol_display()}."
        if not isinstance(self.tags, list) or not all(isinstance(t, str) for t in self.tags):
            errors["tags"] = "Tags are a list of strings."
        if errors:
            raise ValidationError(errors)

    def get_credential_kind_label(self) -> str:
        return self.credential.get_kind_display() if self.credential_id else ""


class Job(TenantOwnedModel):
    """A job definition. Its content (steps, parameters, limits) lives in `JobVersion`: editing a
    job creates a new version and runs point at the version they ran."""

    name = models.CharField(max_length=200)
    current_version = models.ForeignKey("JobVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+", editable=False)
    overlap_policy = models.CharField(max_length=10, choices=OverlapPolicy.choices, default=OverlapPolicy.SKIP)
    default_targets = models.ManyToManyField(Target, blank=True, related_name="jobs")
    default_groups = models.ManyToManyField(TargetGroup, blank=True, related_name="jobs")
    enabled = models.BooleanField(default=True)

    PORTAL_ROLE_ACTIONS = {"run": {"owner", "admin", "operator"}}

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="targets_job_unique_name")]

    def __str__(self) -> str:
        return self.name


class JobVersion(models.Model):
    """One immutable version of a job's definition."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    description = models.TextField(blank=True)
    parameters_schema = models.JSONField(default=dict, blank=True)
    steps = models.JSONField(default=list)
    concurrency = models.PositiveIntegerField(default=25, validators=[MinValueValidator(1), MaxValueValidator(1000)])
    on_failure = models.CharField(max_length=12, choices=OnFailure.choices, default=OnFailure.STOP_TARGET)
    notify = models.JSONField(default=dict, blank=True)
    run_timeout_seconds = models.PositiveIntegerField(default=3600, validators=[MinValueValidator(1)])
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = PortalManager()

    class Meta:
        ordering = ["job", "-number"]
        constraints = [models.UniqueConstraint(fields=["job", "number"], name="targets_jobversion_unique_number")]

    def __str__(self) -> str:
        return f"{self.job.name} v{self.number}"

    @classmethod
    def scope_queryset(cls, queryset, ctx, action):
        return scope_through(queryset, ctx, "job__tenant_id")


class JobSchedule(TenantOwnedModel):
    """A schedule of one job with its own parameters and targets (crontab in a time zone, or an
    interval), fired by the due-schedule dispatcher when `next_fire_at` comes (apps/core/duefire.py);
    a display-only, disabled django-celery-beat PeriodicTask records its timing for beat's admin."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="schedules")
    name = models.CharField(max_length=200)
    cron = models.CharField(max_length=120, blank=True, help_text='"m h dom mon dow", e.g. "0 3 * * 1-5".')
    interval_seconds = models.PositiveIntegerField(null=True, blank=True, validators=[MinValueValidator(60)])
    timezone = models.CharField(max_length=64, default="UTC")
    params = models.JSONField(default=dict, blank=True)
    targets = models.ManyToManyField(Target, blank=True, related_name="+")
    groups = models.ManyToManyField(TargetGroup, blank=True, related_name="+")
    enabled = models.BooleanField(default=True)
    grace_seconds = models.PositiveIntegerField(default=600, help_text="Raise an alert when a due run has not started after this long.")
    periodic_task = models.OneToOneField("django_celery_beat.PeriodicTask", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False)
    last_fired_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_missed_alert_for = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.TextField(blank=True, editable=False)
    next_fire_at = models.DateTimeField(null=True, blank=True, db_index=True, editable=False,
                                        help_text="When the dispatcher fires it next (empty: disabled, or a cron no date matches).")

    class Meta:
        ordering = ["job", "name"]
        constraints = [models.UniqueConstraint(fields=["job", "name"], name="targets_schedule_unique_name")]

    def __str__(self) -> str:
        return f"{self.job.name}: {self.name}"

    def clean(self):
        from .scheduling import validate_schedule_fields

        validate_schedule_fields(self)
        if self.job_id and self.tenant_id and self.job.tenant_id != self.tenant_id:
            raise ValidationError({"job": "The job belongs to another tenant."})


class JobRun(TenantOwnedModel):
    """One execution of one job version on a set of targets; always ends in a final status with
    the error stored (the runner, cancel, or the reaper for a dead worker)."""

    PORTAL_ROLE_ACTIONS = {"cancel": {"owner", "admin", "operator"}, "retry": {"owner", "admin", "operator"}}

    job = models.ForeignKey(Job, on_delete=models.PROTECT, related_name="runs")
    version = models.ForeignKey(JobVersion, on_delete=models.PROTECT, related_name="runs")
    params = models.JSONField(default=dict, blank=True)
    trigger = models.CharField(max_length=12, choices=Trigger.choices, default=Trigger.USER)
    triggered_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    schedule = models.ForeignKey(JobSchedule, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs")
    retry_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retries")
    check_mode = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    target_count = models.PositiveIntegerField(default=0)
    counts = models.JSONField(default=dict, blank=True, help_text="Steps per status.")
    failed_target_count = models.PositiveIntegerField(default=0)
    worker = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "heartbeat_at"], name="targets_run_status_hb_idx"),
            models.Index(fields=["job", "status"], name="targets_run_job_status_idx"),
        ]

    def __str__(self) -> str:
        return f"run #{self.pk} of {self.job.name}"

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class JobRunStep(models.Model):
    """One step of a run on one target: status, exit code, capped output, timing."""

    run = models.ForeignKey(JobRun, on_delete=models.CASCADE, related_name="steps")
    target = models.ForeignKey(Target, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    target_name = models.CharField(max_length=200)
    step_index = models.PositiveIntegerField()
    step_name = models.CharField(max_length=200)
    step_type = models.CharField(max_length=20)
    status = models.CharField(max_length=10, choices=StepStatus.choices, default=StepStatus.PENDING)
    exit_code = models.IntegerField(null=True, blank=True)
    rendered = models.TextField(blank=True, help_text="The command as rendered with the run's parameters.")
    stdout = models.TextField(blank=True)
    stderr = models.TextField(blank=True)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = PortalManager()

    class Meta:
        ordering = ["run", "target_name", "step_index"]
        indexes = [
            models.Index(fields=["run", "status"], name="targets_step_run_status_idx"),
            models.Index(fields=["run", "target_name", "step_index"], name="targets_step_run_target_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.target_name} #{self.step_index} {self.step_name}"

    @classmethod
    def scope_queryset(cls, queryset, ctx, action):
        return scope_through(queryset, ctx, "run__tenant_id")


class JobRunOutput(models.Model):
    """A chunk of a step's output in arrival order; `id` is the polling offset."""

    run = models.ForeignKey(JobRun, on_delete=models.CASCADE, related_name="output")
    step = models.ForeignKey(JobRunStep, on_delete=models.CASCADE, related_name="output")
    stream = models.CharField(max_length=6, choices=Stream.choices, default=Stream.STDOUT)
    data = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    objects = PortalManager()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["run", "id"], name="targets_output_run_id_idx")]

    @classmethod
    def scope_queryset(cls, queryset, ctx, action):
        return scope_through(queryset, ctx, "run__tenant_id")


class FailedTask(models.Model):
    """Dead-letter list: a portal Celery task that failed for good (retryable from the admin)."""

    task_name = models.CharField(max_length=200)
    task_id = models.CharField(max_length=64, blank=True)
    args = models.JSONField(default=list, blank=True)
    kwargs = models.JSONField(default=dict, blank=True)
    exception = models.TextField(blank=True)
    traceback = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    retried_at = models.DateTimeField(null=True, blank=True)
    retry_count = models.PositiveIntegerField(default=0)

    objects = PortalManager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.task_name} [{self.task_id}]"
