"""One URL convention under /api/: every operation answers at its path with and without the
trailing slash; the slash form is canonical (what `reverse()` and the OpenAPI schema give).

`either_form(urlpatterns)` rewrites, once at import of the root URLconf, every endpoint whose
full route starts with `api/` — router routes, `path()` and `re_path()` views alike — so no
app has to choose, no write is redirected (APPEND_SLASH never sees a miss) and a plain Django
view added later obeys too. `api_not_found` is the JSON 404 for any other path under /api/.
"""

from __future__ import annotations

import re

from django.core.exceptions import ImproperlyConfigured
from django.http import JsonResponse
from django.urls import URLPattern, URLResolver
from django.urls.resolvers import RegexPattern, RoutePattern

# "$", "/$" or "/?$" at the end of a router or re_path regex
_REGEX_END = re.compile(r"(?:/\?|/)?\$$")


class _EitherForm:
    """Matches the canonical `…/` route, or the same path without its final slash."""

    def match(self, path):
        found = super().match(path)
        if found is None and not path.endswith("/"):
            found = super().match(path + "/")
        return found


class EitherFormRoutePattern(_EitherForm, RoutePattern):
    pass


class EitherFormRegexPattern(_EitherForm, RegexPattern):
    pass


def _canonical(pattern):
    if isinstance(pattern, _EitherForm):
        return pattern
    if isinstance(pattern, RoutePattern):
        return EitherFormRoutePattern(str(pattern._route).rstrip("/") + "/", name=pattern.name, is_endpoint=True)
    if isinstance(pattern, RegexPattern) and _REGEX_END.search(pattern._regex):
        return EitherFormRegexPattern(_REGEX_END.sub("", pattern._regex) + "/$", name=pattern.name, is_endpoint=True)
    raise ImproperlyConfigured(f"API route {pattern.describe()} must end in '$' (or be a path()) to answer in both slash forms")


def _route(pattern) -> str:
    text = str(pattern._route) if isinstance(pattern, RoutePattern) else pattern._regex
    return text.removeprefix("^")


def either_form(urlpatterns, prefix: str = "", under: str = "api/"):
    """Rewrite in place every endpoint below `under` (see the module docstring); returns the list."""
    for entry in urlpatterns:
        full = prefix + _route(entry.pattern)
        if isinstance(entry, URLResolver):
            if full.startswith(under) or under.startswith(full):
                either_form(entry.url_patterns, full, under)
        elif isinstance(entry, URLPattern) and full.startswith(under):
            entry.pattern = _canonical(entry.pattern)
    return urlpatterns


def api_not_found(request, *args, **kwargs):
    """Any path under /api/ that no operation has: the API's JSON error, not Django's HTML page."""
    return JsonResponse(
        {"detail": f"There is no API operation at {request.path}. The operations are listed at /api/schema/.", "errors": {}},
        status=404,
    )


def _under_api(request) -> bool:
    return request.path.startswith("/api/")


def handler400(request, exception=None):
    """Django's 400 (a body over DATA_UPLOAD_MAX_MEMORY_SIZE, too many fields, a bad multipart
    body…) raised outside DRF's handler: JSON under /api/, a too-large body as 413."""
    from django.core.exceptions import RequestDataTooBig
    from django.views import defaults

    if not _under_api(request):
        return defaults.bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        from .parsers import too_large_detail

        return JsonResponse({"detail": too_large_detail(), "errors": {}, "code": "request_too_large"}, status=413)
    return JsonResponse({"detail": "The request could not be read (malformed body or too many fields).", "errors": {}}, status=400)


def handler404(request, exception=None):
    from django.views import defaults

    return api_not_found(request) if _under_api(request) else defaults.page_not_found(request, exception)


def handler500(request):
    """JSON under /api/; a database out of reach or out of room (apps.core.api.errors) raised
    before any view (a middleware) still answers 503/507 with Retry-After there."""
    import sys

    from django.views import defaults

    from .errors import resource_exhausted

    if _under_api(request):
        exhausted = resource_exhausted(sys.exc_info()[1]) if sys.exc_info()[1] is not None else None
        if exhausted is not None:
            code_status, code, detail, retry = exhausted
            response = JsonResponse({"detail": detail, "errors": {}, "code": code}, status=code_status)
            response["Retry-After"] = retry
            return response
        return JsonResponse({"detail": "The portal failed to answer this request; it has been logged. Try again later.", "errors": {}}, status=500)
    return defaults.server_error(request)
