from rest_framework import serializers

from apps.core.api.serializers import ScopedModelSerializer

from ..models import MaintenanceRun, MaintenanceWindow


class ScopedObjectSerializer(serializers.Serializer):
    type = serializers.RegexField(r"^[a-z_]+\.[a-z_]+$", help_text='"<app_label>.<model>", e.g. "monitoring.endpoint"')
    id = serializers.IntegerField(min_value=1)


class MaintenanceWindowSerializer(ScopedModelSerializer):
    objects = ScopedObjectSerializer(many=True, required=False, write_only=True)
    objects_in_scope = serializers.SerializerMethodField()
    active_now = serializers.SerializerMethodField()

    class Meta:
        model = MaintenanceWindow
        fields = [
            "id", "tenant", "name", "description", "recurrence", "starts_at", "ends_at", "cron", "rrule",
            "duration_minutes", "timezone", "scope", "label_matchers", "enabled", "source", "objects",
            "objects_in_scope", "active_now", "created_at", "updated_at",
        ]
        read_only_fields = ["id", "source", "created_at", "updated_at"]
        extra_kwargs = {"tenant": {"required": False}}

    def get_objects_in_scope(self, obj) -> list[dict]:
        return [{"type": f"{o.content_type.app_label}.{o.content_type.model}", "id": o.object_id}
                for o in obj.objects_in_scope.select_related("content_type")]

    def get_active_now(self, obj) -> bool:
        return obj.is_active()

    def validate_objects(self, value):
        from django.contrib.contenttypes.models import ContentType

        out = []
        for item in value:
            app_label, model = item["type"].split(".", 1)
            ct = ContentType.objects.filter(app_label=app_label, model=model).first()
            if ct is None:
                raise serializers.ValidationError(f"Unknown object type {item['type']!r}.")
            target = ct.model_class()._default_manager.filter(pk=item["id"])
            if hasattr(target, "visible_to"):
                target = target.visible_to(self.context["request"].user)
            row = target.first()
            if row is None:
                raise serializers.ValidationError(f"{item['type']} {item['id']} not found.")
            out.append(row)
        return out


class MaintenanceRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = MaintenanceRun
        fields = [
            "id", "task", "parameters", "status", "dry_run", "started_at", "finished_at", "duration_seconds",
            "rows_removed", "total_rows", "bytes_freed", "details", "error", "trigger", "triggered_by",
        ]
        read_only_fields = fields


class MaintenanceRunRequestSerializer(serializers.Serializer):
    task = serializers.CharField()
    dry_run = serializers.BooleanField(default=False)
