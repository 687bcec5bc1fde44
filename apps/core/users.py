"""People as the portal's gate sees them: `auth.User` scoped to the acting user.

Django's `User` is not tenant-owned (a person may belong to several organizations), so it has no
`visible_to` of its own. `PortalUser` is a proxy of it (same table, no migration of the user
model) whose `visible_to(user)` returns the people who hold an **active membership in an
organization the acting user can see** (`Organization.objects.visible_to(user)`: for tenant staff
their tenant, its customers and the partners serving it; for partner staff the partner and the
tenants it serves; platform staff and superusers: everyone). It is view-only for every role;
users are created and changed in Django's own User admin by platform admins.

How other apps use it:
- querysets: `visible_users(request.user)` (a `User` queryset) or
  `PortalUser.objects.visible_to(request.user)`;
- admin: `autocomplete_fields = ("assignee",)` on any foreign key to `settings.AUTH_USER_MODEL`
  works for tenant staff: the admin registered for `auth.User` (`apps.core.admin.ScopedUserAdmin`)
  answers autocomplete and raw-id lookups from this scope, and `TenantScopedAdmin` limits every
  user select/autocomplete choice to it. A foreign key declared to `"core.PortalUser"` uses the
  "People" admin (`PortalUserAdmin`) the same way.
"""

from __future__ import annotations

from django.apps import apps
from django.contrib.auth.models import User, UserManager
from django.db.models import Exists, OuterRef

from .choices import STAFF_ROLES
from .models import PortalQuerySet
from .tenancy import Acting


class PortalUserManager(UserManager.from_queryset(PortalQuerySet)):
    pass


class PortalUser(User):
    """A person, seen through the tenant gate (proxy of `auth.User`)."""

    PORTAL_ROLE_ACTIONS = {"view": STAFF_ROLES, "add": set(), "change": set(), "delete": set()}

    objects = PortalUserManager()

    class Meta:
        proxy = True
        app_label = "core"
        ordering = ["username"]
        verbose_name = "person"
        verbose_name_plural = "people"

    @classmethod
    def scope_queryset(cls, queryset, ctx: Acting, action: str):
        """People with an active membership in an organization within the acting user's reach."""
        if ctx.is_platform:
            return queryset
        Organization = apps.get_model("tenants", "Organization")
        Membership = apps.get_model("tenants", "Membership")
        orgs = Organization.scope_queryset(Organization.objects.all(), ctx, "view").values("pk")
        reach = Membership.objects.filter(user_id=OuterRef("pk"), is_active=True, organization_id__in=orgs)
        return queryset.filter(Exists(reach))


def visible_users(user, action: str = "view"):
    """The `auth.User` rows `user` may see (the same rows as `PortalUser.objects.visible_to`)."""
    return User.objects.filter(pk__in=PortalUser.objects.visible_to(user, action).values("pk"))


def visible_organizations(user):
    """Organizations whose memberships may be shown next to a person (never another tenant's)."""
    return apps.get_model("tenants", "Organization").objects.visible_to(user)
