"""Serializers of the targets API. Secrets are write-only (placeholder on read)."""

from __future__ import annotations

from rest_framework import serializers

from apps.core.api.serializers import ScopedModelSerializer, WriteOnlySecretField

from ..definition import STEP_SCHEMAS  # noqa: F401 - referenced in docs
from ..models import Credential, Job, JobRun, JobRunOutput, JobRunStep, JobSchedule, JobVersion, Target, TargetGroup
from ..scheduling import next_runs


class CredentialSerializer(ScopedModelSerializer):
    secret = WriteOnlySecretField(help_text="Write-only; never returned.")
    passphrase = WriteOnlySecretField(help_text="Write-only passphrase of an SSH key.")
    has_secret = serializers.BooleanField(read_only=True)

    class Meta:
        model = Credential
        fields = ["id", "tenant", "name", "kind", "username", "description", "secret", "passphrase", "has_secret", "rotated_at", "created_at", "updated_at"]
        read_only_fields = ["id", "rotated_at", "created_at", "updated_at"]
        extra_kwargs = {"tenant": {"required": False}}
        validators = []  # uniqueness is checked by the service's full_clean (same message as the admin)


class CredentialRotateSerializer(serializers.Serializer):
    secret = serializers.CharField(trim_whitespace=False, write_only=True)
    passphrase = serializers.CharField(trim_whitespace=False, write_only=True, required=False, allow_blank=True)


class CredentialShareSerializer(serializers.Serializer):
    user = serializers.IntegerField()
    permission = serializers.ChoiceField(choices=["view", "change"], default="view")
    revoke = serializers.BooleanField(default=False)


class TargetGroupSerializer(ScopedModelSerializer):
    class Meta:
        model = TargetGroup
        fields = ["id", "tenant", "name", "description", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]
        extra_kwargs = {"tenant": {"required": False}}
        validators = []  # uniqueness is checked by the service's full_clean (same message as the admin)


class TargetSerializer(ScopedModelSerializer):
    class Meta:
        model = Target
        fields = [
            "id", "tenant", "name", "hostname", "os", "protocol", "port", "winrm_transport", "winrm_scheme", "verify_tls",
            "credential", "tags", "groups", "enabled", "last_test_at", "last_test_result", "last_test_message", "created_at", "updated_at",
        ]
        read_only_fields = ["id", "last_test_at", "last_test_result", "last_test_message", "created_at", "updated_at"]
        extra_kwargs = {"tenant": {"required": False}, "groups": {"required": False}}
        validators = []


class JobVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = JobVersion
        fields = ["id", "number", "description", "parameters_schema", "steps", "concurrency", "on_failure", "notify", "run_timeout_seconds", "created_by", "created_at"]
        read_only_fields = fields


class JobSerializer(ScopedModelSerializer):
    """A job with its current definition flattened in; writing definition fields creates a version."""

    description = serializers.CharField(required=False, allow_blank=True)
    parameters_schema = serializers.JSONField(required=False)
    steps = serializers.JSONField(required=False)
    concurrency = serializers.IntegerField(required=False, min_value=1, max_value=1000)
    on_failure = serializers.ChoiceField(choices=["stop_target", "continue"], required=False)
    notify = serializers.JSONField(required=False)
    run_timeout_seconds = serializers.IntegerField(required=False, min_value=1)
    version = serializers.IntegerField(source="current_version.number", read_only=True)

    class Meta:
        model = Job
        fields = [
            "id", "tenant", "name", "overlap_policy", "enabled", "default_targets", "default_groups", "version",
            "description", "parameters_schema", "steps", "concurrency", "on_failure", "notify", "run_timeout_seconds", "created_at", "updated_at",
        ]
        read_only_fields = ["id", "version", "created_at", "updated_at"]
        extra_kwargs = {"tenant": {"required": False}, "default_targets": {"required": False}, "default_groups": {"required": False}}
        validators = []

    def to_representation(self, instance):
        data = super().to_representation(instance)
        v = instance.current_version
        for name in ("description", "parameters_schema", "steps", "concurrency", "on_failure", "notify", "run_timeout_seconds"):
            data[name] = getattr(v, name) if v else None
        return data

    def validate(self, attrs):
        if self.instance is None and "steps" not in attrs:
            raise serializers.ValidationError({"steps": "A job needs steps."})
        return attrs


class RunRequestSerializer(serializers.Serializer):
    params = serializers.JSONField(required=False, default=dict)
    targets = serializers.ListField(child=serializers.IntegerField(), required=False, help_text="Target ids; overrides the job's defaults.")
    groups = serializers.ListField(child=serializers.IntegerField(), required=False)
    check_mode = serializers.BooleanField(default=False, help_text="Connect and render every step without executing it.")


class JobScheduleSerializer(ScopedModelSerializer):
    next_runs = serializers.SerializerMethodField()

    class Meta:
        model = JobSchedule
        fields = [
            "id", "tenant", "job", "name", "cron", "interval_seconds", "timezone", "params", "targets", "groups", "enabled",
            "grace_seconds", "last_fired_at", "last_error", "next_runs", "created_at", "updated_at",
        ]
        read_only_fields = ["id", "tenant", "last_fired_at", "last_error", "next_runs", "created_at", "updated_at"]
        extra_kwargs = {"targets": {"required": False}, "groups": {"required": False}}
        validators = []

    def get_next_runs(self, obj) -> list[str]:
        return [d.isoformat() for d in next_runs(obj, count=10)]

    def validate(self, attrs):
        return attrs  # the service validates (cron, zone, params against the job's schema)


class JobRunSerializer(ScopedModelSerializer):
    job_name = serializers.CharField(source="job.name", read_only=True)
    version_number = serializers.IntegerField(source="version.number", read_only=True)
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)

    class Meta:
        model = JobRun
        fields = [
            "id", "tenant", "job", "job_name", "version", "version_number", "params", "trigger", "triggered_by", "schedule", "retry_of",
            "check_mode", "status", "created_at", "started_at", "finished_at", "heartbeat_at", "duration_seconds",
            "cancel_requested_at", "error", "target_count", "failed_target_count", "counts",
        ]
        read_only_fields = fields


class JobRunStepSerializer(serializers.ModelSerializer):
    class Meta:
        model = JobRunStep
        fields = ["id", "target", "target_name", "step_index", "step_name", "step_type", "status", "exit_code", "rendered",
                  "stdout", "stderr", "error", "started_at", "finished_at"]
        read_only_fields = fields


class JobRunOutputSerializer(serializers.ModelSerializer):
    target_name = serializers.CharField(source="step.target_name", read_only=True)
    step_index = serializers.IntegerField(source="step.step_index", read_only=True)

    class Meta:
        model = JobRunOutput
        fields = ["id", "step", "target_name", "step_index", "stream", "data", "created_at"]
        read_only_fields = fields


class OutputPageSerializer(serializers.Serializer):
    chunks = JobRunOutputSerializer(many=True)
    next_after = serializers.IntegerField()
    finished = serializers.BooleanField()
    status = serializers.CharField()


class ExecutorStatusSerializer(serializers.Serializer):
    queue = serializers.CharField()
    queue_length = serializers.IntegerField(allow_null=True)
    workers = serializers.ListField(child=serializers.CharField())
    running_runs = serializers.IntegerField()
    queued_runs = serializers.IntegerField()
