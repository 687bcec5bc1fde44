"""API pagination (docs/tickets.md, "Every row reachable").

`PortalPagination`: page numbers with a count, for lists whose count is cheap (a tenant's rules,
schedules, services). `KeysetPagination`: for lists that grow without bound (tickets, alerts, job
runs, notifications): without `?page=` it walks by an opaque, signed `?cursor=` holding the last
row's sort key (the ordering always ends with the id, so the order is total), each page one index
range scan however deep, no COUNT. `?page=N` still answers page-numbered, as before."""

from __future__ import annotations

import datetime
import decimal
import uuid

from django.core import signing
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import BooleanField, F, Q
from django.db.models.expressions import Expression, OrderBy
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination, PageNumberPagination
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

CURSOR_SALT = "opsportal.api.cursor"
BAD_CURSOR = "This cursor is not one we issued (or was altered); follow the `next`/`previous` links as given, or start again without `cursor`."


class PortalPagination(PageNumberPagination):
    """Page-number pagination, `?page_size=` up to 500."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class PortalCursorPagination(CursorPagination):
    """For tables that grow to millions of rows: stable, no COUNT(*)."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
    ordering = "-created_at"


class _RowCompare(Expression):
    """`(a, b, id) > (%s, %s, %s)`: one row-value comparison, which PostgreSQL turns into a single
    index range condition (the spelled-out OR of equalities it cannot)."""

    output_field = BooleanField()
    conditional = True

    def __init__(self, columns, op, values):
        super().__init__()
        self.columns, self.op, self.values = list(columns), op, list(values)

    def get_source_expressions(self):
        return self.columns

    def set_source_expressions(self, exprs):
        self.columns = list(exprs)

    def as_sql(self, compiler, connection):
        parts, params = [], []
        for col, value in zip(self.columns, self.values, strict=True):
            sql, p = compiler.compile(col)
            parts.append(sql)
            params += p
            params.append(value)
        return f"({', '.join(parts)}) {self.op} ({', '.join(['%s'] * len(parts))})", params


class _Key:
    """One column of the sort key: its name, direction and whether it may be NULL."""

    def __init__(self, name: str, descending: bool, field):
        self.name, self.descending, self.field = name, descending, field
        self.nullable = bool(getattr(field, "null", False))
        self.attr = getattr(field, "attname", None) or name

    def order_by(self, reverse: bool = False):
        desc = self.descending != reverse
        # NULLs where PostgreSQL's index puts them (last ascending, first descending), on every backend
        return OrderBy(
            F(self.name),
            descending=desc,
            nulls_first=True if desc and self.nullable else None,
            nulls_last=True if not desc and self.nullable else None,
        )


def _encode(value):
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (decimal.Decimal, uuid.UUID)):
        return str(value)
    return value


