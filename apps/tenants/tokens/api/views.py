from django.core.exceptions import PermissionDenied
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.core.api.viewsets import PortalViewSetMixin, TenantScopedCreateReadViewSet
from apps.core.tenancy import acting

from ...models import Organization
from .. import services
from ..models import ApiToken, ServiceAccount
from .serializers import ApiTokenCreatedSerializer, ApiTokenCreateSerializer, ApiTokenSerializer, ServiceAccountSerializer


def _acting_organization(user) -> Organization:
    ctx = acting(user)
    if ctx.organization_id is None:
        raise PermissionDenied("Choose the organization to act within (X-Organization: <slug>); you are not a member of any.")
    return Organization.objects.get(pk=ctx.organization_id)


class ServiceAccountViewSet(PortalViewSetMixin, mixins.CreateModelMixin, mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Service accounts: non-human members of one organization with a role (its owners and admins
    manage them; `is_active: false` stops every token of the account at once)."""

    queryset = ServiceAccount.objects.select_related("organization", "user", "created_by")
    serializer_class = ServiceAccountSerializer
    filterset_fields = ["role", "is_active"]
    search_fields = ["name", "description"]
    ordering_fields = ["name", "created_at"]

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        organization = data.pop("organization", None) or _acting_organization(self.request.user)
        serializer.instance = services.service_account_create(actor=self.request.user, organization=organization, **data)

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        data.pop("organization", None)
        serializer.instance = services.service_account_update(serializer.instance, actor=self.request.user, **data)


class ApiTokenViewSet(TenantScopedCreateReadViewSet):
    """API tokens: your personal tokens in the acting organization (owners and admins: every token
    of their organization). Create returns the secret once; revoke stops it at once."""

    queryset = ApiToken.objects.select_related("organization", "user", "created_by", "revoked_by")
    serializer_class = ApiTokenSerializer
    filterset_fields = ["role", "service_account"]
    search_fields = ["name", "prefix"]
    ordering_fields = ["created_at", "last_used_at", "name"]
    action_permissions = {"revoke": "revoke"}

    def get_serializer_class(self):
        return ApiTokenCreateSerializer if self.action == "create" else ApiTokenSerializer

    @extend_schema(request=ApiTokenCreateSerializer, responses={201: ApiTokenCreatedSerializer})
    def create(self, request, *args, **kwargs):
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        account = data.get("service_account")
        organization = account.organization if account is not None else _acting_organization(request.user)
        token, secret = services.api_token_create(actor=request.user, organization=organization, **data)
        out = ApiTokenCreatedSerializer(token, context=self.get_serializer_context()).data
        out["token"] = secret
        return Response(out, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=ApiTokenSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        token = services.api_token_revoke(self.get_object(), actor=request.user)
        return Response(ApiTokenSerializer(token, context=self.get_serializer_context()).data)
