from rest_framework import serializers

from apps.core.api.serializers import ScopedModelSerializer

from ..models import CheckResult, Endpoint, TrendRule


class EndpointSerializer(ScopedModelSerializer):
    ping_url = serializers.SerializerMethodField()

    class Meta:
        model = Endpoint
        fields = [
            "id", "tenant", "name", "kind", "host", "port", "path", "method", "verify_tls", "expected_status",
            "expected_response_ms", "match_kind", "match_keyword", "match_json_path", "match_json_value",
            "tls_expiry_warning_days", "interval_seconds", "timeout_seconds", "grace_seconds", "failure_threshold",
            "degraded_threshold", "enabled", "labels", "linked_type", "linked_id", "ping_url",
            "status", "status_since", "status_reason", "consecutive_failures", "in_maintenance", "next_check_at",
            "last_checked_at", "last_latency_ms", "last_status_code", "last_error", "last_ping_at", "tls_expires_at",
            "created_at", "updated_at",
        ]
        read_only_fields = [
            "id", "ping_url", "status", "status_since", "status_reason", "consecutive_failures", "in_maintenance",
            "next_check_at", "last_checked_at", "last_latency_ms", "last_status_code", "last_error", "last_ping_at",
            "tls_expires_at", "created_at", "updated_at",
        ]
        extra_kwargs = {"tenant": {"required": False}}
        validators: list = []  # (tenant, name) uniqueness is checked by the service's full_clean()

    def get_ping_url(self, obj) -> str | None:
        return f"/ping/{obj.ping_id}" if obj.kind == "heartbeat" else None


class CheckResultSerializer(serializers.ModelSerializer):
    class Meta:
        model = CheckResult
        fields = ["id", "endpoint", "checked_at", "scheduled_at", "status", "latency_ms", "status_code", "error", "in_maintenance"]
        read_only_fields = fields


class TrendBucketSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    checks = serializers.IntegerField()
    failures = serializers.IntegerField()
    latency_p50_ms = serializers.FloatField(allow_null=True)
    latency_p95_ms = serializers.FloatField(allow_null=True)


class TrendSerializer(serializers.Serializer):
    endpoint = serializers.IntegerField()
    window = serializers.CharField()
    since = serializers.DateTimeField()
    checks = serializers.IntegerField()
    failures = serializers.IntegerField()
    availability_percent = serializers.FloatField(allow_null=True)
    latency_p50_ms = serializers.FloatField(allow_null=True)
    latency_p95_ms = serializers.FloatField(allow_null=True)
    buckets = TrendBucketSerializer(many=True)


class HealthSummarySerializer(serializers.Serializer):
    status = serializers.CharField()
    endpoints = serializers.IntegerField()
    paused = serializers.IntegerField()
    in_maintenance = serializers.IntegerField()
    counts = serializers.DictField(child=serializers.IntegerField())
    worst = serializers.ListField(child=serializers.DictField())


class ServiceCheckSerializer(serializers.Serializer):
    status = serializers.CharField()
    checks = serializers.DictField(child=serializers.DictField())


class TrendRuleSerializer(ScopedModelSerializer):
    endpoint_name = serializers.CharField(source="endpoint.name", read_only=True)

    class Meta:
        model = TrendRule
        fields = [
            "id", "tenant", "name", "endpoint", "endpoint_name", "kind", "threshold_ms", "window_minutes", "min_samples", "days",
            "severity", "labels", "enabled", "state", "state_since", "last_value", "last_samples", "last_reason",
            "last_evaluated_at", "created_by", "created_at", "updated_at",
        ]
        read_only_fields = [
            "id", "tenant", "endpoint_name", "state", "state_since", "last_value", "last_samples", "last_reason",
            "last_evaluated_at", "created_by", "created_at", "updated_at",
        ]
        validators: list = []  # (tenant, name) uniqueness is checked by the service's full_clean()
