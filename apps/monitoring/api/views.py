"""Monitoring API: endpoints (+ results, trends, check now, pause/resume), trend rules (+
evaluate now), the health summary, service health checks, the operations status and heartbeat
pings."""

from __future__ import annotations

import asyncio

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import permissions, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.api.viewsets import OrganizationContextMixin, TenantScopedViewSet
from apps.core.choices import STAFF_ROLES
from apps.core.tenancy import acting

from .. import selectors, services
from ..choices import PingKind
from ..models import CheckResult, Endpoint, TrendRule
from .filters import CheckResultFilter, EndpointFilter, TrendRuleFilter
from .serializers import (
    CheckResultSerializer,
    EndpointSerializer,
    HealthSummarySerializer,
    ServiceCheckSerializer,
    TrendRuleSerializer,
    TrendSerializer,
)


class EndpointViewSet(TenantScopedViewSet):
    """Endpoints to check (http/https/tcp) or to receive heartbeats from."""

    queryset = Endpoint.objects.select_related("tenant")
    serializer_class = EndpointSerializer
    filterset_class = EndpointFilter
    search_fields = ["name", "host"]
    ordering_fields = ["name", "status", "status_since", "last_checked_at"]
    create_service = staticmethod(services.endpoint_create)
    update_service = staticmethod(services.endpoint_update)
    delete_service = staticmethod(services.endpoint_delete)
    action_permissions = {"check_now": "check", "pause": "pause", "resume": "pause", "results": "view", "trends": "view"}

    def _service_kwargs(self, serializer):
        data = dict(serializer.validated_data)
        if "tenant" in data:
            tenant = data.pop("tenant")
            if self.action == "create":
                data["tenant_id"] = tenant.pk if tenant else None
        return data

    @extend_schema(request=None, responses=CheckResultSerializer)
    @action(detail=True, methods=["post"], url_path="check-now")
    def check_now(self, request, pk=None):
        result = services.endpoint_check_now(self.get_object(), actor=request.user)
        return Response(CheckResultSerializer(result).data)

    @extend_schema(request=None, responses=EndpointSerializer)
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        return Response(self.get_serializer(services.endpoint_pause(self.get_object(), actor=request.user)).data)

    @extend_schema(request=None, responses=EndpointSerializer)
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        return Response(self.get_serializer(services.endpoint_resume(self.get_object(), actor=request.user)).data)

    @extend_schema(responses=CheckResultSerializer(many=True), filters=True)
    @action(detail=True, methods=["get"], filter_backends=[])
    def results(self, request, pk=None):
        endpoint = self.get_object()
        qs = CheckResultFilter(request.query_params, queryset=CheckResult.objects.filter(endpoint=endpoint)).qs
        page = self.paginate_queryset(qs)
        data = CheckResultSerializer(page if page is not None else qs[:500], many=True).data
        return self.get_paginated_response(data) if page is not None else Response(data)

    @extend_schema(responses=TrendSerializer, parameters=[OpenApiParameter("window", str, enum=list(selectors.WINDOWS))])
    @action(detail=True, methods=["get"], filter_backends=[])
    def trends(self, request, pk=None):
        window = request.query_params.get("window", "24h")
        return Response(selectors.endpoint_trends(self.get_object(), window=window))


class TrendRuleViewSet(TenantScopedViewSet):
    """Trend rules: latency p95 over a budget for a window, TLS certificate expiring within N
    days; a breach raises an `endpoint_trend` alert (docs/monitoring.md)."""

    queryset = TrendRule.objects.select_related("tenant", "endpoint")
    serializer_class = TrendRuleSerializer
    filterset_class = TrendRuleFilter
    search_fields = ["name", "endpoint__name"]
    ordering_fields = ["name", "state", "state_since", "last_evaluated_at"]
    create_service = staticmethod(services.trend_rule_create)
    update_service = staticmethod(services.trend_rule_update)
    delete_service = staticmethod(services.trend_rule_delete)
    action_permissions = {"evaluate": "evaluate"}

    @extend_schema(request=None, responses=TrendRuleSerializer)
    @action(detail=True, methods=["post"])
    def evaluate(self, request, pk=None):
        return Response(self.get_serializer(services.trend_rule_evaluate_now(self.get_object(), actor=request.user)).data)


class StaffOnly(permissions.BasePermission):
    message = "Only staff of an organization see service health."

    def has_permission(self, request, view):
        ctx = acting(request.user)
        return bool(request.user and request.user.is_authenticated) and (ctx.superuser or ctx.role in STAFF_ROLES)


class HealthSummaryView(OrganizationContextMixin, APIView):
    """Overall status, counts by status and the worst endpoints the caller can see."""

    permission_classes = [permissions.IsAuthenticated, StaffOnly]

    @extend_schema(responses=HealthSummarySerializer)
    def get(self, request):
        return Response(selectors.health_summary(Endpoint.objects.visible_to(request.user)))


def run_service_checks() -> dict:
    """Database, cache/Redis and Celery workers, through django-health-check's checks."""
    from health_check.checks import Cache, Database
    from health_check.contrib.celery import Ping

    checks = {"database": Database(), "cache": Cache()}
    if settings.REDIS_URL:
        from health_check.contrib.redis import Redis as RedisCheck
        from redis.asyncio import Redis

        checks["redis"] = RedisCheck(client_factory=lambda: Redis.from_url(settings.REDIS_URL))
    if settings.CELERY_BROKER_URL.startswith(("redis", "amqp")):
        checks["celery_workers"] = Ping()

    async def gather():
        return await asyncio.gather(*(c.get_result(None) for c in checks.values()))

    results = asyncio.run(gather())
    out = {name: {"ok": r.error is None, "error": str(r.error) if r.error else "", "seconds": round(r.time_taken, 4)}
           for name, r in zip(checks, results, strict=True)}
    return {"status": "ok" if all(v["ok"] for v in out.values()) else "error", "checks": out}


class ServiceHealthCheckView(OrganizationContextMixin, APIView):
    """Run the service checks now (database, Redis, Celery workers); 503 if one fails."""

    permission_classes = [permissions.IsAuthenticated, StaffOnly]

    @extend_schema(request=None, responses={200: ServiceCheckSerializer, 503: ServiceCheckSerializer})
    def post(self, request):
        report = run_service_checks()
        return Response(report, status=status.HTTP_200_OK if report["status"] == "ok" else status.HTTP_503_SERVICE_UNAVAILABLE)


class OperationsStatusView(OrganizationContextMixin, APIView):
    """One page for operators: monitoring summary, queue depths, workers, running jobs and
    recent maintenance runs (the last three for platform staff only)."""

    permission_classes = [permissions.IsAuthenticated, StaffOnly]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        from ..operations import operations_status

        return Response(operations_status(request.user))


PING_ANSWER = inline_serializer(name="MonitoringPingAnswer", fields={"detail": serializers.CharField()})


class PingView(APIView):
    """Heartbeat ping (the UUID is the secret; no login)."""

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]

    @extend_schema(request=None, responses={200: PING_ANSWER})
    def get(self, request, ping_id, kind=PingKind.SUCCESS):
        message = request.body[:500].decode("utf-8", "replace") if request.method == "POST" else ""
        endpoint = services.heartbeat_ping(ping_id=ping_id, kind=kind, message=message)
        if endpoint is None:
            return Response({"detail": "Unknown ping URL."}, status=404)
        return Response({"detail": "OK"})

    @extend_schema(request=None, responses={200: PING_ANSWER})
    def post(self, request, ping_id, kind=PingKind.SUCCESS):
        return self.get(request, ping_id, kind)
