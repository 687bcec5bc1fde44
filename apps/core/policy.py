"""The one permission policy that the admin, the API, tasks and selectors all ask.

Two questions, always in this order:
1. May this role do this action on this kind of row at all? (`allows`) A model states its own
   table in `PORTAL_ROLE_ACTIONS`; anything not stated falls back to `DEFAULT_ROLE_ACTIONS`.
   Custom actions (escalate, acknowledge, run…) fall back to "change".
2. Which rows? (`scope`) Always `Model.objects.visible_to(user, action)`, which combines the
   role check with the tenant filter (and django-guardian object grants where a model shares
   single rows with named users).

Granting a role (a membership, an invitation): `may_grant_role` — never above one's own.

Models that are not tenant-owned and say nothing (Django's users, beat schedules, the event
outbox) are platform resources: platform owners/admins manage them, platform staff may view.
"""

from __future__ import annotations

from django.db import models

from .choices import MANAGER_ROLES, ROLE_RANK, STAFF_ROLES, Role
from .tenancy import Acting, acting

R = Role
DEFAULT_ROLE_ACTIONS: dict[str, frozenset[str]] = {
    "view": STAFF_ROLES,
    "add": frozenset({R.OWNER, R.ADMIN, R.OPERATOR}),
    "change": frozenset({R.OWNER, R.ADMIN, R.OPERATOR}),
    "delete": MANAGER_ROLES,
}
PLATFORM_RESOURCE_ACTIONS: dict[str, frozenset[str]] = {
    "view": STAFF_ROLES,
    "add": MANAGER_ROLES,
    "change": MANAGER_ROLES,
    "delete": MANAGER_ROLES,
}


def role_actions(model) -> dict[str, frozenset[str]]:
    declared = getattr(model, "PORTAL_ROLE_ACTIONS", None)
    if declared is not None:
        return {**DEFAULT_ROLE_ACTIONS, **{k: frozenset(v) for k, v in declared.items()}}
    if is_tenant_scoped(model):
        return DEFAULT_ROLE_ACTIONS
    return PLATFORM_RESOURCE_ACTIONS


def is_tenant_scoped(model) -> bool:
    return hasattr(model, "scope_queryset")


class Policy:
    """Answers permission questions for one acting user."""

    def allows(self, user, action: str, model) -> bool:
        """Role-level check: may this user perform `action` on rows of `model` at all?"""
        ctx = acting(user)
        if ctx.superuser:
            return True
        if ctx.is_anonymous or ctx.role is None:
            return False
        if not is_tenant_scoped(model) and not ctx.is_platform:
            return False
        table = role_actions(model)
        roles = table.get(action) or table["change"]
        return ctx.role in roles

    def may_grant_role(self, user, role: str) -> bool:
        """May this user hand `role` to someone (a membership, an invitation)? Never above their own."""
        ctx = acting(user)
        return ctx.superuser or (ctx.role is not None and ROLE_RANK.get(role, 0) <= ctx.rank)

    def allows_object(self, user, action: str, obj: models.Model) -> bool:
        """Row-level check: the role allows it and the row is within the user's reach."""
        model = type(obj)
        if is_tenant_scoped(model) or hasattr(model.objects, "visible_to"):
            return model.objects.visible_to(user, action).filter(pk=obj.pk).exists()
        return self.allows(user, action, model)

    def scope(self, queryset: models.QuerySet, user, action: str = "view") -> models.QuerySet:
        """Filter a queryset down to what the user may `action`."""
        model = queryset.model
        ctx = acting(user)
        if not self.allows(user, action, model):
            return self._object_grants(queryset, user, action, ctx)
        if ctx.superuser or not is_tenant_scoped(model):
            return queryset
        scoped = model.scope_queryset(queryset, ctx, action)
        if getattr(model, "PORTAL_OBJECT_GRANTS", False):
            return scoped | self._object_grants(queryset, user, action, ctx)
        return scoped

    def _object_grants(self, queryset, user, action, ctx: Acting):
        """Rows shared with this user one by one through django-guardian (opt-in per model)."""
        model = queryset.model
        if not getattr(model, "PORTAL_OBJECT_GRANTS", False) or ctx.is_anonymous:
            return queryset.none()
        from guardian.shortcuts import get_objects_for_user

        codename = f"{action}_{model._meta.model_name}"
        if action not in ("view", "add", "change", "delete"):
            codename = f"change_{model._meta.model_name}"
        perm = f"{model._meta.app_label}.{codename}"
        return get_objects_for_user(
            user, perm, klass=queryset, use_groups=False, with_superuser=False, accept_global_perms=False
        )


policy = Policy()
