"""What erasers and exporters use to find and remove a customer's personal data in their own
tables: `PersonalData` holds the customer's identifiers (name, contact e-mail and phone, and the
usernames, e-mails and names of the logins that belong only to them), taken before any eraser
runs, and redacts them from text, JSON and rows — simple-history's historical rows included."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import reduce
from operator import or_

from django.contrib.auth import get_user_model
from django.db import IntegrityError, models, transaction
from django.db.models import Count, Q

REDACTED = "[erased]"
MIN_TERM = 3  # shorter identifiers would blank unrelated text


@dataclass(frozen=True)
class PersonalData:
    """The identifiers of one customer and the rows that are theirs by key."""

    customer_id: int
    tenant_id: int
    organization_id: int | None
    user_ids: tuple[int, ...]
    terms: tuple[str, ...]
    _pattern: re.Pattern | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, customer, *, extra_terms=()) -> PersonalData:
        """Collect the identifiers now (the tenants eraser blanks them, so this comes first)."""
        from ..models import Membership

        User = get_user_model()
        terms = [customer.name, customer.contact_email, customer.contact_phone, *extra_terms]
        user_ids: tuple[int, ...] = ()
        if customer.organization_id:
            members = Membership.objects.filter(organization_id=customer.organization_id).values_list("user_id", flat=True)
            # only logins that belong to this customer alone are theirs (a shared login is someone else's too)
            own = User.objects.filter(pk__in=members).annotate(n=Count("memberships")).filter(n=1)
            for user in own:
                user_ids += (user.pk,)
                terms += [user.email, user.get_full_name(), user.get_username() if "@" in user.get_username() else ""]
        if customer.erased_at:  # already erased: its own fields hold the placeholder, not the person
            terms = list(extra_terms)
        unique = sorted({t.strip() for t in terms if t and len(t.strip()) >= MIN_TERM}, key=lambda t: (-len(t), t.lower()))
        pattern = re.compile("|".join(re.escape(t) for t in unique), re.IGNORECASE) if unique else None
        return cls(customer.pk, customer.tenant_id, customer.organization_id, user_ids, tuple(unique), pattern)

    # -- text ------------------------------------------------------------------------------
    def redact(self, value):
        """The value with every identifier replaced; dicts and lists are walked (keys too)."""
        if self._pattern is None or value is None:
            return value
        if isinstance(value, str):
            return self._pattern.sub(REDACTED, value)
        if isinstance(value, dict):
            return {self.redact(k): self.redact(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.redact(v) for v in value]
        return value

    def mentions(self, *fields: str) -> Q:
        """Rows whose `fields` (text or JSON) contain an identifier (case-insensitive)."""
        if not self.terms:
            return Q(pk__in=[])
        return reduce(or_, (Q(**{f"{f}__icontains": t}) for f in fields for t in self.terms))

    # -- rows ------------------------------------------------------------------------------
    def scrub(self, queryset: models.QuerySet, fields: list[str]) -> int:
        """Redact the identifiers from `fields` of the rows of `queryset` that mention one;
        returns how many rows changed. Writes with `update()` (no save hooks, no new history)."""
        changed = 0
        model = queryset.model
        for row in queryset.filter(self.mentions(*fields)).values("pk", *fields).iterator(chunk_size=500):
            new = {f: self.redact(row[f]) for f in fields}
            new = {f: v for f, v in new.items() if v != row[f]}
            if new:
                try:
                    with transaction.atomic():
                        model._base_manager.filter(pk=row["pk"]).update(**new)
                except IntegrityError:
                    # two rows redacted to one value of a unique column (names per tenant): keep them apart by id
                    new = {f: f"{v} #{row['pk']}" if isinstance(v, str) else v for f, v in new.items()}
                    model._base_manager.filter(pk=row["pk"]).update(**new)
                changed += 1
        return changed

    def scrub_history(self, model, fields: list[str], **where) -> int:
        """The same for simple-history's rows of `model` (every version, deleted objects too),
        plus each version's change reason."""
        history = getattr(model, "history", None)
        if history is None:
            return 0
        kept = {f.name for f in history.model._meta.fields}  # a history may exclude fields
        return self.scrub(history.model._base_manager.filter(**where), [f for f in [*fields, "history_change_reason"] if f in kept])

    def scrub_with_history(self, queryset: models.QuerySet, fields: list[str], **history_where) -> int:
        return self.scrub(queryset, fields) + self.scrub_history(queryset.model, fields, **history_where)


def scrub_tables(personal: PersonalData, tables: dict[str, tuple[models.QuerySet, list[str]]], *, history: dict | None = None) -> dict[str, int]:
    """Redact the identifiers from each named (queryset, fields); a table named in `history`
    (name → filter of its historical rows) has its simple-history rows scrubbed too. Returns
    rows changed per name (names with none left out)."""
    done = {}
    for name, (queryset, fields) in tables.items():
        n = personal.scrub(queryset, fields)
        if history is not None and name in history:
            n += personal.scrub_history(queryset.model, fields, **history[name])
        if n:
            done[name] = n
    return done
