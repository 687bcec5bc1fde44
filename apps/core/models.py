"""Base models (timestamps, tenant ownership with the `visible_to` gate) and the events outbox."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Case, F, Value, When
from django.db.models.functions import Left, StrIndex
from django.utils import timezone

from .choices import EventStatus, OrgKind
from .tenancy import Acting


class TimeStampedModel(models.Model):
    """Every row knows when it was created and last changed."""

    created_at = models.DateTimeField(default=timezone.now, editable=False, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class PortalQuerySet(models.QuerySet):
    """The queryset every portal model uses: `visible_to(user, action)` is the only way rows
    reach a user (admin changelists, API lists, autocomplete, exports, selectors)."""

    def visible_to(self, user, action: str = "view"):
        from .policy import policy

        return policy.scope(self, user, action)


PortalManager = models.Manager.from_queryset(PortalQuerySet)


class TenantOwnedModel(TimeStampedModel):
    """A row that belongs to exactly one tenant.

    Default reach: platform staff see every tenant, tenant staff their own tenant. Partners see
    rows of the tenants they serve only where a model sets `PARTNER_VISIBLE = True`; customers
    see nothing unless the model overrides `scope_queryset` (tickets do, for their own tickets).
    """

    tenant = models.ForeignKey(
        "tenants.Organization",
        on_delete=models.PROTECT,
        limit_choices_to={"kind": OrgKind.TENANT},
        related_name="%(app_label)s_%(class)s_set",
    )

    objects = PortalManager()

    PARTNER_VISIBLE = False

    class Meta:
        abstract = True

    @classmethod
    def scope_queryset(cls, queryset: models.QuerySet, ctx: Acting, action: str) -> models.QuerySet:
        """Tenant filter for an acting context whose role already allows `action`."""
        if ctx.is_platform:
            return queryset
        if ctx.kind == OrgKind.TENANT and ctx.tenant_id:
            return queryset.filter(tenant_id=ctx.tenant_id)
        if ctx.kind == OrgKind.PARTNER and cls.PARTNER_VISIBLE and ctx.served_tenant_ids:
            return queryset.filter(tenant_id__in=ctx.served_tenant_ids)
        return queryset.none()


class Event(models.Model):
    """An entry of the events outbox: written in the publisher's transaction, dispatched to the
    registered handlers by Celery after commit, re-dispatched by the sweeper if the broker or a
    worker lost it. `handled` lists the handlers that already ran, so a retry runs only the rest.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100, db_index=True)
    # The name's first part ("ticket" of "ticket.created"), computed by the database so every
    # insert path (publish, bulk_create, set-based SQL) fills it: the tenant timeline reads one
    # index range per topic.
    topic = models.GeneratedField(
        expression=Case(When(name__contains=".", then=Left("name", StrIndex("name", Value(".")) - 1)), default=F("name")),
        output_field=models.CharField(max_length=100),
        db_persist=True,
    )
    tenant = models.ForeignKey(
        "tenants.Organization", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    payload = models.JSONField(default=dict, blank=True)
    actor_id = models.BigIntegerField(null=True, blank=True)
    status = models.CharField(max_length=12, choices=EventStatus.choices, default=EventStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    handled = models.JSONField(default=list, blank=True)
    next_attempt_at = models.DateTimeField()
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)

    objects = PortalManager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="core_event_due_idx"),
            # the tenant timeline reads, per topic, a tenant's events newest first (apps/alerts/timeline.py)
            models.Index(fields=["tenant", "topic", "-created_at", "-id"], name="core_event_timeline_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"


class UserSecurity(models.Model):
    """Per-user security marks: access tokens issued before `tokens_revoked_at` are refused."""

    user = models.OneToOneField("auth.User", on_delete=models.CASCADE, related_name="portal_security")
    tokens_revoked_at = models.DateTimeField(null=True, blank=True)

    objects = PortalManager()

    def __str__(self) -> str:
        return f"security of user {self.user_id}"


# People (Django's users, scoped): apps/core/users.py. Defined here so the app registry loads it.
from .users import PortalUser, PortalUserManager  # noqa: E402, F401
