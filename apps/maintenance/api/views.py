from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.core.api.viewsets import TenantScopedReadOnlyViewSet, TenantScopedViewSet

from .. import services
from ..models import MaintenanceRun, MaintenanceWindow
from .filters import MaintenanceRunFilter, MaintenanceWindowFilter
from .serializers import MaintenanceRunRequestSerializer, MaintenanceRunSerializer, MaintenanceWindowSerializer


class MaintenanceWindowViewSet(TenantScopedViewSet):
    """Maintenance windows (one-off or recurring) that silence alerts and mark checks."""

    queryset = MaintenanceWindow.objects.select_related("tenant").prefetch_related("objects_in_scope")
    serializer_class = MaintenanceWindowSerializer
    filterset_class = MaintenanceWindowFilter
    search_fields = ["name"]
    ordering_fields = ["starts_at", "name", "created_at"]
    create_service = staticmethod(services.window_create)
    update_service = staticmethod(services.window_update)
    delete_service = staticmethod(services.window_delete)

    def _service_kwargs(self, serializer):
        data = dict(serializer.validated_data)
        if "tenant" in data:
            data["tenant_id"] = data.pop("tenant").pk if data["tenant"] else None
        if self.action != "create":
            data.pop("tenant_id", None)
        return data


class MaintenanceRunViewSet(TenantScopedReadOnlyViewSet):
    """Records of maintenance runs (platform staff); `run` starts a task on a worker."""

    queryset = MaintenanceRun.objects.select_related("triggered_by")
    serializer_class = MaintenanceRunSerializer
    filterset_class = MaintenanceRunFilter
    ordering_fields = ["started_at", "task"]
    action_permissions = {"run": "add"}

    @extend_schema(request=MaintenanceRunRequestSerializer, responses={202: None})
    @action(detail=False, methods=["post"])
    def run(self, request):
        from django.core.exceptions import ValidationError

        from ..registry import get
        from ..tasks import run_maintenance_task

        data = MaintenanceRunRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if get(data.validated_data["task"]) is None:
            raise ValidationError(f"Unknown maintenance task {data.validated_data['task']!r}.")
        run_maintenance_task.delay(task=data.validated_data["task"], dry_run=data.validated_data["dry_run"],
                                   trigger="api", user_id=request.user.pk)
        return Response({"detail": "queued", "task": data.validated_data["task"]}, status=status.HTTP_202_ACCEPTED)
