"""Puts the organization a session user acts within on the user (admin and session API)."""

from .tenancy import choose_organization

SESSION_KEY = "portal_org"


class ActiveOrganizationMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            choice = request.headers.get("X-Organization") or request.session.get(SESSION_KEY)
            if choice:
                choose_organization(user, choice)
        return self.get_response(request)
