"""Mailboxes over the API: owners and admins configure them, operators read them and poll one
now. The IMAP password is write-only (a placeholder on read; sending it back keeps it)."""

from __future__ import annotations

import django_filters
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.core.api.serializers import WriteOnlySecretField
from apps.core.api.viewsets import TenantScopedViewSet
from apps.tenants.api.serializers import TenantConfigSerializer

from . import services
from .models import Mailbox


class MailboxSerializer(TenantConfigSerializer):
    imap_password = WriteOnlySecretField(help_text="IMAP password. Write-only; stored encrypted.")

    class Meta:
        model = Mailbox
        fields = [
            "id",
            "tenant",
            "name",
            "address",
            "kind",
            "unknown_senders",
            "is_active",
            "imap_host",
            "imap_port",
            "imap_security",
            "imap_username",
            "imap_password",
            "imap_folder",
            "last_polled_at",
            "last_error",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "last_polled_at", "last_error", "created_at", "updated_at"]


class MailboxFilter(django_filters.FilterSet):
    tenant = django_filters.CharFilter(field_name="tenant__slug")

    class Meta:
        model = Mailbox
        fields = ["tenant", "kind", "is_active"]


class PollCountsSerializer(serializers.Serializer):
    """Mail taken by one poll, by outcome."""

    polled = serializers.IntegerField()
    created = serializers.IntegerField()
    threaded = serializers.IntegerField()
    ignored = serializers.IntegerField()
    duplicate = serializers.IntegerField()
    refused = serializers.IntegerField()
    sent = serializers.IntegerField()
    failed = serializers.IntegerField()


class PollErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()


class PollFailed(exceptions.APIException):
    status_code = status.HTTP_502_BAD_GATEWAY
    default_detail = "The IMAP server could not be polled."


def _create(*, actor, **data):
    return services.mailbox_save(actor=actor, **data)


class MailboxViewSet(TenantScopedViewSet):
    """A tenant's support mailboxes (docs/email.md). `POST …/{id}/poll` fetches new mail now."""

    queryset = Mailbox.objects.select_related("tenant").order_by("tenant_id", "name", "id")
    serializer_class = MailboxSerializer
    filterset_class = MailboxFilter
    search_fields = ["name", "address"]
    action_permissions = {"poll": "poll"}
    create_service = staticmethod(_create)
    update_service = staticmethod(services.mailbox_save)
    delete_service = staticmethod(services.mailbox_delete)

    @extend_schema(request=None, responses={200: PollCountsSerializer, 502: PollErrorSerializer})
    @action(detail=True, methods=["post"])
    def poll(self, request, pk=None):
        box = self.get_object()
        try:
            counts = services.mailbox_poll(mailbox_id=box.pk, actor=request.user)
        except (DjangoPermissionDenied, DjangoValidationError):
            raise  # 403 / 400 through the API's error handler
        except Exception as exc:  # the IMAP server's refusal or absence, stored on the mailbox too
            raise PollFailed(f"Polling {box.address} failed: {type(exc).__name__}: {exc}"[:500]) from exc
        return Response(counts)
