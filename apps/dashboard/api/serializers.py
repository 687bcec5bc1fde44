from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.core.api.serializers import ScopedModelSerializer
from apps.tenants.api.serializers import TenantConfigSerializer

from ..models import AccountHealth, KpiCheckpoint, KpiTarget


class AccountHealthSerializer(ScopedModelSerializer):
    tenant = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    customer_name = serializers.CharField(source="customer.name", read_only=True, default=None)
    account_number = serializers.CharField(source="customer.account_number", read_only=True, default=None)
    reasons = serializers.SerializerMethodField()

    class Meta:
        model = AccountHealth
        fields = ["id", "tenant", "customer", "customer_name", "account_number", "score", "grade", "reasons", "metrics", "computed_at"]
        read_only_fields = fields

    @extend_schema_field({"type": "array", "items": {"type": "object", "properties": {
        "factor": {"type": "string"}, "count": {"type": "number"}, "points": {"type": "integer"}, "text": {"type": "string"}}}})
    def get_reasons(self, obj):
        return obj.reasons


class KpiCheckpointSerializer(ScopedModelSerializer):
    tenant = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = KpiCheckpoint
        fields = ["id", "tenant", "kpi", "period", "period_start", "period_end", "target_percent", "value_percent", "samples",
                  "outcome", "alert", "ticket"]
        read_only_fields = fields


class KpiTargetSerializer(TenantConfigSerializer):
    """A tenant's target for one KPI; the KPI of a target does not change once created."""

    class Meta:
        model = KpiTarget
        fields = ["id", "tenant", "kpi", "target_percent", "period", "min_samples", "enabled", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]
        fixed_fields = ("kpi",)
        validators: list = []  # (tenant, kpi) uniqueness is checked by the service's full_clean()


class DashboardSummarySerializer(serializers.Serializer):
    """Shape of `GET /api/v1/dashboard/summary` (for the schema)."""

    tenants = serializers.IntegerField()
    computed_at = serializers.DateTimeField(allow_null=True)
    tickets_open = serializers.DictField()
    sla_compliance = serializers.DictField()
    alerts = serializers.DictField()
    jobs = serializers.DictField()
    endpoints = serializers.DictField()
    notifications = serializers.DictField()
    deployments = serializers.DictField()
    health = AccountHealthSerializer(many=True)
    checkpoints = KpiCheckpointSerializer(many=True)
