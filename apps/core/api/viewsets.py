"""Viewset base: acts within the chosen organization, scopes rows, writes through services.

Subclasses set `queryset`, `serializer_class`, `filterset_class`, and the services:

    create_service = staticmethod(ticket_create)   # called as create_service(actor=user, **data)
    update_service = staticmethod(ticket_update)   # called as update_service(instance, actor=user, **data)
    delete_service = staticmethod(ticket_delete)   # called as delete_service(instance, actor=user)

State changes are `@action`s that call one service each; `action_permissions` maps them to
policy actions (`{"escalate": "escalate"}`), anything unmapped that writes needs "change".
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from rest_framework import exceptions, mixins, viewsets
from rest_framework.permissions import IsAuthenticated

from apps.core.api.permissions import PolicyPermission
from apps.core.api.serializers import StrictFieldsMixin, reject_unknown_fields
from apps.core.tenancy import acting, choose_organization


class OrganizationContextMixin:
    """Reads `X-Organization` (slug or id) after authentication; an unknown one is a 403."""

    def perform_authentication(self, request):
        super().perform_authentication(request)
        user = request.user
        if user is not None and user.is_authenticated:
            choice = request.headers.get("X-Organization")
            if choice:
                choose_organization(user, choice)
            try:
                acting(user)
            except DjangoPermissionDenied as exc:
                raise exceptions.PermissionDenied(str(exc)) from exc


class ScopedQuerysetMixin:
    """`get_queryset` is always `queryset.visible_to(user)`: a row the user cannot see is a 404;
    a row they see but may not change is a 403 (`PolicyPermission.has_object_permission`)."""

    def get_queryset(self):
        return super().get_queryset().visible_to(self.request.user, "view")


class ServiceWriteMixin:
    create_service = None
    update_service = None
    delete_service = None

    def _service_kwargs(self, serializer):
        return dict(serializer.validated_data)

    def perform_create(self, serializer):
        if self.create_service is None:
            raise exceptions.MethodNotAllowed("POST")
        serializer.instance = self.create_service(actor=self.request.user, **self._service_kwargs(serializer))

    def perform_update(self, serializer):
        if self.update_service is None:
            raise exceptions.MethodNotAllowed(self.request.method)
        serializer.instance = self.update_service(serializer.instance, actor=self.request.user, **self._service_kwargs(serializer))

    def perform_destroy(self, instance):
        if self.delete_service is None:
            raise exceptions.MethodNotAllowed("DELETE")
        self.delete_service(instance, actor=self.request.user)


class StrictWriteMixin:
    """A write with a field the serializer does not know is a 400 naming the known ones, for
    every serializer (a StrictFieldsMixin one, ScopedModelSerializer included, checks itself, nested ones too)."""

    def get_serializer(self, *args, **kwargs):
        serializer = super().get_serializer(*args, **kwargs)
        if "data" in kwargs and not isinstance(serializer, StrictFieldsMixin):
            reject_unknown_fields(serializer, kwargs["data"])
        return serializer


class PortalViewSetMixin(OrganizationContextMixin, ScopedQuerysetMixin, ServiceWriteMixin, StrictWriteMixin):
    permission_classes = [IsAuthenticated, PolicyPermission]
    action_permissions: dict[str, str] = {}


class TenantScopedViewSet(PortalViewSetMixin, viewsets.ModelViewSet):
    """Full CRUD over a tenant-scoped model through its services."""


class TenantScopedReadOnlyViewSet(PortalViewSetMixin, viewsets.ReadOnlyModelViewSet):
    """List and retrieve only; add `@action`s for state changes."""


class TenantScopedCreateReadViewSet(PortalViewSetMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Create, list and retrieve (no generic update or delete)."""
