"""Customers API: registration and lifecycle actions, customer services, summary, data exports
and deletion requests. Every view calls one service."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.core.api.viewsets import TenantScopedCreateReadViewSet, TenantScopedReadOnlyViewSet
from apps.core.storage import storage_download

from .. import deletion, exports, services
from ..models import Customer, CustomerService, DataExport, DeletionRequest
from ..summary import customer_summary
from .filters import CustomerFilter, CustomerServiceFilter, DataExportFilter, DeletionRequestFilter
from .serializers import (
    CustomerSerializer,
    CustomerServiceSerializer,
    CustomerUpdateSerializer,
    DataExportSerializer,
    DeletionRequestSerializer,
    ReasonSerializer,
    VerifySerializer,
)

TRANSITIONS = {
    "onboard": services.customer_start_onboarding,
    "activate": services.customer_activate,
    "suspend": services.customer_suspend,
    "reactivate": services.customer_reactivate,
    "terminate": services.customer_terminate,
}


class CustomerViewSet(TenantScopedCreateReadViewSet):
    """A tenant's customers. `POST` registers one (state registered, a verification code is
    emailed); lifecycle actions move it through registered → verified → onboarding → active ⇄
    suspended → terminated. Customers see only their own record."""

    queryset = Customer.objects.select_related("tenant", "organization")
    serializer_class = CustomerSerializer
    filterset_class = CustomerFilter
    search_fields = ["account_number", "name", "contact_email"]
    ordering_fields = ["created_at", "name", "account_number", "state"]
    action_permissions = {"verify": "verify", "send_code": "send_code", "services": "view", "service_detail": "view", "summary": "view"}
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_serializer_class(self):
        if self.action == "partial_update":
            return CustomerUpdateSerializer
        return super().get_serializer_class()

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        serializer.instance = services.customer_register(actor=self.request.user, **data)

    def partial_update(self, request, *args, **kwargs):
        customer = self.get_object()
        serializer = CustomerUpdateSerializer(customer, data=request.data, partial=True, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        changes = {k: v for k, v in serializer.validated_data.items() if k in ("name", "contact_email", "contact_phone")}
        customer = services.customer_update(customer, actor=request.user, **changes)
        return Response(CustomerSerializer(customer, context=self.get_serializer_context()).data)

    def _transition(self, request, name):
        customer = self.get_object()
        body = ReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        customer = TRANSITIONS[name](customer, actor=request.user, reason=body.validated_data["reason"])
        return Response(CustomerSerializer(customer, context=self.get_serializer_context()).data)

    @extend_schema(request=VerifySerializer, responses=CustomerSerializer)
    @action(detail=True, methods=["post"])
    def verify(self, request, pk=None):
        """Verify the customer's contact email with the one-time code that was emailed."""
        customer = self.get_object()
        body = VerifySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        customer = services.customer_verify(customer, actor=request.user, code=body.validated_data["code"])
        return Response(CustomerSerializer(customer, context=self.get_serializer_context()).data)

    @extend_schema(request=None, responses={202: OpenApiResponse(description="A new code was emailed.")})
    @action(detail=True, methods=["post"], url_path="send-code")
    def send_code(self, request, pk=None):
        """Email a new verification code (earlier codes stop working)."""
        row = services.customer_send_verification_code(self.get_object(), actor=request.user)
        return Response({"detail": f"A verification code was sent to {row.sent_to}.", "expires_at": row.expires_at}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=ReasonSerializer, responses=CustomerSerializer)
    @action(detail=True, methods=["post"])
    def onboard(self, request, pk=None):
        return self._transition(request, "onboard")

    @extend_schema(request=ReasonSerializer, responses=CustomerSerializer)
    @action(detail=True, methods=["post"])
    def activate(self, request, pk=None):
        return self._transition(request, "activate")

    @extend_schema(request=ReasonSerializer, responses=CustomerSerializer)
    @action(detail=True, methods=["post"])
    def suspend(self, request, pk=None):
        """Suspend (reason required): active services are suspended, the customer's logins stop."""
        return self._transition(request, "suspend")

    @extend_schema(request=ReasonSerializer, responses=CustomerSerializer)
    @action(detail=True, methods=["post"])
    def reactivate(self, request, pk=None):
        return self._transition(request, "reactivate")

    @extend_schema(request=ReasonSerializer, responses=CustomerSerializer)
    @action(detail=True, methods=["post"])
    def terminate(self, request, pk=None):
        """Terminate (final, reason required): every service is terminated."""
        return self._transition(request, "terminate")

    @extend_schema(methods=["GET"], request=None, responses=CustomerServiceSerializer(many=True))
    @extend_schema(methods=["POST"], request=CustomerServiceSerializer, responses={201: CustomerServiceSerializer})
    @action(detail=True, methods=["get", "post"])
    def services(self, request, pk=None):
        """GET: the customer's services, a page like every list. POST: provision one (`plan`,
        `parameters`); the status follows the provisioning job."""
        customer = self.get_object()
        if request.method == "GET":
            page = self.paginate_queryset(customer.services.order_by("-created_at", "-id"))
            return self.get_paginated_response(CustomerServiceSerializer(page, many=True, context=self.get_serializer_context()).data)
        body = CustomerServiceSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        service = services.customer_service_provision(
            actor=request.user, customer=customer, plan=body.validated_data["plan"], parameters=body.validated_data.get("parameters")
        )
        return Response(CustomerServiceSerializer(service, context=self.get_serializer_context()).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=CustomerServiceSerializer)
    @action(detail=True, methods=["get"], url_path=r"services/(?P<sid>[0-9]+)", url_name="service-detail")
    def service_detail(self, request, pk=None, sid=None):
        """One service of the customer with its provisioning status."""
        customer = self.get_object()
        service = CustomerService.objects.visible_to(request.user).filter(customer=customer, pk=sid).first()
        if service is None:
            return Response({"detail": "No such service for this customer.", "errors": {}}, status=status.HTTP_404_NOT_FOUND)
        return Response(CustomerServiceSerializer(service, context=self.get_serializer_context()).data)

    @extend_schema(responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["get"])
    def summary(self, request, pk=None):
        """State, lifecycle timeline, services, and what other apps contribute (e.g. open tickets)."""
        return Response(customer_summary(self.get_object(), user=request.user))


