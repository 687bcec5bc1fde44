"""DRF permission class: the same policy as the admin, per action."""

from rest_framework.permissions import BasePermission

from apps.core.policy import policy

# DRF's standard viewset actions → policy actions.
STANDARD = {
    "list": "view",
    "retrieve": "view",
    "create": "add",
    "update": "change",
    "partial_update": "change",
    "destroy": "delete",
    "metadata": "view",
}


def policy_action(view) -> str:
    """The policy action for the view's current action: the viewset's `action_permissions`
    map first (`{"escalate": "escalate"}`), then the standard CRUD mapping, then `change`."""
    action = getattr(view, "action", None) or ""
    mapping = getattr(view, "action_permissions", {}) or {}
    if action in mapping:
        return mapping[action]
    if action in STANDARD:
        return STANDARD[action]
    method = view.request.method if getattr(view, "request", None) else "GET"
    return "view" if method in ("GET", "HEAD", "OPTIONS") else "change"


class PolicyPermission(BasePermission):
    """Role check on the model; row checks happen in `visible_to` (another tenant's row is 404)."""

    message = "Your role in this organization does not allow this action."

    def has_permission(self, request, view):
        model = getattr(view, "policy_model", None) or getattr(getattr(view, "queryset", None), "model", None)
        if model is None:
            return bool(request.user and request.user.is_authenticated)
        return policy.allows(request.user, policy_action(view), model)

    def has_object_permission(self, request, view, obj):
        action = policy_action(view)
        if action == "view":
            return True  # the row came through visible_to(user, "view")
        return policy.allows_object(request.user, action, obj)
