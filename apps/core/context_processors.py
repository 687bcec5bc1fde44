from django.core.exceptions import PermissionDenied

from .tenancy import acting, memberships_of


def portal(request):
    """Acting organization and the user's other organizations, for the admin switcher."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    try:
        ctx = acting(user)
    except PermissionDenied:
        return {}
    return {
        "portal_acting": ctx,
        "portal_memberships": memberships_of(user),
    }
