"""Deletion requests: a grace period (CUSTOMER_DELETION_GRACE_DAYS, 30 by default) during which
the request can be cancelled, then every registered eraser anonymises the customer's personal
data in its app (rows stay where counts and integrity need them) and the request keeps a report."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.core.choices import ROLE_RANK, OrgKind, Role
from apps.core.events import publish
from apps.core.policy import policy
from apps.core.tenancy import acting

from .choices import CustomerState, DeletionStatus
from .erasure import PersonalData
from .exports import _own_customer
from .models import Customer, DeletionRequest
from .registry import erasers
from .services import customer_transition

log = logging.getLogger(__name__)


def _payload(req: DeletionRequest, title: str, **extra) -> dict:
    return {
        "id": req.pk, "object_type": "tenants.deletionrequest", "title": title,
        "url": f"/admin/tenants/deletionrequest/{req.pk}/change/", "customer_id": req.customer_id,
        "due_at": req.due_at.isoformat(), **extra,
    }


def deletion_request_create(*, actor, customer: Customer | None = None, reason: str = "", immediate: bool = False) -> DeletionRequest:
    """Ask for a customer's personal data to be erased after the grace period. Customers ask for
    themselves, tenant owners/admins for their customers; platform admins may erase at once
    (`immediate=True`, with a reason)."""
    if actor is not None and not policy.allows(actor, "add", DeletionRequest):
        raise PermissionDenied("Only tenant owners and admins, or customers for themselves, request deletion.")
    ctx = acting(actor) if actor is not None else None
    if ctx is not None and ctx.kind == OrgKind.CUSTOMER:
        own = _own_customer(actor)
        if customer is not None and customer.pk != own.pk:
            raise PermissionDenied("Customers request the deletion of their own data only.")
        customer = own
    if customer is None:
        raise ValidationError({"customer": "Name the customer whose data is to be erased."})
    if actor is not None and not Customer.objects.visible_to(actor).filter(pk=customer.pk).exists():
        raise PermissionDenied("You cannot request the deletion of this customer's data.")
    if immediate:
        if ctx is not None and not (ctx.is_platform and ctx.rank >= ROLE_RANK[Role.ADMIN]):
            raise PermissionDenied("Only platform admins erase a customer's data without the grace period.")
        if not (reason or "").strip():
            raise ValidationError({"reason": "Give the reason for erasing without the grace period."})
    now = timezone.now()
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=customer.pk)  # re-read: the caller's copy may be stale
        if customer.erased_at:
            raise ValidationError({"customer": f"The personal data of {customer.account_number} was already erased."})
        pending = DeletionRequest.objects.filter(customer=customer, status__in=[DeletionStatus.PENDING, DeletionStatus.RUNNING]).first()
        if pending is not None:
            raise ValidationError(
                {"customer": f"A deletion request for {customer.account_number} is already pending (due {pending.due_at:%Y-%m-%d})."}
            )
        req = DeletionRequest(
            tenant_id=customer.tenant_id, customer=customer, requested_by=actor, reason=(reason or "").strip(),
            immediate=immediate,
            due_at=now if immediate else now + timedelta(days=settings.CUSTOMER_DELETION_GRACE_DAYS),
        )
        if actor is not None:
            req._history_user = actor
        req.full_clean()
        req.save()
        publish(
            "customer.deletion_requested", tenant=customer.tenant_id, actor=actor,
            payload=_payload(req, f"Deletion of customer {customer.account_number}'s data requested", immediate=immediate,
                             notify={"type": "customer_deletion", "priority": "medium", "roles": [Role.OWNER, Role.ADMIN]}),
        )
    if immediate:
        req = deletion_request_execute(request_id=req.pk) or req
    return req


def deletion_request_cancel(req: DeletionRequest, *, actor, reason: str = "") -> DeletionRequest:
    """Cancel a pending request during its grace period."""
    if actor is not None and not DeletionRequest.objects.visible_to(actor, "cancel").filter(pk=req.pk).exists():
        raise PermissionDenied("You may not cancel this deletion request.")
    with transaction.atomic():
        locked = DeletionRequest.objects.select_for_update().get(pk=req.pk)
        if locked.status != DeletionStatus.PENDING:
            raise ValidationError(f"Only pending requests can be cancelled; this one is {locked.status}.")
        locked.status, locked.cancelled_at, locked.cancelled_by = DeletionStatus.CANCELLED, timezone.now(), actor
        if reason:
            locked.reason = f"{locked.reason}\nCancelled: {reason}".strip()
        if actor is not None:
            locked._history_user = actor
        locked.save()
        publish("customer.deletion_cancelled", tenant=locked.tenant_id, actor=actor, payload=_payload(locked, "Deletion request cancelled"))
    return locked


LAST_ERASER = "tenants"  # blanks the identifiers the others search for, so it runs last


def _claim(request_id: int) -> DeletionRequest | None:
    """Claim a due pending request (or one whose runner died: running and untouched for
    CUSTOMER_DELETION_STALE_SECONDS) so two runners never erase at once."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.CUSTOMER_DELETION_STALE_SECONDS)
    claimed = (
        DeletionRequest.objects.filter(pk=request_id)
        .filter(Q(status=DeletionStatus.PENDING, due_at__lte=now) | Q(status=DeletionStatus.RUNNING, updated_at__lt=stale))
        .update(status=DeletionStatus.RUNNING, updated_at=now, error="")
    )
    return DeletionRequest.objects.select_related("customer").get(pk=request_id) if claimed else None


