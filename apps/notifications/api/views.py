from django.core.exceptions import ValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.api.pagination import KeysetPagination
from apps.core.api.viewsets import OrganizationContextMixin, TenantScopedReadOnlyViewSet, TenantScopedViewSet
from apps.core.tenancy import acting

from .. import services
from ..models import ChannelConfig, Notification, Preference
from .filters import ChannelConfigFilter, NotificationFilter, PreferenceFilter
from .serializers import (
    ChannelConfigSerializer,
    CountSerializer,
    NotificationSerializer,
    PreferenceSerializer,
    TeamNotifyResponseSerializer,
    TeamNotifySerializer,
    TestResultSerializer,
)


class NotificationViewSet(TenantScopedReadOnlyViewSet):
    """The caller's own in-app notifications (archived ones only with `?archived=true`)."""

    queryset = Notification.objects.all()
    serializer_class = NotificationSerializer
    filterset_class = NotificationFilter
    pagination_class = KeysetPagination  # grows without bound: by cursor (docs/tickets.md)
    search_fields = ["title", "message"]
    ordering_fields = ["created_at", "priority"]
    action_permissions = {"read": "read", "read_all": "read", "archive": "read", "unread_count": "view"}

    def get_queryset(self):
        qs = super().get_queryset().filter(recipient_id=self.request.user.pk)
        if self.action == "list" and "archived" not in self.request.query_params:
            qs = qs.filter(archived_at__isnull=True)
        return qs

    @extend_schema(request=None, responses=NotificationSerializer)
    @action(detail=True, methods=["post"])
    def read(self, request, pk=None):
        notification = services.notification_mark_read(actor=request.user, notification=self.get_object())
        return Response(self.get_serializer(notification).data)

    @extend_schema(request=None, responses=NotificationSerializer)
    @action(detail=True, methods=["post"])
    def archive(self, request, pk=None):
        notification = services.notification_archive(actor=request.user, notification=self.get_object())
        return Response(self.get_serializer(notification).data)

    @extend_schema(request=None, responses=CountSerializer)
    @action(detail=False, methods=["post"], url_path="read-all")
    def read_all(self, request):
        return Response({"count": services.notifications_mark_all_read(actor=request.user)})

    @extend_schema(responses=CountSerializer, filters=False)
    @action(detail=False, methods=["get"], url_path="unread-count", filterset_class=None, pagination_class=None)
    def unread_count(self, request):
        return Response({"count": self.get_queryset().filter(read_at__isnull=True, archived_at__isnull=True).count()})


class TeamNotifyView(OrganizationContextMixin, APIView):
    """Notify a team of the caller's tenant: by `role_filter` or an explicit `team_members` list."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=TeamNotifySerializer, responses={201: TeamNotifyResponseSerializer})
    def post(self, request):
        serializer = TeamNotifySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        ctx = acting(request.user)
        tenant_id = data.pop("tenant_id", None)
        if tenant_id is None or not ctx.is_platform:
            if tenant_id is not None and tenant_id != ctx.tenant_id:
                raise ValidationError({"tenant_id": "Only platform staff name another tenant; leave tenant_id out."})
            tenant_id = ctx.tenant_id
        if tenant_id is None:
            raise ValidationError({"tenant_id": "Act within a tenant (X-Organization header) or, as platform staff, give tenant_id."})
        members, role = data.pop("team_members", None), data.pop("role_filter", None) or None
        notifications = services.notify_team(tenant=tenant_id, team_members=members, role_filter=role, actor=request.user, **data)
        body = {
            "notifications_created": len(notifications),
            "target_count": len(members) if members is not None else len(notifications),
            "role_filter": role,
            "team_members": len(members) if members is not None else None,
            "notification_type": data["notification_type"],
            "priority": data["priority"],
        }
        return Response(body, status=status.HTTP_201_CREATED)


class PreferenceViewSet(TenantScopedViewSet):
    """Notification preferences: your own (tenant managers: everyone's in the tenant)."""

    queryset = Preference.objects.select_related("user")
    serializer_class = PreferenceSerializer
    filterset_class = PreferenceFilter
    ordering_fields = ["notification_type"]
    create_service = staticmethod(services.preference_save)
    update_service = staticmethod(services.preference_save)
    delete_service = staticmethod(services.preference_delete)


class ChannelConfigViewSet(TenantScopedViewSet):
    """Chat, SMS and webhook channels of the tenant (URLs and secrets are write-only)."""

    queryset = ChannelConfig.objects.select_related("user")
    serializer_class = ChannelConfigSerializer
    filterset_class = ChannelConfigFilter
    search_fields = ["name"]
    ordering_fields = ["name", "created_at"]
    action_permissions = {"test": "test"}
    create_service = staticmethod(services.channel_save)
    update_service = staticmethod(services.channel_save)
    delete_service = staticmethod(services.channel_delete)

    @extend_schema(request=None, responses={200: TestResultSerializer, 502: TestResultSerializer})
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        ok, detail = services.channel_test(actor=request.user, channel=self.get_object())
        return Response({"ok": ok, "detail": detail}, status=status.HTTP_200_OK if ok else status.HTTP_502_BAD_GATEWAY)
