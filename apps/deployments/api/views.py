from django.contrib.contenttypes.models import ContentType
from django.db.models import Q
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.api.viewsets import OrganizationContextMixin, TenantScopedReadOnlyViewSet, TenantScopedViewSet
from apps.maintenance.api.views import MaintenanceWindowViewSet
from apps.maintenance.choices import WindowScope

from .. import services
from ..choices import Trigger
from ..models import DeploymentSchedule, Instance, Operation, Runbook
from .filters import DeploymentScheduleFilter, InstanceFilter, OperationFilter, RunbookFilter
from .serializers import (
    DeploymentRunbookSerializer,
    DeploymentScheduleSerializer,
    DeploymentWindowSerializer,
    InstanceSerializer,
    OperationRequestSerializer,
    OperationSerializer,
    RejectSerializer,
    ScheduledDeploymentRequestSerializer,
    ScheduledDeploymentResponseSerializer,
)


def _tenant_kwargs(data: dict, creating: bool) -> dict:
    if "tenant" in data:
        tenant = data.pop("tenant")
        if creating and tenant is not None:
            data["tenant_id"] = tenant.pk
    return data


class InstanceViewSet(TenantScopedViewSet):
    """Deployed instances of the tenant's product and the targets they run on."""

    queryset = Instance.objects.select_related("tenant").prefetch_related("targets")
    serializer_class = InstanceSerializer
    filterset_class = InstanceFilter
    search_fields = ["name", "version"]
    ordering_fields = ["name", "created_at", "status"]
    create_service = staticmethod(services.instance_create)
    update_service = staticmethod(services.instance_update)
    delete_service = staticmethod(services.instance_delete)

    def _service_kwargs(self, serializer):
        return _tenant_kwargs(dict(serializer.validated_data), self.action == "create")


class RunbookViewSet(TenantScopedViewSet):
    """Which job runs which operation (per tenant, or per instance)."""

    queryset = Runbook.objects.select_related("tenant", "instance", "job")
    serializer_class = DeploymentRunbookSerializer
    filterset_class = RunbookFilter
    create_service = staticmethod(services.runbook_create)
    update_service = staticmethod(services.runbook_update)
    delete_service = staticmethod(services.runbook_delete)

    def _service_kwargs(self, serializer):
        return _tenant_kwargs(dict(serializer.validated_data), self.action == "create")


class OperationViewSet(TenantScopedReadOnlyViewSet, mixins.CreateModelMixin):
    """Operations on instances: request (create), approve, reject, cancel; batches and job runs."""

    queryset = Operation.objects.select_related("instance", "tenant").prefetch_related("batches")
    serializer_class = OperationSerializer
    filterset_class = OperationFilter
    ordering_fields = ["created_at", "status"]
    action_permissions = {"approve": "approve", "reject": "reject", "cancel": "cancel"}

    def get_serializer_class(self):
        if self.action == "create":
            return OperationRequestSerializer
        if self.action == "reject":
            return RejectSerializer
        return OperationSerializer

    @extend_schema(request=OperationRequestSerializer, responses={201: OperationSerializer})
    def create(self, request, *args, **kwargs):
        data = OperationRequestSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        op = services.operation_request(actor=request.user, trigger=Trigger.API, **data.validated_data)
        return Response(OperationSerializer(op, context={"request": request}).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=OperationSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        op = services.operation_approve(self.get_object(), actor=request.user)
        return Response(OperationSerializer(op, context={"request": request}).data)

    @extend_schema(request=RejectSerializer, responses=OperationSerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        data = RejectSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        op = services.operation_reject(self.get_object(), actor=request.user, reason=data.validated_data["reason"])
        return Response(OperationSerializer(op, context={"request": request}).data)

    @extend_schema(request=None, responses=OperationSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        op = services.operation_cancel(self.get_object(), actor=request.user)
        return Response(OperationSerializer(op, context={"request": request}).data)


class DeploymentScheduleViewSet(TenantScopedReadOnlyViewSet, mixins.DestroyModelMixin):
    """Deployment schedules (create with POST /deployments/schedule): list, detail, pause, resume, delete."""

    queryset = DeploymentSchedule.objects.select_related(
        "instance", "tenant", "periodic_task", "periodic_task__crontab", "periodic_task__interval", "periodic_task__clocked")
    serializer_class = DeploymentScheduleSerializer
    filterset_class = DeploymentScheduleFilter
    action_permissions = {"pause": "pause", "resume": "resume"}
    delete_service = staticmethod(services.schedule_delete)

    @extend_schema(request=None, responses=DeploymentScheduleSerializer)
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        schedule = services.schedule_pause(self.get_object(), actor=request.user)
        return Response(DeploymentScheduleSerializer(schedule).data)

    @extend_schema(request=None, responses=DeploymentScheduleSerializer)
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        schedule = services.schedule_resume(self.get_object(), actor=request.user)
        return Response(DeploymentScheduleSerializer(schedule).data)


class ScheduleDeploymentView(OrganizationContextMixin, APIView):
    """`POST /api/v1/deployments/schedule` (seed 000): schedule an operation one-time, by cron or by
    interval. Permission `deployment.schedule.create` = the policy's "add" on deployment schedules
    (owner, admin, operator)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=ScheduledDeploymentRequestSerializer, responses={201: ScheduledDeploymentResponseSerializer})
    def post(self, request):
        data = ScheduledDeploymentRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = services.schedule_deployment(actor=request.user, tenant_id=None, **data.validated_data)
        return Response(ScheduledDeploymentResponseSerializer(result).data, status=status.HTTP_201_CREATED)


class DeploymentWindowViewSet(MaintenanceWindowViewSet):
    """Maintenance windows for deployments: tenant-wide ones and those scoped to instances
    (`instances: [ids]`). Operations flagged require_window wait for one."""

    serializer_class = DeploymentWindowSerializer

    def get_queryset(self):
        ct = ContentType.objects.get_for_model(Instance)
        return super().get_queryset().filter(
            Q(scope=WindowScope.TENANT) | Q(objects_in_scope__content_type=ct)).distinct()

    def _service_kwargs(self, serializer):
        data = super()._service_kwargs(serializer)
        instances = data.pop("instances", None)
        if instances is not None:
            data["objects"] = [*(data.get("objects") or []), *instances]
            if instances and self.action == "create":
                data.setdefault("scope", WindowScope.OBJECTS)
        return data



