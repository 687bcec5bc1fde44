"""Every API error is JSON: `{"detail": "<what a person can act on>", "errors": {field: [...]}}`.

Django's ValidationError (raised by services and `full_clean`) becomes a 400, PermissionDenied
a 403, a protected delete a 409, a full disk (ENOSPC/EDQUOT while storing an upload, or
PostgreSQL's own disk full, SQLSTATE 53100) a 507, PostgreSQL out of other resources (memory,
connections: SQLSTATE class 53) or unreachable (shut down, backend terminated) a 503, all with
Retry-After; nothing a client sends may turn into a 500.
"""

from __future__ import annotations

import errno
import logging

from django.core.exceptions import BadRequest, RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, InterfaceError, OperationalError
from django.db.models import ProtectedError, RestrictedError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

logger = logging.getLogger(__name__)
STORAGE_FULL = (errno.ENOSPC, errno.EDQUOT)
PG_DISK_FULL = "53100"
PG_INSUFFICIENT_RESOURCES = "53"  # SQLSTATE class: disk full, out of memory, too many connections
PG_CONNECTION_EXCEPTION = "08"
PG_SHUTDOWN = ("57P01", "57P02", "57P03")  # admin shutdown, crash shutdown, cannot connect now
DATABASE_UNAVAILABLE_DETAIL = ("The portal's database cannot be reached right now, so nothing was done. "
                               "Try again in a minute; if it persists, tell the portal's operators.")
FILE_STORAGE_UNAVAILABLE_DETAIL = ("The portal's file storage cannot be reached right now, so no file was saved or read. "
                                   "Try again in a minute; if it persists, tell the portal's operators.")
STORAGE_FULL_DETAIL = ("The portal has run out of storage space, so nothing was saved. Try again later; "
                       "if it persists, tell the portal's operators.")


def sqlstate(exc: BaseException) -> str:
    """The SQLSTATE of a database error Django wrapped (psycopg's error is the cause), or ""."""
    cause = exc.__cause__ or exc
    return getattr(cause, "sqlstate", None) or ""


def database_unreachable(exc: BaseException) -> bool:
    """The database cannot be reached or dropped the connection (server shut down or restarting,
    backend terminated, network): psycopg's connection-level errors carry no SQLSTATE; a server
    that says so uses class 08 (connection exception) or 57P01-57P03 (shutdown, cannot connect now)."""
    if isinstance(exc, InterfaceError):  # "connection already closed"
        return True
    if not isinstance(exc, OperationalError):
        return False
    code = sqlstate(exc)
    if code:
        return code.startswith(PG_CONNECTION_EXCEPTION) or code in PG_SHUTDOWN
    cause = exc.__cause__
    return cause is not None and type(cause).__module__.startswith("psycopg")


def resource_exhausted(exc: BaseException) -> tuple[int, str, str, str] | None:
    """(status, code, detail, Retry-After) when `exc` says the portal ran out of room — the file
    system of an upload (ENOSPC/EDQUOT) or PostgreSQL's own disk (SQLSTATE 53100): 507; PostgreSQL
    out of memory or connections (the rest of class 53) or unreachable: 503 — else None. The transaction has
    rolled back and nothing was stored, so the same request can simply be sent again later. The
    API's handler below and the admin's `ResourceExhaustedMiddleware` both answer from this."""
    if isinstance(exc, OSError) and exc.errno in STORAGE_FULL:
        return 507, "insufficient_storage", STORAGE_FULL_DETAIL, "300"
    if database_unreachable(exc):
        return 503, "database_unavailable", DATABASE_UNAVAILABLE_DETAIL, "30"
    if type(exc).__module__.startswith(("botocore.", "boto3.")):  # S3 storage: unreachable, refused, no bucket
        return 503, "file_storage_unavailable", FILE_STORAGE_UNAVAILABLE_DETAIL, "60"
    if isinstance(exc, OperationalError) and sqlstate(exc).startswith(PG_INSUFFICIENT_RESOURCES):
        if sqlstate(exc) == PG_DISK_FULL:
            return 507, "insufficient_storage", STORAGE_FULL_DETAIL, "300"
        return 503, "database_busy", "The portal's database is out of resources right now, so nothing was saved. Try again in a minute.", "60"
    return None


def _flatten(errors) -> list[str]:
    out: list[str] = []
    if isinstance(errors, dict):
        for field, value in errors.items():
            for msg in _flatten(value):
                out.append(msg if field in ("non_field_errors", "__all__", "detail") else f"{field}: {msg}")
    elif isinstance(errors, list):
        for item in errors:
            out.extend(_flatten(item))
    else:
        out.append(str(errors))
    return out


def django_validation_to_drf(exc: DjangoValidationError) -> exceptions.ValidationError:
    if hasattr(exc, "error_dict"):
        detail = {("non_field_errors" if k == "__all__" else k): v for k, v in exc.message_dict.items()}
    else:
        detail = {"non_field_errors": exc.messages}
    return exceptions.ValidationError(detail)


def portal_exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        exc = django_validation_to_drf(exc)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    elif isinstance(exc, RequestDataTooBig):
        from apps.core.api.parsers import RequestTooLarge

        exc = RequestTooLarge()
    elif isinstance(exc, (SuspiciousOperation, BadRequest)):
        # too many form fields, a malformed multipart body…: the client's request, a 400
        exc = exceptions.ParseError(f"The request body could not be read ({exc}).")
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or None)
    elif isinstance(exc, DataError):
        # A value the database cannot hold (a NUL character, a number out of range) that no
        # serializer field caught: the client's input, so a 400 — never a 500.
        exc = exceptions.ValidationError(
            {"non_field_errors": ["A value in the request cannot be stored or searched for (a NUL character or a number out of range)."]}
        )
    elif isinstance(exc, (ProtectedError, RestrictedError)):
        names = sorted({type(o)._meta.verbose_name for o in list(exc.protected_objects if hasattr(exc, "protected_objects") else exc.restricted_objects)[:20]})
        return Response(
            {"detail": f"This cannot be deleted while other rows refer to it ({', '.join(names)}).", "errors": {}},
            status=status.HTTP_409_CONFLICT,
        )
    elif (exhausted := resource_exhausted(exc)) is not None:
        code_status, code, detail, retry = exhausted
        logger.error("%s (%s) while handling %s: %s", code, sqlstate(exc) or getattr(exc, "errno", ""),
                     getattr(context.get("request"), "path", "?"), exc)
        return Response({"detail": detail, "errors": {}, "code": code}, status=code_status, headers={"Retry-After": retry})
    response = exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if isinstance(exc, exceptions.ValidationError):
        errors = data if isinstance(data, dict) else {"non_field_errors": data}
        messages = _flatten(errors)
        response.data = {"detail": "Invalid input. " + " ".join(messages[:5]), "errors": errors}
    elif isinstance(data, dict):
        detail = data.get("detail", "")
        extra = {k: v for k, v in data.items() if k not in ("detail",)}
        response.data = {"detail": str(detail) if detail else " ".join(_flatten(data)), "errors": {}}
        if "code" in extra:
            response.data["code"] = extra["code"]
    else:
        response.data = {"detail": " ".join(_flatten(data)), "errors": {}}
    return response
