from drf_spectacular.utils import extend_schema
from rest_framework import permissions, status
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from apps.core.api.viewsets import OrganizationContextMixin, TenantScopedCreateReadViewSet, TenantScopedViewSet
from apps.core.choices import OrgKind
from apps.core.tenancy import acting, memberships_of

from .. import services
from ..models import Invitation, Membership, Organization
from .filters import InvitationFilter, MembershipFilter, OrganizationFilter
from .serializers import (
    InvitationAcceptSerializer,
    InvitationSerializer,
    MembershipSerializer,
    MeMembershipSerializer,
    MeSerializer,
    OrganizationSerializer,
    TenantSerializer,
)


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
            user_id=data.get("user"),
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


class InvitationViewSet(TenantScopedCreateReadViewSet):
    """Invitations to join an organization (its owners and admins): list, create (the invitation
    is e-mailed), revoke; the invited person accepts with the code (`accept`)."""

    queryset = Invitation.objects.select_related("organization", "invited_by", "accepted_by")
    serializer_class = InvitationSerializer
    filterset_class = InvitationFilter
    search_fields = ["email"]
    ordering_fields = ["created_at", "expires_at"]
    create_service = staticmethod(services.invitation_create)
    action_permissions = {"revoke": "change"}
    throttle_scope = "auth"  # guessing codes at `accept` is throttled like signing in

    @extend_schema(request=None, responses=InvitationSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        invitation = services.invitation_revoke(self.get_object(), actor=request.user)
        return Response(self.get_serializer(invitation).data)

    @extend_schema(request=InvitationAcceptSerializer, responses={201: MeMembershipSerializer})
    @action(detail=False, methods=["post"], permission_classes=[permissions.AllowAny], throttle_classes=[ScopedRateThrottle])
    def accept(self, request):
        """Accept with the e-mailed code: signed in, your account joins; otherwise send a new
        account's `username` and `password`."""
        body = InvitationAcceptSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        user = request.user if request.user.is_authenticated else None
        membership = services.invitation_accept(user=user, **body.validated_data)
        return Response(MeMembershipSerializer(membership).data, status=status.HTTP_201_CREATED)


class MeView(OrganizationContextMixin, APIView):
    """The caller, the organization this request acts within, and all their memberships.
    Choose another organization per request with the `X-Organization: <slug>` header."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=MeSerializer)
    def get(self, request):
        return Response(me_data(request.user), status=status.HTTP_200_OK)


def _text(value):
    return None if value is None else str(value)


def me_data(user) -> dict:
    """MeSerializer's answer for `user` (tests/core/test_me_path.py holds the two equal), mapped by
    hand: the serializer deep-copied its 7 fields and the nested one's 5 per request, ~30 % of the
    route's CPU (docs/api-performance.md)."""
    ctx = acting(user)
    return {
        "id": int(user.pk),
        "username": str(user.get_username()),
        "email": str(user.email),
        "is_staff": bool(user.is_staff),
        "acting_organization": _text(ctx.organization_slug),
        "acting_role": _text(ctx.role),
        "memberships": [
            {"id": m.pk, "organization": str(m.organization.slug), "organization_name": str(m.organization.name),
             "kind": str(m.organization.kind), "role": str(m.role)}
            for m in memberships_of(user)
        ],
    }