class CustomerServiceViewSet(TenantScopedReadOnlyViewSet):
    """Every customer service within reach (provision through `POST /customers/{id}/services`)."""

    queryset = CustomerService.objects.select_related("customer")
    serializer_class = CustomerServiceSerializer
    filterset_class = CustomerServiceFilter
    ordering_fields = ["created_at", "status"]


class DataExportViewSet(TenantScopedCreateReadViewSet):
    """Data exports: tenant owners/admins for their tenant (or one customer), customers for
    themselves. Built by a task; `progress` says how far; download while not expired."""

    queryset = DataExport.objects.select_related("customer")
    serializer_class = DataExportSerializer
    filterset_class = DataExportFilter
    ordering_fields = ["created_at", "status"]
    action_permissions = {"download": "download"}

    def perform_create(self, serializer):
        serializer.instance = exports.data_export_request(actor=self.request.user, **serializer.validated_data)

    @extend_schema(responses={(200, "application/zip"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        """The zip file (checks permission and expiry; every download is recorded)."""
        export = self.get_object()
        name = exports.data_export_download(export, actor=request.user)
        return storage_download(name, filename=f"export-{export.pk}.zip", content_type="application/zip")


class DeletionRequestViewSet(TenantScopedCreateReadViewSet):
    """Requests to erase a customer's personal data after a 30-day grace period (cancellable);
    platform admins may erase at once with `immediate: true` and a reason."""

    queryset = DeletionRequest.objects.select_related("customer")
    serializer_class = DeletionRequestSerializer
    filterset_class = DeletionRequestFilter
    ordering_fields = ["created_at", "due_at", "status"]
    action_permissions = {"cancel": "cancel"}

    def perform_create(self, serializer):
        serializer.instance = deletion.deletion_request_create(actor=self.request.user, **serializer.validated_data)

    @extend_schema(request=ReasonSerializer, responses=DeletionRequestSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        body = ReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        req = deletion.deletion_request_cancel(self.get_object(), actor=request.user, reason=body.validated_data["reason"])
        return Response(DeletionRequestSerializer(req, context=self.get_serializer_context()).data)
