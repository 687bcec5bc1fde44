from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import parsers, status
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from apps.core.api.filters import PortalFilterBackend
from apps.core.api.parsers import PortalFormParser, PortalJSONParser
from apps.core.api.viewsets import TenantScopedCreateReadViewSet
from apps.core.storage import storage_download

from .. import services
from ..models import Ticket, TicketAttachment, TicketEvent, TicketMessage
from ..pagination import TicketPagination
from ..search import ORDERINGS
from .filters import TicketFilter, TicketOrderingFilter, TicketSearchFilter
from .serializers import (
    AssignSerializer,
    AttachmentSerializer,
    EscalateSerializer,
    MessageSerializer,
    ReplySerializer,
    StatusSerializer,
    TicketCreateSerializer,
    TicketDetailSerializer,
    TicketSerializer,
    TicketUpdateSerializer,
    UploadSerializer,
    created_ticket_data,
    ticket_list_data,
    ticket_rows,
    validated_create,
)

PARSERS = [PortalJSONParser, parsers.MultiPartParser, PortalFormParser]


class TicketViewSet(TenantScopedCreateReadViewSet):
    """Tickets within the caller's reach: tenant staff their tenant's, partners those routed or
    escalated to them, customers their organization's. Every write calls one service."""

    queryset = Ticket.objects.select_related("tenant", "customer", "partner", "assignee")
    serializer_class = TicketSerializer
    filterset_class = TicketFilter
    pagination_class = TicketPagination
    parser_classes = PARSERS
    # search before ordering: the ordering may be by the search's rank
    filter_backends = [PortalFilterBackend, TicketSearchFilter, TicketOrderingFilter]
    ordering_fields = list(ORDERINGS)
    action_permissions = {
        "messages": "reply",
        "assign": "assign",
        "escalate": "escalate",
        "change_status": "status",
        "attachments": "attach",
        "download": "view",
    }

    def get_queryset(self):
        qs = super().get_queryset()
        if self.action == "retrieve":
            user = self.request.user
            qs = qs.prefetch_related(
                Prefetch("messages", queryset=TicketMessage.objects.visible_to(user).select_related("author")),
                Prefetch("attachments", queryset=TicketAttachment.objects.visible_to(user)),
                Prefetch("timeline", queryset=TicketEvent.objects.visible_to(user).select_related("actor")),
            )
        return qs

    def get_serializer_class(self):
        return {
            "retrieve": TicketDetailSerializer,
            "create": TicketCreateSerializer,
            "partial_update": TicketUpdateSerializer,
            "update": TicketUpdateSerializer,
        }.get(self.action, TicketSerializer)

    def list(self, request, *args, **kwargs):
        # TicketSerializer's answer from plain rows: DRF's field-by-field serialization and ~3 model
        # instances per ticket were 70 % of the list's CPU (docs/api-performance.md)
        rows = ticket_rows(self.filter_queryset(self.get_queryset()))
        page = self.paginate_queryset(rows)
        if page is None:
            return Response(ticket_list_data(rows))
        return self.get_paginated_response(ticket_list_data(page))

    def _respond(self, pk, code=status.HTTP_200_OK):
        self.action = "retrieve"
        obj = self.get_queryset().get(pk=pk)
        return Response(TicketDetailSerializer(obj, context=self.get_serializer_context()).data, status=code)

    @extend_schema(request=TicketCreateSerializer, responses={201: TicketDetailSerializer})
    def create(self, request, *args, **kwargs):
        ticket = services.ticket_create(actor=request.user, **validated_create(request.data))
        return Response(created_ticket_data(ticket, request.user), status=status.HTTP_201_CREATED)

    @extend_schema(request=TicketUpdateSerializer, responses=TicketDetailSerializer)
    def partial_update(self, request, *args, **kwargs):
        ticket = self.get_object()
        ser = TicketUpdateSerializer(data=request.data, partial=True)
        ser.is_valid(raise_exception=True)
        services.ticket_update(ticket, actor=request.user, **ser.validated_data)
        return self._respond(ticket.pk)

    @extend_schema(request=ReplySerializer, responses={201: MessageSerializer})
    @action(detail=True, methods=["post"])
    def messages(self, request, pk=None):
        """Add a public reply or an internal note (staff only)."""
        ticket = self.get_object()
        ser = ReplySerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        msg = services.ticket_reply(ticket, actor=request.user, **ser.validated_data)
        return Response(MessageSerializer(msg).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=AssignSerializer, responses=TicketDetailSerializer)
    @action(detail=True, methods=["post"])
    def assign(self, request, pk=None):
        """Assign to a staff member (`assignee`: user id, null to unassign) or `auto`."""
        ticket = self.get_object()
        ser = AssignSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        services.ticket_assign(ticket, actor=request.user, assignee=ser.validated_data.get("assignee"), auto=ser.validated_data["auto"])
        return self._respond(ticket.pk)

    @extend_schema(request=EscalateSerializer, responses=TicketDetailSerializer)
    @action(detail=True, methods=["post"])
    def escalate(self, request, pk=None):
        """Raise the escalation level; `to_partner` (slug) hands the ticket to a partner."""
        ticket = self.get_object()
        ser = EscalateSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        services.ticket_escalate(ticket, actor=request.user, **ser.validated_data)
        return self._respond(ticket.pk)

    @extend_schema(request=StatusSerializer, responses=TicketDetailSerializer)
    @action(detail=True, methods=["post"], url_path="status", url_name="status")
    def change_status(self, request, pk=None):
        """Move the ticket along the transition table (waiting pauses the SLA clock)."""
        ticket = self.get_object()
        ser = StatusSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        services.ticket_change_status(ticket, actor=request.user, **ser.validated_data)
        return self._respond(ticket.pk)

    @extend_schema(request={"multipart/form-data": UploadSerializer}, responses={201: AttachmentSerializer})
    @action(detail=True, methods=["post"], parser_classes=[parsers.MultiPartParser, parsers.FormParser])
    def attachments(self, request, pk=None):
        """Upload one file (`file`); size and type limits apply."""
        ticket = self.get_object()
        ser = UploadSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        att = services.ticket_attach(ticket, actor=request.user, file=ser.validated_data["file"])
        return Response(AttachmentSerializer(att).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiResponse(description="The file.")})
    @action(detail=True, methods=["get"], url_path=r"attachments/(?P<attachment_id>[0-9]+)/download", url_name="download")
    def download(self, request, pk=None, attachment_id=None):
        """Download an attachment the caller may see (customers: not those of internal notes)."""
        ticket = self.get_object()
        att = TicketAttachment.objects.visible_to(request.user).filter(ticket=ticket, pk=attachment_id).first()
        if att is None:
            raise NotFound("No such attachment on this ticket.")
        return storage_download(att.file.name, filename=att.filename, content_type=att.content_type, storage=att.file.storage)
