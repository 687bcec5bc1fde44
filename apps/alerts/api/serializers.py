from django.contrib.auth import get_user_model
from rest_framework import serializers

from apps.core.api.serializers import ScopedModelSerializer

from ..choices import AlertType, Severity
from ..models import Alert, AlertRule, AlertSubscription, EscalationPolicy, IngestToken, InhibitRule, RunbookRequest, Silence

User = get_user_model()


class AlertSerializer(ScopedModelSerializer):
    read_at = serializers.SerializerMethodField()
    dismissed_at = serializers.SerializerMethodField()

    class Meta:
        model = Alert
        fields = [
            "id", "alert_type", "severity", "status", "source", "title", "message", "resource_type", "resource_id",
            "labels", "annotations", "generator_url", "fingerprint", "occurrences", "first_seen", "last_seen",
            "starts_at", "ends_at", "silenced", "acknowledged_by", "acknowledged_at", "resolved_by", "resolved_at",
            "assigned_to", "rule", "escalation_policy", "escalation_step", "next_escalation_at", "metadata",
            "expires_at", "ticket", "read_at", "dismissed_at",
        ]
        read_only_fields = fields

    def _state(self, obj):
        states = getattr(obj, "my_states", None)
        return states[0] if states else None

    def get_read_at(self, obj) -> str | None:
        s = self._state(obj)
        return s.read_at.isoformat() if s and s.read_at else None

    def get_dismissed_at(self, obj) -> str | None:
        s = self._state(obj)
        return s.dismissed_at.isoformat() if s and s.dismissed_at else None


class ResolveSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500)


class UnreadCountSerializer(serializers.Serializer):
    count = serializers.IntegerField()


class AlertRuleSerializer(ScopedModelSerializer):
    conditions = serializers.JSONField()
    alert_config = serializers.JSONField(required=False)
    actions = serializers.JSONField(required=False)

    class Meta:
        model = AlertRule
        fields = ["id", "tenant", "name", "description", "rule_type", "enabled", "conditions", "alert_config", "actions",
                  "auto_resolve_minutes", "last_evaluated_at", "created_by", "created_at"]
        read_only_fields = ["last_evaluated_at", "created_by", "created_at"]
        validators = []  # uniqueness per tenant is checked by the service's full_clean
        extra_kwargs = {"tenant": {"required": False}}


class AlertSubscriptionSerializer(ScopedModelSerializer):
    user = serializers.PrimaryKeyRelatedField(queryset=User.objects.all(), required=False)
    channels = serializers.JSONField(required=False)

    class Meta:
        model = AlertSubscription
        fields = ["id", "tenant", "user", "alert_type", "enabled", "channels", "min_severity", "notify_on_acknowledge", "notify_on_resolve"]
        validators = []  # uniqueness per tenant is checked by the service's full_clean
        extra_kwargs = {"tenant": {"required": False}}


class AlertCreateSerializer(serializers.Serializer):
    """`POST /api/v1/alerts`: without `assigned_to` the alert is a broadcast (alerts.broadcast)."""

    alert_type = serializers.ChoiceField(choices=AlertType.choices, default=AlertType.CUSTOM)
    severity = serializers.ChoiceField(choices=Severity.choices, default=Severity.WARNING)
    title = serializers.CharField(max_length=255)
    message = serializers.CharField(required=False, allow_blank=True, default="")
    assigned_to = serializers.PrimaryKeyRelatedField(queryset=User.objects.all(), required=False, allow_null=True, default=None)
    labels = serializers.DictField(child=serializers.CharField(), required=False)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)


class SilenceSerializer(ScopedModelSerializer):
    matchers = serializers.JSONField()
    active = serializers.SerializerMethodField()

    class Meta:
        model = Silence
        fields = ["id", "tenant", "matchers", "starts_at", "ends_at", "comment", "created_by", "active", "created_at"]
        read_only_fields = ["created_by", "created_at"]
        validators = []  # uniqueness per tenant is checked by the service's full_clean
        extra_kwargs = {"tenant": {"required": False}, "starts_at": {"required": False}}

    def get_active(self, obj) -> bool:
        return obj.is_active()


class InhibitRuleSerializer(ScopedModelSerializer):
    source_matchers = serializers.JSONField()
    target_matchers = serializers.JSONField()
    equal = serializers.JSONField(required=False)

    class Meta:
        model = InhibitRule
        fields = ["id", "tenant", "name", "source_matchers", "target_matchers", "equal", "enabled"]
        validators = []  # uniqueness per tenant is checked by the service's full_clean
        extra_kwargs = {"tenant": {"required": False}}