def deletion_request_execute(*, request_id: int) -> DeletionRequest | None:
    """Erase the customer's personal data for a due, pending request. The customer is
    terminated first (their logins stop acting); then each registered eraser runs in its own
    transaction with the identifiers taken beforehand (`PersonalData`), the report saved after
    each; the tenants eraser, which blanks those identifiers, runs last in the transaction that
    completes the request. Erasers are idempotent: a failure leaves that app untouched and the
    request `failed`; a retry runs them all again."""
    req = _claim(request_id)
    if req is None:
        return None
    personal = None
    try:
        customer = req.customer
        if customer.state != CustomerState.TERMINATED:
            customer_transition(customer, actor=None, to_state=CustomerState.TERMINATED, reason=f"personal data erased (deletion request {req.pk})")
            customer.refresh_from_db()
        personal = PersonalData.of(customer)
        report: dict = {"customer": customer.account_number, "erasers": {}}
        ordered = sorted(erasers().items(), key=lambda item: (item[0] == LAST_ERASER, item[0]))
        for name, eraser in ordered:
            with transaction.atomic():
                report["erasers"][name] = eraser(customer, request=req, personal=personal)
                if name != LAST_ERASER:
                    DeletionRequest.objects.filter(pk=req.pk).update(report=report, updated_at=timezone.now())
                    continue
                now = timezone.now()
                report["completed_at"] = now.isoformat()
                req.status, req.completed_at, req.report, req.error = DeletionStatus.COMPLETED, now, report, ""
                req.reason = personal.redact(req.reason)
                req.save()
                publish("customer.erased", tenant=req.tenant_id, payload=_payload(req, f"Personal data of {customer.account_number} erased", report=report))
        return req
    except Exception as exc:
        log.exception("deletion request %s failed", request_id)
        error = personal.redact(repr(exc)) if personal is not None else repr(exc)  # errors may quote the data
        DeletionRequest.objects.filter(pk=request_id, status=DeletionStatus.RUNNING).update(
            status=DeletionStatus.FAILED, error=error[:4000], updated_at=timezone.now()
        )
        return DeletionRequest.objects.get(pk=request_id)


def deletion_request_retry(req: DeletionRequest, *, actor) -> DeletionRequest:
    """Put a failed request back to pending (due now) so the next run executes it again."""
    if actor is not None and not DeletionRequest.objects.visible_to(actor, "change").filter(pk=req.pk).exists():
        raise PermissionDenied("You may not change this deletion request.")
    if req.status != DeletionStatus.FAILED:
        raise ValidationError(f"Only failed requests are retried; this one is {req.status}.")
    DeletionRequest.objects.filter(pk=req.pk).update(status=DeletionStatus.PENDING, due_at=timezone.now(), error="")
    req.refresh_from_db()
    return req


def deletion_requests_execute_due(*, limit: int = 100) -> int:
    """Execute every pending request whose grace period is over (beat)."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.CUSTOMER_DELETION_STALE_SECONDS)
    due = list(
        DeletionRequest.objects.filter(Q(status=DeletionStatus.PENDING, due_at__lte=now) | Q(status=DeletionStatus.RUNNING, updated_at__lt=stale))
        .order_by("due_at").values_list("pk", flat=True)[:limit]
    )
    return sum(1 for pk in due if (r := deletion_request_execute(request_id=pk)) and r.status == DeletionStatus.COMPLETED)
