"""`/api/v1/dashboard/…`: the summary (the admin dashboard as JSON), account health and KPI
checkpoints — all through `visible_to(user)`."""

from drf_spectacular.utils import extend_schema
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.api.viewsets import OrganizationContextMixin, TenantScopedReadOnlyViewSet, TenantScopedViewSet

from .. import services
from ..models import AccountHealth, KpiCheckpoint, KpiTarget
from ..selectors import latest_checkpoints, summary_for, worst_health
from .filters import AccountHealthFilter, KpiCheckpointFilter, KpiTargetFilter
from .serializers import AccountHealthSerializer, DashboardSummarySerializer, KpiCheckpointSerializer, KpiTargetSerializer


class DashboardSummaryView(OrganizationContextMixin, APIView):
    """`GET /api/v1/dashboard/summary`: the dashboard's figures summed over the tenants the
    acting user may see, with the worst account health rows and the latest KPI checkpoints."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses=DashboardSummarySerializer)
    def get(self, request):
        user = request.user
        body = summary_for(user)
        ctx = {"request": request}
        body["health"] = AccountHealthSerializer(worst_health(user), many=True, context=ctx).data
        body["checkpoints"] = KpiCheckpointSerializer(latest_checkpoints(user), many=True, context=ctx).data
        return Response(body)


class AccountHealthViewSet(TenantScopedReadOnlyViewSet):
    """`GET /api/v1/dashboard/health`: account health of tenants and customers, worst first."""

    queryset = AccountHealth.objects.select_related("tenant", "customer").order_by("score", "tenant_id", "id")
    serializer_class = AccountHealthSerializer
    filterset_class = AccountHealthFilter


class KpiCheckpointViewSet(TenantScopedReadOnlyViewSet):
    """`GET /api/v1/dashboard/kpi-checkpoints`: KPI checkpoints, newest period first."""

    queryset = KpiCheckpoint.objects.select_related("tenant").order_by("-period_start", "tenant_id", "kpi")
    serializer_class = KpiCheckpointSerializer
    filterset_class = KpiCheckpointFilter


class KpiTargetViewSet(TenantScopedViewSet):
    """KPI targets (SLA compliance, job success, uptime … ≥ N % per week or month): read by staff,
    set by owners and admins. Each completed period is checked against them (`kpi-checkpoints`)."""

    queryset = KpiTarget.objects.select_related("tenant").order_by("tenant_id", "kpi")
    serializer_class = KpiTargetSerializer
    filterset_class = KpiTargetFilter
    # no DELETE: the checkpoint run would add the portal's default back; switch one off (enabled: false)
    http_method_names = ["get", "post", "put", "patch", "head", "options"]
    create_service = staticmethod(services.kpi_target_create)
    update_service = staticmethod(services.kpi_target_update)
