"""Canned responses: a tenant's stock replies with placeholders, inserted into a reply in the admin.

Placeholders are a closed list (`PLACEHOLDERS`), replaced by plain string substitution. The body
is never a Django or Jinja template: a placeholder can only name a value listed here, never walk
attributes of the ticket or the user (no `{{ ticket.tenant.secrets }}`, no method calls)."""

from __future__ import annotations

import re
from collections.abc import Callable

from django.core.exceptions import ValidationError
from django.db import models

from apps.core.models import PortalManager, TenantOwnedModel

from .choices import TicketPriority, TicketStatus


def _person(user) -> str:
    if user is None:
        return ""
    return user.get_full_name() or user.get_username()


# name → value for (ticket, agent); the only names a body may use
PLACEHOLDERS: dict[str, Callable] = {
    "customer.name": lambda t, a: _person(t.created_by),
    "customer.email": lambda t, a: getattr(t.created_by, "email", "") or "",
    "customer.organization": lambda t, a: t.customer.name if t.customer_id else "",
    "ticket.number": lambda t, a: t.number,
    "ticket.subject": lambda t, a: t.subject,
    "ticket.status": lambda t, a: TicketStatus(t.status).label,
    "ticket.priority": lambda t, a: TicketPriority(t.priority).label,
    "agent.name": lambda t, a: _person(a),
    "agent.first_name": lambda t, a: (getattr(a, "first_name", "") or _person(a)) if a is not None else "",
    "tenant.name": lambda t, a: t.tenant.name,
}
PLACEHOLDER_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\}\}")


def _shown(name: str) -> str:
    return "{{ " + name + " }}"


def placeholders_in(body: str) -> list[str]:
    return PLACEHOLDER_RE.findall(body or "")


def render_canned(body: str, *, ticket, agent) -> str:
    """The body with each known placeholder replaced by the ticket's value (unknown ones are left
    as typed; saving a response refuses them, so only older rows can carry one)."""

    def value(match: re.Match) -> str:
        getter = PLACEHOLDERS.get(match.group(1))
        return match.group(0) if getter is None else str(getter(ticket, agent))

    return PLACEHOLDER_RE.sub(value, body or "")


class CannedResponse(TenantOwnedModel):
    """A stock reply of one tenant (title + body with `{{ placeholders }}`), offered in the reply
    box of a ticket's admin page; inserting it renders the placeholders for that ticket."""

    title = models.CharField(max_length=120)
    body = models.TextField(max_length=10000, help_text="Placeholders: " + ", ".join(_shown(p) for p in PLACEHOLDERS))
    is_active = models.BooleanField(default=True)

    objects = PortalManager()

    # staff who answer tickets use them; owners and admins keep the list
    PORTAL_ROLE_ACTIONS = {
        "view": {"owner", "admin", "operator", "support_agent"},
        "add": {"owner", "admin", "operator", "support_agent"},
        "change": {"owner", "admin", "operator", "support_agent"},
        "delete": {"owner", "admin"},
    }

    class Meta:
        app_label = "tickets"
        ordering = ["title"]
        constraints = [models.UniqueConstraint(fields=["tenant", "title"], name="tickets_canned_title_unique")]

    def __str__(self) -> str:
        return self.title

    def clean(self) -> None:
        unknown = sorted({p for p in placeholders_in(self.body) if p not in PLACEHOLDERS})
        if unknown:
            allowed = ", ".join(_shown(p) for p in PLACEHOLDERS)
            raise ValidationError({"body": f"Unknown placeholder(s): {', '.join(unknown)}. Use one of: {allowed}."})
