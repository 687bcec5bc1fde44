"""Deletion requests: a grace period (CUSTOMER_DELETION_GRACE_DAYS, 30 by default) during which
the request can be cancelled, then every registered eraser anonymises the customer's personal
data (rows stay, so tickets and audit keep their integrity) and the request keeps a report."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from apps.core.choices import ROLE_RANK, OrgKind, Role
from apps.core.events import publish
from apps.core.policy import policy
from apps.core.tenancy import acting

from .choices import CustomerState, DeletionStatus
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
        pending = DeletionRequest.objects.filter(customer=customer, status=DeletionStatus.PENDING).first()
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


def deletion_request_execute(*, request_id: int) -> DeletionRequest | None:
    """Erase the customer's personal data for a due, pending request (claimed with SKIP LOCKED,
    so two runners never erase twice). All erasers run in one transaction: all or nothing; a
    failure leaves the data as it was and the request `failed` with the error."""
    try:
        with transaction.atomic():
            req = (
                DeletionRequest.objects.select_for_update(skip_locked=True)
                .filter(pk=request_id, status=DeletionStatus.PENDING, due_at__lte=timezone.now())
                .select_related("customer")
                .first()
            )
            if req is None:
                return None
            customer = req.customer
            if customer.state != CustomerState.TERMINATED:
                customer_transition(customer, actor=None, to_state=CustomerState.TERMINATED, reason=f"personal data erased (deletion request {req.pk})")
                customer.refresh_from_db()
            report: dict = {"customer": customer.account_number, "erasers": {}}
            for name, eraser in sorted(erasers().items()):
                report["erasers"][name] = eraser(customer, request=req)
            now = timezone.now()
            report["completed_at"] = now.isoformat()
            req.status, req.completed_at, req.report, req.error = DeletionStatus.COMPLETED, now, report, ""
            req.save()
            publish("customer.erased", tenant=req.tenant_id, payload=_payload(req, f"Personal data of {customer.account_number} erased", report=report))
            return req
    except Exception as exc:
        log.exception("deletion request %s failed", request_id)
        DeletionRequest.objects.filter(pk=request_id, status=DeletionStatus.PENDING).update(
            status=DeletionStatus.FAILED, error=repr(exc)[:4000], updated_at=timezone.now()
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
    due = list(
        DeletionRequest.objects.filter(status=DeletionStatus.PENDING, due_at__lte=timezone.now())
        .order_by("due_at").values_list("pk", flat=True)[:limit]
    )
    return sum(1 for pk in due if (r := deletion_request_execute(request_id=pk)) and r.status == DeletionStatus.COMPLETED)
