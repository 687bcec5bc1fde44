"""Extension points other apps contribute to, found by module name (no upward import):

- exporters: `<app>/exports.py` calls `register_exporter("tickets", label=...)` on a function
  `(scope: ExportScope) -> Iterable[dict]` yielding one flat dict per row;
- erasers: `<app>/erasers.py` calls `register_eraser("tickets")` on a function
  `(customer, *, request, personal: erasure.PersonalData) -> dict` that anonymises that app's
  personal data of the customer (idempotent; it runs in its own transaction) and returns what it
  removed (counts) for the deletion report;
- summary contributors: `<app>/customer_summary.py` calls `register_summary_contributor("tickets")`
  on a function `(customer, *, user) -> JSON-able` whose result appears under that name in
  `GET /api/v1/customers/{id}/summary` (e.g. open tickets).

The built-in ones of the tenants app live in `apps/tenants/customers/builtins.py`.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.apps import apps


@dataclass(frozen=True)
class ExportScope:
    """What an exporter may return: rows of `tenant_id`, only of `customer` when set, created
    within [date_from, date_to] when the data type has a date."""

    tenant_id: int
    customer: Any | None
    date_from: datetime | None
    date_to: datetime | None

    def personal(self):
        """The customer's identifiers (`erasure.PersonalData`), for rows that name them without a key."""
        from .erasure import PersonalData

        return PersonalData.of(self.customer)

    def in_range(self, queryset, field: str = "created_at"):
        if self.date_from:
            queryset = queryset.filter(**{f"{field}__gte": self.date_from})
        if self.date_to:
            queryset = queryset.filter(**{f"{field}__lte": self.date_to})
        return queryset


@dataclass(frozen=True)
class Exporter:
    name: str
    label: str
    func: Callable[[ExportScope], Iterable[dict]]


_exporters: dict[str, Exporter] = {}
_erasers: dict[str, Callable] = {}
_contributors: dict[str, Callable] = {}
_loaded = False


def register_exporter(name: str, *, label: str = ""):
    def decorator(func):
        _exporters[name] = Exporter(name=name, label=label or name.replace("_", " "), func=func)
        return func

    return decorator


def register_eraser(name: str):
    def decorator(func):
        _erasers[name] = func
        return func

    return decorator


def register_summary_contributor(name: str):
    def decorator(func):
        _contributors[name] = func
        return func

    return decorator


def iso(value) -> str | None:
    """A datetime as exporters write it."""
    return value.isoformat() if value else None


def _load() -> None:
    """Import the built-ins and every installed portal app's contribution modules once."""
    global _loaded
    if _loaded:
        return
    from . import builtins  # noqa: F401

    for config in apps.get_app_configs():
        if not config.name.startswith("apps."):
            continue
        for module in ("exports", "erasers", "customer_summary"):
            name = f"{config.name}.{module}"
            if importlib.util.find_spec(name) is not None:
                importlib.import_module(name)
    _loaded = True


def exporters() -> dict[str, Exporter]:
    _load()
    return dict(_exporters)


def erasers() -> dict[str, Callable]:
    _load()
    return dict(_erasers)


def summary_contributors() -> dict[str, Callable]:
    _load()
    return dict(_contributors)
