"""On-call API serializers: schedules, layers, overrides, feeds and the read-only answers."""

from __future__ import annotations

from rest_framework import serializers

from apps.core.api.serializers import ScopedModelSerializer, StrictFieldsMixin
from apps.core.models import PortalUser

from ..models import FeedToken, Layer, Override, Schedule

# People the caller can see (ScopedModelSerializer narrows to `visible_to`); the services then
# require staff of the row's tenant.
User = PortalUser


class ScheduleSerializer(ScopedModelSerializer):
    owners = serializers.PrimaryKeyRelatedField(queryset=User.objects.all(), many=True, required=False)

    class Meta:
        model = Schedule
        fields = [
            "id",
            "tenant",
            "name",
            "description",
            "timezone",
            "owners",
            "notify_shifts",
            "gap_start",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "gap_start", "created_at", "updated_at"]
        extra_kwargs = {"tenant": {"required": False}}
        validators: list = []  # (tenant, name) uniqueness is checked by the service's full_clean()


class LayerSerializer(ScopedModelSerializer):
    class Meta:
        model = Layer
        fields = [
            "id",
            "tenant",
            "schedule",
            "name",
            "level",
            "kind",
            "frequency",
            "interval",
            "shift_hours",
            "start_date",
            "handoff_time",
            "timezone",
            "member_ids",
            "restrictions",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "tenant", "kind", "created_at", "updated_at"]
        validators: list = []  # (schedule, level) uniqueness: the service says which level is taken


class OverrideSerializer(ScopedModelSerializer):
    user = serializers.PrimaryKeyRelatedField(queryset=User.objects.all())

    class Meta:
        model = Override
        fields = ["id", "tenant", "schedule", "user", "starts_at", "ends_at", "reason", "created_by", "created_at"]
        read_only_fields = ["id", "tenant", "created_by", "created_at"]

    def validate(self, attrs):
        attrs = super().validate(attrs)
        start = attrs.get("starts_at", getattr(self.instance, "starts_at", None))
        end = attrs.get("ends_at", getattr(self.instance, "ends_at", None))
        if start and end and end <= start:
            raise serializers.ValidationError({"ends_at": ["An override must end after it starts."]})
        return attrs


class FeedTokenSerializer(ScopedModelSerializer):
    user = serializers.PrimaryKeyRelatedField(queryset=User.objects.all(), required=False, allow_null=True)
    url = serializers.SerializerMethodField()

    class Meta:
        model = FeedToken
        fields = [
            "id",
            "tenant",
            "name",
            "schedule",
            "user",
            "prefix",
            "created_by",
            "last_used_at",
            "revoked_at",
            "created_at",
            "url",
        ]
        read_only_fields = ["id", "tenant", "prefix", "created_by", "last_used_at", "revoked_at", "created_at"]

    def get_url(self, obj) -> str | None:
        """The secret feed URL, only in the response that created it."""
        raw = getattr(obj, "raw_token", None)
        if raw is None:
            return None
        request = self.context.get("request")
        path = f"/oncall/feed/{raw}.ics"
        return request.build_absolute_uri(path) if request is not None else path


class AnswerSerializer(serializers.Serializer):
    schedule = serializers.IntegerField()
    schedule_name = serializers.CharField()
    at = serializers.DateTimeField()
    user_id = serializers.IntegerField(allow_null=True)
    username = serializers.CharField(allow_null=True)
    source = serializers.CharField()
    layer_id = serializers.IntegerField(allow_null=True)
    next_user_id = serializers.IntegerField(allow_null=True)


class SliceSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    user_id = serializers.IntegerField(allow_null=True)
    source = serializers.CharField()
    layer_id = serializers.IntegerField(allow_null=True)


class IcalImportSerializer(StrictFieldsMixin, serializers.Serializer):
    file = serializers.FileField(required=False)
    ical = serializers.CharField(required=False, trim_whitespace=False, max_length=2 * 1024 * 1024)
    level = serializers.IntegerField(required=False, min_value=1, max_value=1000)
    name = serializers.CharField(required=False, max_length=120)

    def validate(self, attrs):
        if not attrs.get("file") and not attrs.get("ical"):
            raise serializers.ValidationError({"file": ["Upload an .ics file (multipart `file`) or send its text as `ical`."]})
        return attrs
