from drf_spectacular.utils import extend_schema
from rest_framework import permissions, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.api.viewsets import OrganizationContextMixin, TenantScopedViewSet
from apps.core.choices import OrgKind
from apps.core.tenancy import acting, memberships_of

from .. import services
from ..models import Membership, Organization
from .filters import MembershipFilter, OrganizationFilter
from .serializers import MembershipSerializer, MeSerializer, OrganizationSerializer, TenantSerializer


class OrganizationViewSet(TenantScopedViewSet):
    """Organizations of every kind within the caller's reach."""

    queryset = Organization.objects.select_related("parent").prefetch_related("served_tenants")
    serializer_class = OrganizationSerializer
    filterset_class = OrganizationFilter
    search_fields = ["name", "slug"]
    ordering_fields = ["name", "created_at"]
    lookup_field = "slug"
    create_service = staticmethod(services.organization_create)
    update_service = staticmethod(services.organization_update)
    delete_service = staticmethod(services.organization_delete)


class TenantViewSet(OrganizationViewSet):
    """Tenants (organizations of kind tenant)."""

    queryset = Organization.objects.filter(kind=OrgKind.TENANT)
    serializer_class = TenantSerializer

    def _service_kwargs(self, serializer):
        data = dict(serializer.validated_data)
        if self.action == "create":
            data["kind"] = OrgKind.TENANT
        return data


class MembershipViewSet(TenantScopedViewSet):
    queryset = Membership.objects.select_related("user", "organization")
    serializer_class = MembershipSerializer
    filterset_class = MembershipFilter
    search_fields = ["user__username", "user__email"]
    ordering_fields = ["created_at", "role"]

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        serializer.instance = services.membership_create(
            actor=self.request.user,
            organization=data["organization"],
            role=data["role"],
            user=data.get("user"),
            username=data.get("new_username"),
            email=data.get("email", ""),
            is_active=data.get("is_active", True),
        )

    def perform_update(self, serializer):
        data = serializer.validated_data
        serializer.instance = services.membership_update(
            serializer.instance, actor=self.request.user, role=data.get("role"), is_active=data.get("is_active")
        )

    def perform_destroy(self, instance):
        services.membership_delete(instance, actor=self.request.user)


class MeView(OrganizationContextMixin, APIView):
    """The caller, the organization this request acts within, and all their memberships.
    Choose another organization per request with the `X-Organization: <slug>` header."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=MeSerializer)
    def get(self, request):
        ctx = acting(request.user)
        data = {
            "id": request.user.pk,
            "username": request.user.get_username(),
            "email": request.user.email,
            "is_staff": request.user.is_staff,
            "acting_organization": ctx.organization_slug,
            "acting_role": ctx.role,
            "memberships": memberships_of(request.user),
        }
        return Response(MeSerializer(data).data, status=status.HTTP_200_OK)