class EscalationPolicySerializer(ScopedModelSerializer):
    steps = serializers.JSONField()
    alert_types = serializers.JSONField(required=False)

    class Meta:
        model = EscalationPolicy
        fields = ["id", "tenant", "name", "enabled", "alert_types", "min_severity", "steps", "repeat"]
        validators = []  # uniqueness per tenant is checked by the service's full_clean
        extra_kwargs = {"tenant": {"required": False}}


class IngestTokenSerializer(ScopedModelSerializer):
    token = serializers.SerializerMethodField()

    class Meta:
        model = IngestToken
        fields = ["id", "tenant", "name", "prefix", "created_by", "last_used_at", "revoked_at", "created_at", "token"]
        read_only_fields = ["prefix", "created_by", "last_used_at", "revoked_at", "created_at"]
        validators = []  # uniqueness per tenant is checked by the service's full_clean
        extra_kwargs = {"tenant": {"required": False}}

    def get_token(self, obj) -> str | None:
        """The raw token, only in the response that created it."""
        return getattr(obj, "raw_token", None)


class IngestResultSerializer(serializers.Serializer):
    received = serializers.IntegerField()
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    resolved = serializers.IntegerField()
    silenced = serializers.IntegerField()
    unchanged = serializers.IntegerField(help_text="Of `updated`: resends that changed nothing (docs/alerts.md, Resent alerts).")


class AlertmanagerAlertSerializer(serializers.Serializer):
    labels = serializers.DictField(child=serializers.CharField())
    annotations = serializers.DictField(child=serializers.CharField(), required=False)
    startsAt = serializers.DateTimeField(required=False)
    endsAt = serializers.DateTimeField(required=False)
    generatorURL = serializers.CharField(required=False)


class AlertmanagerWebhookSerializer(serializers.Serializer):
    version = serializers.CharField()
    status = serializers.CharField()
    receiver = serializers.CharField()
    groupLabels = serializers.DictField(required=False)
    commonLabels = serializers.DictField(required=False)
    alerts = AlertmanagerAlertSerializer(many=True)


class AlertOpenTicketSerializer(serializers.Serializer):
    priority = serializers.ChoiceField(choices=["low", "normal", "high", "urgent", "critical"], required=False)
    subject = serializers.CharField(required=False, allow_blank=True, max_length=300)
    dedup_labels = serializers.ListField(child=serializers.CharField(), required=False)


class AlertTicketLinkSerializer(serializers.Serializer):
    ticket_id = serializers.IntegerField()
    ticket_number = serializers.CharField()
    opened = serializers.BooleanField()


class AlertRunbookSerializer(serializers.Serializer):
    job = serializers.IntegerField()
    targets = serializers.ListField(child=serializers.IntegerField(), required=False)
    params = serializers.DictField(required=False)
    parameter_labels = serializers.DictField(child=serializers.CharField(), required=False)
    target_label = serializers.CharField(required=False)
    require_approval = serializers.BooleanField(required=False, default=False)


class RunbookRequestSerializer(ScopedModelSerializer):
    class Meta:
        model = RunbookRequest
        fields = ["id", "tenant", "alert", "ticket", "rule", "job", "target_ids", "params", "status", "requires_approval",
                  "requested_by", "decided_by", "decided_at", "run", "summary", "created_at", "finished_at"]
        read_only_fields = fields


class RunbookRejectSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500)


class TimelineEntrySerializer(serializers.Serializer):
    id = serializers.CharField()
    at = serializers.DateTimeField()
    kind = serializers.CharField()
    event = serializers.CharField()
    title = serializers.CharField()
    object_type = serializers.CharField()
    object_id = serializers.CharField()
    url = serializers.CharField()
    actor_id = serializers.IntegerField(allow_null=True, help_text="Who did it (None: the system).")
    actor = serializers.CharField(help_text="Their username, or empty for the system.")
    data = serializers.DictField()


class TimelineTenantSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    slug = serializers.CharField()
    name = serializers.CharField()


class TimelinePageSerializer(serializers.Serializer):
    tenant = TimelineTenantSerializer()
    kinds = serializers.ListField(child=serializers.CharField(), help_text="The kinds this page shows.")
    results = TimelineEntrySerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True)
