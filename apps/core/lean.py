"""Lean WSGI routes: Django's own handler with the middleware that still applies to a token-
authenticated API call (security headers and SSL redirect, CSP, host validation, clickjacking
header, resource-exhausted answers, Prometheus metrics) and without what serves browser sessions
and logins, straight to one view for a few URLs — no URL resolution, no DRF request wrapping.

Used by the hottest writes: alert ingestion (apps/alerts/api/ingest_wsgi.py) and ticket creation
(apps/tickets/api/create_wsgi.py), wired in config/wsgi.py. Each decides which requests it takes
and answers exactly as its DRF view does (tests hold the two equal)."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import MiddlewareNotUsed
from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler
from django.urls import ResolverMatch, get_resolver
from django.utils.module_loading import import_string

# Middleware that serves browser sessions and logins only; everything else in MIDDLEWARE runs.
SKIPPED_MIDDLEWARE = frozenset({
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "apps.core.middleware.ActiveOrganizationMiddleware",
    "axes.middleware.AxesMiddleware",
})


class LeanHandler(WSGIHandler):
    """Django's WSGI handler with the lean middleware list, serving `view` at the URLs named
    `url_names` only (their paths exactly as the URLconf has them)."""

    def __init__(self, view, url_names: tuple[str, ...]):
        resolver = get_resolver()
        self.matches: dict[str, ResolverMatch] = {}
        for name in url_names:
            path = "/" + resolver.reverse(name)
            full = resolver.resolve(path)
            for form in (path, path.rstrip("/")):  # both slash forms answer (apps/core/api/routing.py)
                self.matches[form] = ResolverMatch(view, (), {}, url_name=full.url_name, app_names=full.app_names,
                                                   namespaces=full.namespaces, route=full.route)
        super().__init__()

    def load_middleware(self, is_async=False):
        self._view_middleware, self._template_response_middleware, self._exception_middleware = [], [], []
        handler = convert_exception_to_response(self._get_response)
        for path in reversed([m for m in settings.MIDDLEWARE if m not in SKIPPED_MIDDLEWARE]):
            try:
                instance = import_string(path)(handler)
            except MiddlewareNotUsed:
                continue
            if hasattr(instance, "process_view"):
                self._view_middleware.insert(0, instance.process_view)
            if hasattr(instance, "process_template_response"):
                self._template_response_middleware.append(instance.process_template_response)
            if hasattr(instance, "process_exception"):
                self._exception_middleware.append(instance.process_exception)
            handler = convert_exception_to_response(instance)
        self._middleware_chain = handler

    def resolve_request(self, request):
        match = self.matches[request.path_info]
        request.resolver_match = match
        return match.func, (), {}
