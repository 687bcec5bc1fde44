"""The tenant-isolation matrix: every endpoint and admin changelist plugs in here.

An app describes each of its tenant-owned resources once, in `tests/<app>/isolation_cases.py`:

    CASES = [
        IsolationCase(
            name="tickets.ticket",
            make=lambda world, key: TicketFactory(tenant=world.tenant(key)),   # a row of tenant `key`
            api_list="ticket-list",             # URL names (router basename + -list / -detail)
            api_detail="ticket-detail",
            admin_model=Ticket,                 # its admin changelist and change view are checked
            create_payload=lambda world, foreign: {...},  # a create that references tenant B's row
            patch_payload={"subject": "hijacked"},
        ),
    ]

`tests/test_isolation_matrix.py` then proves, for every case and every role of tenant A (and a
partner and a customer): B's row is not in A's list, its detail is 404, PATCH/DELETE of it fail
and leave it unchanged, a create that points at it is refused and creates nothing, and in the
admin it is neither in the changelist nor openable.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import tests


@dataclass
class IsolationCase:
    name: str
    make: Callable[[Any, str], Any]
    api_list: str | None = None
    api_detail: str | None = None
    lookup: str = "pk"  # attribute of the row used in the detail URL
    admin_model: type | None = None
    create_payload: Callable[[Any, Any], dict] | None = None
    patch_payload: dict = field(default_factory=dict)
    # Rows of tenant A that each role of A must see in the list (None: the role's policy decides).
    visible_roles: tuple[str, ...] | None = None

    def __str__(self) -> str:
        return self.name


@dataclass
class TenantPage:
    """A page or endpoint addressed by a tenant's slug rather than a row (e.g. the tenant
    timeline): tenant B's slug must answer 403/404 to every actor of tenant A, while A's owner
    gets A's page. `admin`: an admin page (session login) rather than an API endpoint."""

    name: str
    url_name: str
    admin: bool = False

    def __str__(self) -> str:
        return self.name


@dataclass
class AdminView:
    """An admin page that is neither a changelist nor addressed by a tenant (the index's panels,
    the styled refusal): `make(world, key)` plants tenant `key`'s data and returns a text that
    only that data shows. Every actor of A's side gets the page without tenant B's text (nor
    B's name); `sees` (an actor) is the positive control that gets A's text."""

    name: str
    path: str
    make: Callable[[Any, str], str]
    sees: tuple[str, str]
    statuses: tuple[int, ...] = (200,)  # what `sees` is answered (403 for a styled refusal)

    def __str__(self) -> str:
        return self.name


def collect_admin_views() -> list[AdminView]:
    return [view for module in _case_modules() for view in getattr(module, "ADMIN_VIEWS", [])]


def collect_tenant_pages() -> list[TenantPage]:
    return [page for module in _case_modules() for page in getattr(module, "TENANT_PAGES", [])]


def _case_modules():
    for info in pkgutil.iter_modules(tests.__path__):
        if not info.ispkg:
            continue
        try:
            yield importlib.import_module(f"tests.{info.name}.isolation_cases")
        except ModuleNotFoundError as exc:
            if exc.name != f"tests.{info.name}.isolation_cases":
                raise


def collect_cases() -> list[IsolationCase]:
    return [case for module in _case_modules() for case in module.CASES]
