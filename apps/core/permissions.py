"""Django auth backend that answers `user.has_perm()` from the portal policy.

Roles are held per organization (Membership), not per user, so Django's global groups cannot
express them; this backend maps `app.view_model` / `add_` / `change_` / `delete_` onto
`policy.allows(user, action, Model)` for the organization the user acts within. The admin's
permission checks therefore ask the same policy as the API.
"""

from __future__ import annotations

from django.apps import apps

from .policy import policy
from .tenancy import acting

ACTIONS = ("view", "add", "change", "delete")


def _split(perm: str):
    app_label, _, codename = perm.partition(".")
    for action in ACTIONS:
        prefix = f"{action}_"
        if codename.startswith(prefix):
            try:
                return action, apps.get_model(app_label, codename[len(prefix):])
            except LookupError:
                return None, None
    return None, None


class RolePermissionBackend:
    """Grants model permissions from the acting membership's role (never authenticates)."""

    def authenticate(self, request, **credentials):
        return None

    def has_perm(self, user_obj, perm, obj=None):
        if not user_obj.is_active or not user_obj.is_staff:
            return False
        action, model = _split(perm)
        if model is None:
            return False
        if obj is not None:
            return policy.allows_object(user_obj, action, obj)
        return policy.allows(user_obj, action, model)

    def has_module_perms(self, user_obj, app_label):
        if not user_obj.is_active or not user_obj.is_staff:
            return False
        if acting(user_obj).role is None:
            return False
        config = apps.get_app_config(app_label)
        return any(policy.allows(user_obj, "view", m) for m in config.get_models())
