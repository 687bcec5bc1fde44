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

        from django.db import OperationalError
        from django.http import HttpResponse, JsonResponse

        from .api.errors import PG_DISK_FULL, PG_INSUFFICIENT_RESOURCES, STORAGE_FULL, STORAGE_FULL_DETAIL, sqlstate

        if isinstance(exception, OSError) and exception.errno in STORAGE_FULL:
            code, detail, status, retry = "insufficient_storage", STORAGE_FULL_DETAIL, 507, "300"
        elif isinstance(exception, OperationalError) and sqlstate(exception).startswith(PG_INSUFFICIENT_RESOURCES):
            if sqlstate(exception) == PG_DISK_FULL:
                code, detail, status, retry = "insufficient_storage", STORAGE_FULL_DETAIL, 507, "300"
            else:
                code, status, retry = "database_busy", 503, "60"
                detail = "The portal's database is out of resources right now, so nothing was saved. Try again in a minute."
        else:
            return None
        logging.getLogger(__name__).error("%s while handling %s %s: %s", code, request.method, request.path, exception)
        if request.path.startswith("/api/"):
            response = JsonResponse({"detail": detail, "errors": {}, "code": code}, status=status)
        else:
            from django.utils.html import escape

            response = HttpResponse(f"<!doctype html><title>Nothing was saved</title><h1>Nothing was saved</h1><p>{escape(detail)}</p>"
                                    "<p>Go back with the browser: what you typed is still in the form.</p>", status=status)
        response["Retry-After"] = retry
        return response
