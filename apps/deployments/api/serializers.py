from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.core.api.serializers import ScopedModelSerializer, StrictFieldsMixin
from apps.maintenance.api.serializers import MaintenanceWindowSerializer

from ..choices import OperationKind, Strategy
from ..models import DeploymentSchedule, Instance, Operation, OperationBatch, Runbook


class InstanceSerializer(ScopedModelSerializer):
    class Meta:
        model = Instance
        fields = ["id", "tenant", "name", "environment", "version", "previous_version", "status", "cpu_cores", "memory_gb",
                  "storage_gb", "targets", "config", "created_at", "updated_at"]
        read_only_fields = ["id", "previous_version", "status", "created_at", "updated_at"]
        extra_kwargs = {"tenant": {"required": False}, "targets": {"required": False}}
        validators = []  # uniqueness is checked by the service's full_clean (same message as the admin)


class DeploymentRunbookSerializer(ScopedModelSerializer):
    class Meta:
        model = Runbook
        fields = ["id", "tenant", "action", "instance", "job", "strategy", "batch_percent", "health_gate", "description", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]
        extra_kwargs = {"tenant": {"required": False}}
        validators = []


class OperationBatchSerializer(serializers.ModelSerializer):
    class Meta:
        model = OperationBatch
        fields = ["id", "phase", "index", "target_names", "status", "job_run", "gate_passed", "gate_detail", "started_at", "finished_at"]
        read_only_fields = fields


class OperationSerializer(ScopedModelSerializer):
    batches = OperationBatchSerializer(many=True, read_only=True)
    job_run_ids = serializers.ListField(child=serializers.IntegerField(), read_only=True)

    class Meta:
        model = Operation
        fields = ["id", "tenant", "instance", "operation", "parameters", "status", "strategy", "batch_percent", "health_gate",
                  "rollback_on_failure", "require_window", "runbook", "job", "trigger", "triggered_by", "schedule", "approved_by",
                  "approved_at", "approval_expires_at", "from_version", "phase", "waiting_since", "started_at", "finished_at",
                  "error", "log", "batches", "job_run_ids", "created_at"]
        read_only_fields = [f for f in fields if f not in ("instance", "operation", "parameters", "strategy", "batch_percent", "require_window")]


class OperationRequestSerializer(serializers.Serializer):
    """Request an operation (parameters are checked by operation type in the service)."""

    instance = serializers.PrimaryKeyRelatedField(queryset=Instance.objects.all())
    operation = serializers.ChoiceField(choices=OperationKind.choices)
    parameters = serializers.JSONField(required=False, default=dict)
    strategy = serializers.ChoiceField(choices=Strategy.choices, required=False)
    batch_percent = serializers.IntegerField(required=False, min_value=1, max_value=100)
    require_window = serializers.BooleanField(required=False, default=False)

    def get_fields(self):
        fields = super().get_fields()
        request = self.context.get("request")
        fields["instance"].queryset = Instance.objects.visible_to(getattr(request, "user", None))
        return fields


class RejectSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class ProvisionRequestSerializer(serializers.Serializer):
    version = serializers.CharField(required=False)
    cpu_cores = serializers.IntegerField(required=False, min_value=1)
    memory_gb = serializers.IntegerField(required=False, min_value=1)
    storage_gb = serializers.IntegerField(required=False, min_value=1)
    config = serializers.JSONField(required=False)


class UpgradeRequestSerializer(serializers.Serializer):
    to_version = serializers.CharField()
    rollback_on_failure = serializers.BooleanField(required=False, default=False)


class ScaleRequestSerializer(serializers.Serializer):
    cpu_cores = serializers.IntegerField(required=False, min_value=1)
    memory_gb = serializers.IntegerField(required=False, min_value=1)
    storage_gb = serializers.IntegerField(required=False, min_value=1)


class ScheduledDeploymentRequestSerializer(StrictFieldsMixin, serializers.Serializer):
    """Seed 000 ScheduledDeploymentRequest."""

    operation = serializers.ChoiceField(choices=OperationKind.choices)
    scheduled_at = serializers.DateTimeField()
    provision_request = ProvisionRequestSerializer(required=False, allow_null=True)
    upgrade_request = UpgradeRequestSerializer(required=False, allow_null=True)
    scale_request = ScaleRequestSerializer(required=False, allow_null=True)
    instance_id = serializers.IntegerField(required=False, allow_null=True)
    cron_expression = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    interval_seconds = serializers.IntegerField(required=False, allow_null=True)
    metadata = serializers.JSONField(required=False, allow_null=True)


class ScheduledDeploymentResponseSerializer(serializers.Serializer):
    """Seed 000 ScheduledDeploymentResponse."""

    schedule_id = serializers.CharField()
    schedule_type = serializers.ChoiceField(choices=[("one_time", "one_time"), ("recurring", "recurring")])
    operation = serializers.CharField()
    scheduled_at = serializers.DateTimeField(allow_null=True)
    cron_expression = serializers.CharField(allow_null=True)
    interval_seconds = serializers.IntegerField(allow_null=True)
    next_run_at = serializers.DateTimeField(allow_null=True)
    enabled = serializers.BooleanField()
    parameters = serializers.JSONField()


class DeploymentScheduleSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="pk", read_only=True)
    schedule_id = serializers.CharField(source="pk", read_only=True)
    schedule_type = serializers.CharField(read_only=True)
    cron_expression = serializers.CharField(read_only=True, allow_null=True)
    interval_seconds = serializers.IntegerField(read_only=True, allow_null=True)
    next_run_at = serializers.DateTimeField(read_only=True, allow_null=True)
    enabled = serializers.BooleanField(read_only=True)

    class Meta:
        model = DeploymentSchedule
        fields = ["id", "schedule_id", "tenant", "instance", "operation", "parameters", "scheduled_at", "timezone", "schedule_type",
                  "cron_expression", "interval_seconds", "next_run_at", "enabled", "metadata", "created_by", "last_fired_at",
                  "fire_count", "last_error", "periodic_task", "created_at"]
        read_only_fields = fields


class DeploymentWindowSerializer(MaintenanceWindowSerializer):
    """A maintenance window seen from deployments: tenant-wide, or scoped to instances."""

    instances = serializers.PrimaryKeyRelatedField(many=True, queryset=Instance.objects.all(), required=False, write_only=True)

    class Meta(MaintenanceWindowSerializer.Meta):
        fields = [*MaintenanceWindowSerializer.Meta.fields, "instances", "instance_ids"]

    instance_ids = serializers.SerializerMethodField()

    def get_fields(self):
        fields = super().get_fields()
        request = self.context.get("request")
        fields["instances"].child_relation.queryset = Instance.objects.visible_to(getattr(request, "user", None))
        return fields

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_instance_ids(self, obj) -> list[int]:
        from django.contrib.contenttypes.models import ContentType

        ct = ContentType.objects.get_for_model(Instance)
        return [o.object_id for o in obj.objects_in_scope.all() if o.content_type_id == ct.pk]
