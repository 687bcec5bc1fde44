"""A lean route for token-authenticated alert ingestion (wired in config/wsgi.py).

`POST /api/v1/alerts/ingest` and `POST /api/v1/alerts/ingest/alertmanager` with
`Authorization: Bearer opa_…` are machine traffic at thousands of alerts a second. They need
neither sessions, CSRF, the login user, OTP, messages, history, the acting organization nor
axes, and DRF's request wrapping and content negotiation cost more than the batch itself. Such
requests go through Django's own handler with the middleware that still applies (security
headers and SSL redirect, host validation, clickjacking header, Prometheus metrics) straight
to `ingest_view`, which authenticates the token, limits the rate and calls the same service
as the DRF views (`ingest.alerts_ingest`). Errors are the API's JSON errors
(`apps.core.api.errors`). Every other request — a JWT or session on these URLs too — takes the
full stack.
"""

from __future__ import annotations

import json

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError
from django.http import HttpResponse
from django.utils import timezone
from rest_framework import exceptions

from apps.core.api.errors import portal_exception_handler
from apps.core.lean import LeanHandler

from .. import ingest_config
from ..ingest import IngestRateLimited, alerts_ingest, ingest_gate
from ..services import TOKEN_PREFIX

URL_NAMES = ("alert-ingest", "alert-ingest-alertmanager")
UNKNOWN_TOKEN = "Unknown or revoked ingestion token."


def carries_ingest_token(header: str) -> bool:
    scheme, _, raw = header.partition(" ")
    return scheme.lower() in ("bearer", "token") and raw.strip().startswith(TOKEN_PREFIX)


class IngestHandler(LeanHandler):
    """The lean handler for the two ingestion URLs."""

    def __init__(self):
        super().__init__(ingest_view, URL_NAMES)


class IngestFastPath:
    """WSGI wrapper: token-authenticated POSTs to the ingestion URLs go to `IngestHandler`."""

    def __init__(self, application):
        self.application = application
        self.handler: IngestHandler | None = None

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") == "POST" and carries_ingest_token(environ.get("HTTP_AUTHORIZATION", "")):
            if self.handler is None:
                self.handler = IngestHandler()
            if environ["PATH_INFO"] in self.handler.matches:
                return self.handler(environ, start_response)
        return self.application(environ, start_response)


def _json(data, status: int = 200, headers: dict | None = None) -> HttpResponse:
    response = HttpResponse(json.dumps(data, separators=(",", ":")), content_type="application/json", status=status)
    for key, value in (headers or {}).items():
        response[key] = value
    return response


def _error(exc: Exception) -> HttpResponse:
    answer = portal_exception_handler(exc, {})
    # the handler's unrendered Response carries Django's default text/html Content-Type: keep ours
    headers = {k: v for k, v in answer.items() if k.lower() != "content-type"} if answer is not None else {}
    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        headers["WWW-Authenticate"] = "Bearer"
    return _json(answer.data, answer.status_code, headers)


def ingest_view(request) -> HttpResponse:
    """Both ingestion endpoints for a request carrying an ingestion token (see the module)."""
    try:
        return _ingest(request)
    except (exceptions.APIException, DjangoValidationError, DataError) as exc:
        return _error(exc)


def _ingest(request) -> HttpResponse:
    from .views import payload_alerts

    raw = request.META["HTTP_AUTHORIZATION"].partition(" ")[2].strip()
    tenant_id = ingest_config.authenticate(raw)
    if tenant_id is None:
        raise exceptions.AuthenticationFailed(UNKNOWN_TOKEN)
    try:
        body = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise exceptions.ParseError(f"The body is not valid JSON ({exc}).") from exc
    webhook = request.resolver_match.url_name == "alert-ingest-alertmanager"
    alerts, default_ends_after, source_name = payload_alerts(body, webhook=webhook)
    token_id = None

    def authorize(fresh):
        nonlocal token_id
        token_id = ingest_config.token_valid(fresh, raw)
        if token_id is None:  # revoked since this process last looked
            ingest_config.forget_token(raw)
            raise exceptions.AuthenticationFailed(UNKNOWN_TOKEN)

    now = timezone.now()
    try:
        cfg = ingest_gate(tenant_id=tenant_id, count=len(alerts) if isinstance(alerts, list) else 1, now=now, authorize=authorize)
    except IngestRateLimited as exc:
        raise exceptions.Throttled(wait=exc.retry_after, detail=str(exc)) from exc
    ingest_config.touch_token(token_id)
    result = alerts_ingest(tenant_id=tenant_id, alerts=alerts, source_name=source_name, default_ends_after=default_ends_after,
                           now=now, config=cfg)
    return _json(result.as_dict())
