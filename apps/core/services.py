"""Core services: dispatching and sweeping the events outbox, saving scoped rows."""

from __future__ import annotations

import logging
import random
import traceback
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from .choices import ROLE_RANK, EventStatus, Role
from .events import handlers_for
from .models import Event, UserSecurity
from .tenancy import acting

log = logging.getLogger(__name__)


def event_dispatch(*, event_id) -> Event | None:
    """Run the handlers of one pending event that have not run yet.

    The row is claimed with SELECT … FOR UPDATE SKIP LOCKED, so two workers (or a worker and the
    sweeper) never run the same event at once. Each handler runs in its own savepoint: one that
    fails is retried later with backoff, the ones that succeeded are not run again.
    """
    with transaction.atomic():
        event = (
            Event.objects.select_for_update(skip_locked=True)
            .filter(pk=event_id, status=EventStatus.PENDING)
            .first()
        )
        if event is None:
            return None
        errors = []
        for key, handler in handlers_for(event.name):
            if key in event.handled:
                continue
            try:
                with transaction.atomic():
                    handler(event)
            except Exception as exc:  # a handler's bug must not block the others
                log.exception("event handler %s failed for %s %s", key, event.name, event.pk)
                errors.append(f"{key}: {exc!r}\n{traceback.format_exc(limit=3)}")
            else:
                event.handled.append(key)
        now = timezone.now()
        event.attempts += 1
        if errors:
            event.last_error = "\n".join(errors)[:4000]
            if event.attempts >= settings.EVENTS_MAX_ATTEMPTS:
                event.status = EventStatus.FAILED
            else:
                backoff = min(3600, 2 ** event.attempts * 5) * (0.8 + random.random() * 0.4)
                event.next_attempt_at = now + timedelta(seconds=backoff)
        else:
            event.status = EventStatus.DISPATCHED
            event.dispatched_at = now
            event.last_error = ""
        event.save(update_fields=["status", "attempts", "handled", "next_attempt_at", "last_error", "dispatched_at"])
        return event


def events_sweep(*, limit: int = 500) -> int:
    """Dispatch pending events whose time has come (lost by a broker outage or due a retry)."""
    due = list(
        Event.objects.filter(status=EventStatus.PENDING, next_attempt_at__lte=timezone.now())
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    done = 0
    for pk in due:
        if event_dispatch(event_id=pk) is not None:
            done += 1
    return done


def event_retry(*, actor, event_ids) -> int:
    """Put failed events back to pending so the sweeper dispatches them now (admin action)."""
    return Event.objects.visible_to(actor, "change").filter(
        pk__in=list(event_ids), status=EventStatus.FAILED
    ).update(status=EventStatus.PENDING, attempts=0, next_attempt_at=timezone.now())


def assign_tenant(obj, *, actor) -> None:
    """Fill in and check the tenant of a new tenant-owned row for the acting user.

    Tenant staff always write into their own tenant; platform staff must name one. Anyone else
    (partners, customers) may not write tenant rows through the generic path.
    """
    ctx = acting(actor)
    if getattr(obj, "tenant_id", None) is None and ctx.tenant_id and not ctx.is_platform:
        obj.tenant_id = ctx.tenant_id
    if actor is not None and not ctx.can_write_tenant(getattr(obj, "tenant_id", None)):
        raise PermissionDenied("You cannot create or change rows of that tenant.")


def require_named_tenant(tenant_id, *, actor) -> None:
    """Platform staff act for every tenant, so a new tenant row of theirs must name one: a 400
    that says so (`assign_tenant` would refuse it as another tenant's row)."""
    if tenant_id is None and actor is not None and acting(actor).is_platform:
        raise ValidationError({"tenant": "Name the tenant (its slug)."})


def scoped_save(obj, *, actor, update_fields=None):
    """Validate and save a tenant-owned row on behalf of `actor` (the generic admin/API path
    for models without special rules); the change is published as a `config.*` event."""
    from .audit import config_change

    if hasattr(obj, "tenant_id"):
        assign_tenant(obj, actor=actor)
    with transaction.atomic(), config_change(obj, actor=actor):
        obj.full_clean()
        obj.save(update_fields=update_fields)
    return obj


def scoped_delete(obj, *, actor) -> None:
    """Delete a row through the generic admin path (the admin checked the permission), published
    as `config.deleted`."""
    from .audit import config_deleted

    with transaction.atomic():
        config_deleted(obj, actor=actor)
        obj.delete()


def user_revoke_tokens(*, actor, user) -> int:
    """Revoke every JWT of a user: blacklist all outstanding refresh tokens and refuse access
    tokens issued before now. A user may revoke their own; platform admins anyone's."""
    from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

    if actor is not None and actor.pk != user.pk:
        ctx = acting(actor)
        if not (ctx.is_platform and ctx.rank >= ROLE_RANK[Role.ADMIN]):
            raise PermissionDenied("Only platform admins revoke another user's tokens.")
    with transaction.atomic():
        outstanding = OutstandingToken.objects.filter(user=user).exclude(blacklistedtoken__isnull=False)
        count = 0
        for token in outstanding:
            BlacklistedToken.objects.get_or_create(token=token)
            count += 1
        now = timezone.now()
        UserSecurity.objects.update_or_create(user=user, defaults={"tokens_revoked_at": now})
    return count


def refresh_token_replayed(*, user, jti: str) -> int:
    """A refresh token that was already rotated away (or revoked) came back: the chain may be in
    a thief's hands, so every token of the user is revoked (OAuth 2.0 Security BCP)."""
    import logging

    logging.getLogger(__name__).warning("refresh token %s of user %s presented again: revoking all their tokens", jti, user.pk)
    return user_revoke_tokens(actor=None, user=user)
