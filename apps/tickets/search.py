"""Ticket search and orderings: one function each, used by the API's filter backends and the
admin changelist alike, each backed by an index on PostgreSQL (docs/tickets.md, "Search")."""

from __future__ import annotations

import re

from django.contrib.auth import get_user_model
from django.db.models import Case, IntegerField, Q, QuerySet, Value, When
from django.db.models.functions import Concat

from apps.core.choices import OrgKind
from apps.core.tenancy import acting
from apps.tenants.models import Organization

from .models import Ticket, TicketMessage
from .numbers import ALPHABET, LENGTH, PREFIX

NUMBER_RE = re.compile(rf"{PREFIX}[{ALPHABET}]{{{LENGTH}}}")

# public name → column; each is served by an index (tenant, column, id) (models.Ticket.Meta)
ORDERINGS = {
    "created_at": "created_at",
    "priority": "priority_rank",  # severity: low < normal < high < urgent < critical
    "status": "status",
    "resolution_due_at": "resolution_due_at",
}
DEFAULT_ORDERING = ["-created_at", "-id"]
SEARCH_ORDERING = ["-search_rank", "-created_at", "-id"]
ALLOWED_ORDERINGS = [f"{sign}{name}" for name in ORDERINGS for sign in ("", "-")]


def as_ticket_number(term: str) -> str | None:
    """The stored form of a ticket number typed in any case ('tck-7k3m9qx2'), else None."""
    number = term.strip().upper()
    return number if NUMBER_RE.fullmatch(number) else None


MAX_PARTIES = 500  # requesters / customer organizations a phrase may name before it is too vague to follow


def search_tickets(queryset: QuerySet, term: str, *, user) -> QuerySet:
    """Tickets of `queryset` matching `term`, annotated with `search_rank` (higher is better).

    A ticket number (any case) is matched exactly (the unique index). Anything else is one
    phrase matched case-insensitively within the subject, the text of a message the user may
    read (customers: not internal notes), the requester's name or e-mail or the customer
    organization's name; PostgreSQL answers both through GIN trigram indexes
    on UPPER(subject) and UPPER(body). Rank: subject equal to the phrase 3, subject starting
    with it 2, containing it 1, only a message 0."""
    term = term.replace("\x00", "").strip()  # as DRF's SearchFilter: PostgreSQL refuses NUL in a string
    if not term:
        return queryset
    number = as_ticket_number(term)
    if number is not None:
        return queryset.filter(number=number).annotate(search_rank=Value(4, output_field=IntegerField()))
    messages = TicketMessage.objects.filter(body__icontains=term)
    ctx = acting(user)
    if not ctx.is_platform and ctx.kind == OrgKind.CUSTOMER:
        messages = messages.filter(is_internal=False)
    # the customer: the requester's name or e-mail, or the customer organization's name. Their ids
    # are read first (small tables) and only the arms that matched join the union: as subqueries
    # they made PostgreSQL expect a requester's thousands of tickets and scan the whole tenant.
    people = list(get_user_model().objects.annotate(full=Concat("first_name", Value(" "), "last_name")).filter(
        Q(email__icontains=term) | Q(full__icontains=term) | Q(username__iexact=term)).values_list("pk", flat=True)[:MAX_PARTIES])
    customers = list(Organization.objects.filter(kind=OrgKind.CUSTOMER, name__icontains=term)
                     .values_list("pk", flat=True)[:MAX_PARTIES])
    arms = [messages.order_by().values("ticket_id")]
    if people:
        arms.append(Ticket.objects.filter(created_by_id__in=people).order_by().values("pk"))
    if customers:
        arms.append(Ticket.objects.filter(customer_id__in=customers).order_by().values("pk"))
    # one IN over a UNION: each side is an index scan, then a semi-join on the primary key
    hits = Ticket.objects.filter(subject__icontains=term).order_by().values("pk").union(*arms)
    rank = Case(
        When(subject__iexact=term, then=Value(3)),
        When(subject__istartswith=term, then=Value(2)),
        When(subject__icontains=term, then=Value(1)),
        default=Value(0), output_field=IntegerField(),
    )
    return queryset.filter(pk__in=hits).annotate(search_rank=rank)


def ordering_for(name: str | None, *, searching: bool = False) -> list[str]:
    """The ORDER BY of a public ordering name ('-priority'): the indexed column, then the id in
    the same direction (a total order one index scan serves). None: the default, or by rank
    when searching. An unknown name raises ValueError naming the allowed ones."""
    if not name:
        return list(SEARCH_ORDERING if searching else DEFAULT_ORDERING)
    sign, field = ("-", name[1:]) if name.startswith("-") else ("", name)
    if field not in ORDERINGS:
        raise ValueError(f"Unknown ordering {name!r}; use one of: {', '.join(ALLOWED_ORDERINGS)}.")
    return [f"{sign}{ORDERINGS[field]}", f"{sign}id"]
