"""The API's JSON parser: bounded size and depth, so any body it cannot take is a JSON 400/413.

DRF's JSONParser reads the whole stream whatever DATA_UPLOAD_MAX_MEMORY_SIZE says and lets a
RecursionError (a ~2 KB body nested 1,000 deep) through as a 500. This one reads at most the
limit (over it: 413), refuses NaN/Infinity, bad UTF-8 and nesting deeper than MAX_DEPTH (400)
— before any serializer, validator or error formatter walks the data recursively.
"""

from __future__ import annotations

import codecs
import json

import orjson
from django.conf import settings
from django.http import QueryDict
from rest_framework import exceptions, renderers, status
from rest_framework.parsers import BaseParser, FormParser
from rest_framework.utils.json import strict_constant

# Deeper than any payload the portal takes (alert labels, job parameter schemas, rules), and far
# below Python's recursion limit for whatever walks the data afterwards.
MAX_DEPTH = 64


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"

    def __init__(self):
        super().__init__(too_large_detail())


def too_large_detail() -> str:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return f"The request body is larger than the {limit} bytes the API accepts; send less data per request."


def _depth_exceeds(data, limit: int) -> bool:
    """Level by level over the containers only (about as fast as the parse itself)."""
    level = [data] if type(data) in (dict, list) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        below = []
        for node in level:
            below += [v for v in (node.values() if type(node) is dict else node) if type(v) is dict or type(v) is list]
        level = below
    return False


def parse_json_body(raw: bytes, encoding: str = "utf-8", *, max_depth: int = MAX_DEPTH, exact_numbers: bool = True,
                    walk: bool = True):
    """`raw` as JSON, or a DRF ParseError (400) saying why not. For plain Django views too.

    `exact_numbers=False` parses UTF-8 with orjson, about twice as fast and stricter (lone
    surrogates and numbers beyond a double refused), but integers beyond 64 bits come back as
    floats: for bodies whose numbers the caller refuses or ignores (alert ingestion: strings only).
    `walk=False` leaves the depth to the caller (`check_depth`), before it uses the data beyond a
    shape it walks itself; only parser limits (Python's recursion, orjson's 1,024 levels) answer here."""
    try:
        if not exact_numbers and encoding.lower().replace("-", "") == "utf8":
            data = orjson.loads(raw)
        else:
            data = json.loads(codecs.decode(raw, encoding), parse_constant=strict_constant)
    except RecursionError:
        raise too_deep(max_depth) from None
    except (ValueError, LookupError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        if isinstance(exc, orjson.JSONDecodeError) and str(exc).startswith("depth limit exceeded"):  # orjson's 1,024
            raise too_deep(max_depth) from None
        raise exceptions.ParseError(f"JSON parse error - {exc}") from None  # DRF's JSONParser's words
    if walk:
        check_depth(raw, data, max_depth)
    return data


def too_deep(max_depth: int = MAX_DEPTH) -> exceptions.ParseError:
    return exceptions.ParseError(f"The JSON body is nested too deeply (at most {max_depth} levels).")


def check_depth(raw: bytes, data, max_depth: int = MAX_DEPTH, *, seen: int = 0) -> None:
    """ParseError (400) when `data`, parsed from `raw`, nests deeper than `max_depth`. Each container
    is one bracket of the body (more when strings hold brackets), so a body with no more brackets
    than `max_depth` — or than the `seen` containers the caller has already walked, all of them
    shallower than the limit — cannot be too deep: the walk is left out."""
    if raw.count(b"[") + raw.count(b"{") > max(max_depth, seen) and _depth_exceeds(data, max_depth):
        raise too_deep(max_depth)


def read_limited(stream, request=None) -> bytes:
    """The body, or RequestTooLarge when it exceeds DATA_UPLOAD_MAX_MEMORY_SIZE (None: no limit)."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if limit is None:
        return stream.read()
    declared = getattr(request, "META", {}).get("CONTENT_LENGTH") if request is not None else None
    if declared and str(declared).isdigit() and int(declared) > limit:
        raise RequestTooLarge()
    raw = stream.read(limit + 1)
    if len(raw) > limit:
        raise RequestTooLarge()
    return raw


class PortalJSONParser(BaseParser):
    """REST_FRAMEWORK's JSON parser (settings.py): DRF's JSONParser with the bounds above."""

    media_type = "application/json"
    renderer_class = renderers.JSONRenderer

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        raw = read_limited(stream, parser_context.get("request"))
        return parse_json_body(raw, encoding)


class PortalFormParser(FormParser):
    """DRF's FormParser (which reads the whole stream) within DATA_UPLOAD_MAX_MEMORY_SIZE."""

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        return QueryDict(read_limited(stream, parser_context.get("request")), encoding=encoding)
