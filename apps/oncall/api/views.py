"""On-call API: schedules (+ who is on call, the final schedule, iCalendar import), layers,
overrides, feed tokens, and "on call now" across every schedule the caller sees."""

from __future__ import annotations

from datetime import UTC

from django.contrib.auth import get_user_model
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, generics
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from apps.core.api.viewsets import OrganizationContextMixin, TenantScopedViewSet

from .. import selectors, services
from ..models import FeedToken, Layer, Override, Schedule
from . import filters
from .serializers import (
    AnswerSerializer,
    FeedTokenSerializer,
    IcalImportSerializer,
    LayerSerializer,
    OverrideSerializer,
    ScheduleSerializer,
    SliceSerializer,
)

AT = OpenApiParameter("at", str, description="An ISO 8601 instant (default: now); without an offset it is UTC.")


def _instant(request, name: str = "at"):
    raw = request.query_params.get(name)
    if not raw:
        return timezone.now()
    try:
        value = parse_datetime(raw)
    except ValueError:
        value = None
    if value is None:
        raise exceptions.ValidationError({name: [f"{raw[:40]!r} is not an ISO 8601 date-time such as 2026-03-29T09:00:00Z."]})
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def answers(schedules, at) -> list[dict]:
    found = selectors.oncall_now([s.pk for s in schedules], at=at)
    ids = {a.user_id for a in found.values()} | {a.next_user_id for a in found.values()}
    names = dict(get_user_model().objects.filter(pk__in=[i for i in ids if i]).values_list("pk", "username"))
    out = []
    for s in schedules:
        a = found.get(s.pk)
        out.append(
            {
                "schedule": s.pk,
                "schedule_name": s.name,
                "at": at,
                "user_id": a.user_id,
                "username": names.get(a.user_id),
                "source": a.source,
                "layer_id": a.layer_id,
                "next_user_id": a.next_user_id,
            }
        )
    return out


class ScheduleViewSet(TenantScopedViewSet):
    """On-call schedules of a tenant. Managers (owners, admins) write; all staff read."""

    queryset = Schedule.objects.prefetch_related("owners")
    serializer_class = ScheduleSerializer
    filterset_class = filters.ScheduleFilter
    search_fields = ["name"]
    create_service = staticmethod(services.schedule_create)
    update_service = staticmethod(services.schedule_update)
    delete_service = staticmethod(services.schedule_delete)
    action_permissions = {"oncall": "view", "final": "view", "import_ical": "change"}

    @extend_schema(parameters=[AT], responses=AnswerSerializer)
    @action(detail=True, methods=["get"], filter_backends=[])
    def oncall(self, request, pk=None):
        """Who is on call at `at` (default now), from which layer, and the next layer's person."""
        return Response(AnswerSerializer(answers([self.get_object()], _instant(request))[0]).data)

    @extend_schema(
        parameters=[AT, OpenApiParameter("days", int, description="1–31 (default 14)")], responses=SliceSerializer(many=True)
    )
    @action(detail=True, methods=["get"], filter_backends=[])
    def final(self, request, pk=None):
        """The final schedule from `at` for `days` days: who, from where; gaps have user_id null."""
        try:
            days = int(request.query_params.get("days", 14))
        except ValueError:
            days = 0
        if not 1 <= days <= 31:
            raise exceptions.ValidationError({"days": ["Give a whole number of days from 1 to 31."]})
        pieces = selectors.final_schedule(self.get_object().pk, start=_instant(request), days=days)
        return Response(SliceSerializer([p.__dict__ for p in pieces], many=True).data)

    @extend_schema(request=IcalImportSerializer, responses={200: dict})
    @action(detail=True, methods=["post"], url_path="import-ical")
    def import_ical(self, request, pk=None):
        """Import an iCalendar file (RFC 5545) as a calendar layer (replacing that layer's shifts)."""
        schedule = self.get_object()
        body = IcalImportSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        raw = data["file"].read(2 * 1024 * 1024 + 1) if data.get("file") else data["ical"].encode()
        result = services.schedule_import_ical(
            schedule, actor=request.user, data=raw, level=data.get("level"), name=data.get("name") or "Imported calendar"
        )
        return Response({"layer": result["layer"].pk, "imported": result["imported"], "skipped": result["skipped"]})


class LayerViewSet(TenantScopedViewSet):
    """Layers of schedules: rotations (daily, weekly, custom hours) with restrictions."""

    queryset = Layer.objects.select_related("schedule")
    serializer_class = LayerSerializer
    filterset_class = filters.LayerFilter
    create_service = staticmethod(services.layer_create)
    update_service = staticmethod(services.layer_update)
    delete_service = staticmethod(services.layer_delete)


class OverrideViewSet(TenantScopedViewSet):
    """Overrides: someone covers a period of a schedule. Overlapping another override is a 400."""

    queryset = Override.objects.select_related("schedule")
    serializer_class = OverrideSerializer
    filterset_class = filters.OverrideFilter
    create_service = staticmethod(services.override_create)
    update_service = staticmethod(services.override_update)
    delete_service = staticmethod(services.override_delete)


class FeedTokenViewSet(TenantScopedViewSet):
    """Secret iCalendar feed URLs (of a schedule, or of a person); the URL is in the create
    response only; revoke ends it."""

    queryset = FeedToken.objects.all()
    serializer_class = FeedTokenSerializer
    filterset_class = filters.FeedTokenFilter
    http_method_names = ["get", "post", "delete", "head", "options"]
    delete_service = staticmethod(services.feed_delete)
    action_permissions = {"revoke": "revoke"}

    def perform_create(self, serializer):
        data = serializer.validated_data
        feed, raw = services.feed_create(
            actor=self.request.user, schedule=data.get("schedule"), user=data.get("user"), name=data.get("name", "")
        )
        feed.raw_token = raw
        serializer.instance = feed

    @extend_schema(request=None, responses=FeedTokenSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        return Response(self.get_serializer(services.feed_revoke(self.get_object(), actor=request.user)).data)


class OnCallNowView(OrganizationContextMixin, generics.ListAPIView):
    """Who is on call at `at` (default now) in every schedule the caller sees (a page of them)."""

    permission_classes = [IsAuthenticated]
    serializer_class = AnswerSerializer
    filter_backends: list = []

    def get_queryset(self):
        return Schedule.objects.visible_to(self.request.user).order_by("name", "pk")

    @extend_schema(parameters=[AT])
    def get(self, request, *args, **kwargs):
        at = _instant(request)
        page = self.paginate_queryset(self.get_queryset())
        rows = answers(page if page is not None else list(self.get_queryset()[:1000]), at)
        data = AnswerSerializer(rows, many=True).data
        return self.get_paginated_response(data) if page is not None else Response(data)
