from django.contrib.auth import get_user_model
from rest_framework import serializers

from apps.core.api.serializers import ScopedModelSerializer, StrictFieldsMixin, WriteOnlySecretField

from ..choices import CONFIG_KINDS, NotificationType, Priority
from ..models import ChannelConfig, Notification, Preference


class NotificationSerializer(ScopedModelSerializer):
    is_read = serializers.SerializerMethodField()

    class Meta:
        model = Notification
        fields = [
            "id", "notification_type", "title", "message", "priority", "action_url", "action_label",
            "related_entity_type", "related_entity_id", "metadata", "is_read", "read_at", "archived_at", "created_at",
        ]
        read_only_fields = fields

    def get_is_read(self, obj) -> bool:
        return obj.read_at is not None


class TeamNotifySerializer(StrictFieldsMixin, serializers.Serializer):
    """Request of POST /api/v1/notifications/team (seed 000)."""

    tenant_id = serializers.IntegerField(required=False, help_text="Platform staff only: the tenant to notify.")
    team_members = serializers.ListField(child=serializers.IntegerField(), required=False, allow_empty=True)
    role_filter = serializers.CharField(required=False, allow_blank=True)
    notification_type = serializers.CharField(required=False, default=NotificationType.SYSTEM_ALERT)
    title = serializers.CharField(allow_blank=True)
    message = serializers.CharField(required=False, allow_blank=True, default="")
    priority = serializers.ChoiceField(choices=Priority.choices, required=False, default=Priority.MEDIUM)
    action_url = serializers.CharField(required=False, allow_blank=True, default="")
    action_label = serializers.CharField(required=False, allow_blank=True, default="")
    related_entity_type = serializers.CharField(required=False, allow_blank=True, default="")
    related_entity_id = serializers.CharField(required=False, allow_blank=True, default="")
    metadata = serializers.DictField(required=False, default=dict)
    auto_send = serializers.BooleanField(required=False, default=True)


class TeamNotifyResponseSerializer(serializers.Serializer):
    notifications_created = serializers.IntegerField()
    target_count = serializers.IntegerField()
    role_filter = serializers.CharField(allow_null=True)
    team_members = serializers.IntegerField(allow_null=True, help_text="Number of members named.")
    notification_type = serializers.CharField()
    priority = serializers.CharField()


class CountSerializer(serializers.Serializer):
    count = serializers.IntegerField()


class TestResultSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    detail = serializers.CharField()


class PreferenceSerializer(ScopedModelSerializer):
    user = serializers.PrimaryKeyRelatedField(queryset=get_user_model().objects.all(), required=False)

    class Meta:
        model = Preference
        fields = [
            "id", "user", "notification_type", "channels", "min_priority", "timezone", "quiet_start", "quiet_end",
            "urgent_bypasses_quiet", "digest", "created_at", "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]
        validators = []  # uniqueness is checked by the model (full_clean) with a clear message


class ChannelConfigSerializer(ScopedModelSerializer):
    url = WriteOnlySecretField(help_text="Apprise URL (slack://…, workflow://… for Teams, tgram://…) or the webhook URL. Write-only.")
    signing_secret = WriteOnlySecretField(help_text="Webhooks: HMAC-SHA256 key. Write-only.")
    kind = serializers.ChoiceField(choices=[(k.value, k.label) for k in CONFIG_KINDS])
    user = serializers.PrimaryKeyRelatedField(queryset=get_user_model().objects.all(), required=False, allow_null=True)

    class Meta:
        model = ChannelConfig
        fields = [
            "id", "name", "kind", "user", "url", "signing_secret", "enabled", "min_priority", "notification_types",
            "last_tested_at", "last_test_ok", "last_error", "consecutive_failures", "circuit_open_until", "created_at",
        ]
        read_only_fields = ["id", "last_tested_at", "last_test_ok", "last_error", "consecutive_failures", "circuit_open_until", "created_at"]
        validators = []