class KeysetPagination(PortalPagination):
    """Cursor (keyset) pagination with page numbers kept for `?page=` (see the module docstring).

    The cursor is `django.core.signing` over the ordering and the boundary row's key: a cursor
    altered, forged or made for another `?ordering=` is a 400, never a wrong page."""

    cursor_query_param = "cursor"
    cursor_description = "Opaque position from a previous response's `next`/`previous` link (the default way to page)."

    def paginate_queryset(self, queryset, request, view=None):
        self.mode = "page" if self.page_query_param in request.query_params else "cursor"
        if self.mode == "page":
            return super().paginate_queryset(queryset, request, view)
        self.request, self.base_url = request, request.build_absolute_uri()
        self.page_size = self.get_page_size(request)
        keys = self._keys(queryset)
        signature = [("-" if k.descending else "") + k.name for k in keys]
        raw = request.query_params.get(self.cursor_query_param)
        reverse, after = False, None
        if raw:
            try:
                data = signing.loads(raw, salt=CURSOR_SALT)
                if data["o"] != signature or len(data["v"]) != len(keys):
                    raise ValidationError(
                        {self.cursor_query_param: ["This cursor belongs to another ordering; start again without `cursor`."]}
                    )
                reverse = bool(data["r"])
                after = [None if v is None else k.field.to_python(v) for k, v in zip(keys, data["v"], strict=True)]
            except ValidationError:
                raise
            except (signing.BadSignature, KeyError, TypeError, ValueError, DjangoValidationError) as exc:
                raise ValidationError({self.cursor_query_param: [BAD_CURSOR]}) from exc
        qs = queryset.order_by(*[k.order_by(reverse) for k in keys])
        if after is not None:
            qs = qs.filter(self._beyond(keys, after, reverse))
        rows = list(qs[: self.page_size + 1])
        more = len(rows) > self.page_size
        rows = rows[: self.page_size]
        if reverse:
            rows.reverse()
        self._signature, self._keys_used = signature, keys
        self._has_next = more if not reverse else True
        self._has_previous = (raw is not None and not reverse) or (reverse and more)
        self._first, self._last = (rows[0], rows[-1]) if rows else (None, None)
        if not rows and raw:  # walked off an end (rows deleted since): offer the way back
            self._has_next, self._has_previous = reverse, not reverse
            self._first = self._last = None
            self._edge = after
        return rows

    # -- the sort key -------------------------------------------------------------------------
    def _keys(self, queryset) -> list[_Key]:
        """The queryset's ORDER BY (set by the ordering filter, else the model's), ending with the id."""
        model, annotations = queryset.model, queryset.query.annotations
        order = list(queryset.query.order_by) or list(model._meta.ordering) or ["-pk"]
        keys = []
        for item in order:
            if isinstance(item, OrderBy) and isinstance(item.expression, F):
                name, desc = item.expression.name, item.descending
            elif isinstance(item, str):
                name, desc = item.lstrip("-"), item.startswith("-")
            else:
                raise ValueError(f"Keyset pagination needs plain column orderings, not {item!r}.")
            if name == "pk":
                name = model._meta.pk.name
            field = annotations[name].output_field if name in annotations else model._meta.get_field(name)
            keys.append(_Key(name, desc, field))
            if field.primary_key:
                return keys
        keys.append(_Key(model._meta.pk.name, keys[-1].descending if keys else True, model._meta.pk))
        return keys

    @staticmethod
    def _beyond(keys: list[_Key], values: list, reverse: bool) -> Q:
        """Rows strictly after `values` in the (possibly reversed) order."""
        directions = {k.descending != reverse for k in keys}
        if len(directions) == 1 and not any(k.nullable for k in keys):
            op = "<" if directions.pop() else ">"
            return Q(_RowCompare([F(k.name) for k in keys], op, values))
        # mixed directions or NULLs: the spelled-out form, NULLs last ascending and first descending
        cond = Q(pk__in=[])
        equal = Q()
        for k, v in zip(keys, values, strict=True):
            desc = k.descending != reverse
            if v is None:
                step = Q(**{f"{k.name}__isnull": False}) if desc else Q(pk__in=[])
                same = Q(**{f"{k.name}__isnull": True})
            else:
                step = Q(**{f"{k.name}__lt" if desc else f"{k.name}__gt": v})
                if k.nullable and not desc:
                    step |= Q(**{f"{k.name}__isnull": True})
                same = Q(**{k.name: v})
            cond |= equal & step
            equal &= same
        return cond

    # -- links --------------------------------------------------------------------------------
    def _cursor_url(self, row, reverse: bool) -> str:
        values = [_encode(getattr(row, k.attr)) for k in self._keys_used]
        token = signing.dumps({"o": self._signature, "v": values, "r": reverse}, salt=CURSOR_SALT, compress=True)
        url = remove_query_param(self.base_url, self.page_query_param)
        return replace_query_param(url, self.cursor_query_param, token)

    def _edge_url(self, reverse: bool) -> str:
        token = signing.dumps(
            {"o": self._signature, "v": [_encode(v) for v in self._edge], "r": reverse}, salt=CURSOR_SALT, compress=True
        )
        return replace_query_param(remove_query_param(self.base_url, self.page_query_param), self.cursor_query_param, token)

    def get_next_link(self):
        if self.mode == "page":
            return super().get_next_link()
        if not self._has_next:
            return None
        return self._cursor_url(self._last, False) if self._last is not None else self._edge_url(False)

    def get_previous_link(self):
        if self.mode == "page":
            return super().get_previous_link()
        if not self._has_previous:
            return None
        return self._cursor_url(self._first, True) if self._first is not None else self._edge_url(True)

    def get_paginated_response(self, data):
        if self.mode == "page":
            response = super().get_paginated_response(data)
            response.data["count"] = int(response.data["count"])  # a capped count: cap + 1
            return response
        return Response({"next": self.get_next_link(), "previous": self.get_previous_link(), "results": data})

    # -- OpenAPI ------------------------------------------------------------------------------
    def get_paginated_response_schema(self, schema):
        page = super().get_paginated_response_schema(schema)
        page["required"] = ["next", "previous", "results"]
        page["properties"]["next"]["example"] = "https://portal.example.org/api/v1/tickets/?cursor=eyJvIjpbIi1jcmVhdGVkX2F0Il0…"
        page["properties"]["previous"]["example"] = None
        page["properties"]["count"]["description"] = "Only with `?page=` (page-number mode); the cursor mode does not count."
        return page

    def get_schema_operation_parameters(self, view):
        params = super().get_schema_operation_parameters(view)
        for p in params:
            if p["name"] == self.page_query_param:
                p["description"] = (
                    "Page number: switches to page-number mode (with `count`). Without it the list pages by `cursor`."
                )
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": self.cursor_description,
                "schema": {"type": "string"},
            },
            *params,
        ]
