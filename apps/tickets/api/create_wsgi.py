"""A lean route for opening tickets with a JSON body and a Bearer JWT (wired in config/wsgi.py).

`POST /api/v1/tickets/` is the helpdesk's busiest write. Through DRF it pays for sessions, CSRF,
the login user, OTP, messages, history, axes, DRF's request wrapping and negotiation, and three
queries before any ticket work (the user, the memberships, their organizations). A request that
DRF would answer with its JSON renderer — `Authorization: Bearer …`, `Content-Type:
application/json`, no `?query`, an `Accept` the JSON renderer serves — goes instead through
Django's own handler with the middleware that still applies (security headers and SSL redirect,
CSP, host validation, clickjacking header, Prometheus metrics; the same list as the alerts'
lean route) straight to `ticket_create_view`, which does what the DRF view does, in its order and
with its code:

1. authentication: `PortalJWTAuthentication` (simplejwt's checks, the revocation mark), the user
   row taken from the per-process `principals` memo;
2. the acting organization (`X-Organization` or the default), from the same memo;
3. the viewset's permission classes and throttle classes, called as DRF calls them;
4. the body parsed by DRF's JSONParser and validated by `TicketCreateSerializer` (`validated_create`,
   which the DRF view calls too);
5. `services.ticket_create`, answered with `created_ticket_data` by DRF's JSON renderer.

Errors go through the API's exception handler (`apps.core.api.errors`) with DRF's headers
(`WWW-Authenticate`, `Retry-After`, `Allow`, `Vary: Accept`). A test holds every answer equal
to the DRF path's (tests/tickets/test_lean_create.py). Multipart creates (attachments), other
content types, other methods and URLs take the full stack.
"""

from __future__ import annotations

import io
from types import SimpleNamespace

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import HttpResponse
from django.utils.cache import patch_vary_headers
from rest_framework import exceptions
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer

from apps.core.api.auth import PortalJWTAuthentication
from apps.core.api.errors import portal_exception_handler
from apps.core.lean import LeanHandler

from .. import principals, services
from .serializers import created_ticket_data, validated_create
from .views import TicketViewSet

URL_NAME = "ticket-list"
JSON_ACCEPTS = frozenset({"", "*/*", "application/json"})


def takes_lean_route(environ) -> bool:
    """A JSON POST with a Bearer token that DRF would answer with its JSON renderer."""
    return (
        environ.get("REQUEST_METHOD") == "POST"
        and environ.get("HTTP_AUTHORIZATION", "").split(None, 1)[:1] == ["Bearer"]
        and environ.get("CONTENT_TYPE", "").split(";", 1)[0].strip() == "application/json"
        and environ.get("HTTP_ACCEPT", "").strip() in JSON_ACCEPTS
        and not environ.get("QUERY_STRING")
    )


class _KeptUsers:
    """Stands in for the user model in simplejwt's `get_user` lookup (`user_model.objects.get(
    id=…)`), answering from the per-process memo: simplejwt's own checks (unknown user, inactive
    user, revoke claim) and the portal's revocation mark then run unchanged."""

    DoesNotExist = get_user_model().DoesNotExist

    class objects:
        @staticmethod
        def get(**lookup):
            (user_id,) = lookup.values()
            user = principals.user(user_id)
            if user is None:
                raise _KeptUsers.DoesNotExist
            return user


class _LeanJWTAuthentication(PortalJWTAuthentication):
    def __init__(self):
        super().__init__()
        self.user_model = _KeptUsers


class LeanCreateHandler(LeanHandler):
    """The lean handler for the ticket list URL only (with its slash: without it CommonMiddleware
    answers, as before)."""

    def __init__(self):
        super().__init__(ticket_create_view, (URL_NAME,))


class TicketCreateFastPath:
    """WSGI wrapper: JSON creates with a Bearer token go to `LeanCreateHandler`."""

    def __init__(self, application):
        self.application = application
        self.handler: LeanCreateHandler | None = None

    def __call__(self, environ, start_response):
        if takes_lean_route(environ):
            if self.handler is None:
                self.handler = LeanCreateHandler()
            if environ.get("PATH_INFO") in self.handler.matches:
                return self.handler(environ, start_response)
        return self.application(environ, start_response)


# What the DRF view is, for its permission and throttle classes and its response headers.
_VIEW = SimpleNamespace(action="create", action_permissions=TicketViewSet.action_permissions, queryset=TicketViewSet.queryset,
                        policy_model=getattr(TicketViewSet, "policy_model", None), throttle_scope=None)
_ALLOWED = ", ".join(m.upper() for m in TicketViewSet.http_method_names if m in ("get", "post", "head", "options"))
_RENDERER = JSONRenderer()
_PARSER = JSONParser()


def _answer(data, status: int, headers=()) -> HttpResponse:
    response = HttpResponse(_RENDERER.render(data), content_type=_RENDERER.media_type, status=status)
    for key, value in headers:
        response[key] = value
    # what DRF's finalize_response adds to every answer of the viewset
    response["Allow"] = _ALLOWED
    patch_vary_headers(response, ("Accept",))
    return response


def ticket_create_view(request) -> HttpResponse:
    """POST /api/v1/tickets/ with a JSON body and a Bearer token (see the module)."""
    view = SimpleNamespace(**vars(_VIEW), request=request)
    try:
        return _create(request, view)
    except Exception as exc:  # as APIView.handle_exception: the handler answers or it is re-raised
        answer = _error(exc, request, view)
        if answer is None:
            raise
        return answer


def _error(exc, request, view) -> HttpResponse | None:
    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        exc.auth_header = _LeanJWTAuthentication().authenticate_header(request)
    answer = portal_exception_handler(exc, {"view": view, "request": request})
    if answer is None:
        return None
    return _answer(answer.data, answer.status_code, [(k, v) for k, v in answer.items() if k.lower() != "content-type"])


def _create(request, view) -> HttpResponse:
    user, _token = _LeanJWTAuthentication().authenticate(request)
    request.user = user
    try:  # OrganizationContextMixin.perform_authentication
        principals.act_as(user, request.headers.get("X-Organization") or None)
    except DjangoPermissionDenied as exc:
        raise exceptions.PermissionDenied(str(exc)) from exc
    for permission in (cls() for cls in TicketViewSet.permission_classes):  # APIView.check_permissions
        if not permission.has_permission(request, view):
            raise exceptions.PermissionDenied(detail=getattr(permission, "message", None), code=getattr(permission, "code", None))
    waits = [t.wait() for t in (cls() for cls in TicketViewSet.throttle_classes) if not t.allow_request(request, view)]
    if waits:  # APIView.check_throttles
        raise exceptions.Throttled(max((w for w in waits if w is not None), default=None))
    ticket = services.ticket_create(actor=user, **validated_create(_body(request)))
    return _answer(created_ticket_data(ticket, user), 201)


def _body(request):
    """request.data as DRF's Request gives it for a JSON body: {} when empty, else JSONParser's."""
    try:
        length = int(request.META.get("CONTENT_LENGTH", request.META.get("HTTP_CONTENT_LENGTH", 0)))
    except (ValueError, TypeError):
        length = 0
    if length == 0:
        return {}
    context = {"request": request, "encoding": request.encoding or settings.DEFAULT_CHARSET}
    return _PARSER.parse(io.BytesIO(request.body), request.content_type, context)
