"""Puts the organization a session user acts within on the user (admin and session API)."""

from django.conf import settings

from .tenancy import choose_organization

SESSION_KEY = "portal_org"


class ActiveOrganizationMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # request.user here is the session's user: without the session cookie there is none, and
        # the lazy user (a session read, the second-factor lookup) is left for whoever needs it
        if settings.SESSION_COOKIE_NAME not in request.COOKIES:
            return self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            choice = request.headers.get("X-Organization") or request.session.get(SESSION_KEY)
            if choice:
                choose_organization(user, choice)
        return self.get_response(request)


class ResourceExhaustedMiddleware:
    """Out of disk or database resources outside the API (the admin, the portal pages): a 507
    (disk full: the upload's file system, or PostgreSQL's own, SQLSTATE 53100) or a 503 (PostgreSQL
    out of memory or connections) that says nothing was saved, instead of a 500. The API's views
    answer the same through `apps.core.api.errors`; the transaction has rolled back either way."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        import logging

        from django.http import HttpResponse, JsonResponse
        from django.utils.html import escape

        from .api.errors import resource_exhausted

        exhausted = resource_exhausted(exception)
        if exhausted is None:
            return None
        status, code, detail, retry = exhausted
        logging.getLogger(__name__).error("%s while handling %s %s: %s", code, request.method, request.path, exception)
        if request.path.startswith("/api/"):
            response = JsonResponse({"detail": detail, "errors": {}, "code": code}, status=status)
        else:
            response = HttpResponse(f"<!doctype html><title>Nothing was saved</title><h1>Nothing was saved</h1><p>{escape(detail)}</p>"
                                    "<p>Go back with the browser: what you typed is still in the form.</p>", status=status)
        response["Retry-After"] = retry
        return response
