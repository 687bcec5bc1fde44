"""Every write to customers: registration, the lifecycle state machine, verification codes and
customer services. Exports and deletion requests are in `exports.py` and `deletion.py`."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.core.choices import OrgKind, Role
from apps.core.events import publish
from apps.core.policy import policy
from apps.core.services import assign_tenant
from apps.core.tenancy import acting, tenancy_changed

from ..choices import OrgStatus
from .choices import CUSTOMER_TRANSITIONS, SERVICE_TRANSITIONS, CustomerState, ServiceStatus
from .models import Customer, CustomerService, LifecycleEvent, VerificationCode

log = logging.getLogger(__name__)
S = CustomerState
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U


def _customer_url(customer: Customer) -> str:
    return f"/admin/tenants/customer/{customer.pk}/change/"


def _payload(customer: Customer, title: str, **extra) -> dict:
    return {
        "id": customer.pk,
        "object_type": "tenants.customer",
        "title": title,
        "url": _customer_url(customer),
        "account_number": customer.account_number,
        "state": customer.state,
        **extra,
    }


def check_customer_permission(actor, customer: Customer, action: str) -> None:
    """Raise PermissionDenied unless `actor` (None = system) may `action` this customer."""
    if actor is None:
        return
    if not Customer.objects.visible_to(actor, action).filter(pk=customer.pk).exists():
        raise PermissionDenied(f"You may not {action.replace('_', ' ')} this customer.")


def _new_account_number(tenant_id: int) -> str:
    for _ in range(20):
        candidate = "CUS-" + "".join(secrets.choice(_ALPHABET) for _ in range(8))
        if not Customer.objects.filter(tenant_id=tenant_id, account_number=candidate).exists():
            return candidate
    raise RuntimeError("could not find a free account number")  # 32^8 space: practically never


# -- registration ----------------------------------------------------------------------------
def customer_register(
    *,
    actor,
    name: str,
    contact_email: str = "",
    contact_phone: str = "",
    tenant=None,
    organization=None,
    username: str | None = None,
    send_code: bool = True,
) -> Customer:
    """Register a tenant's customer in state `registered`: creates (or links) its customer
    organization, optionally a first customer login (`username`, emailed nothing; they set a
    password through the reset flow), and emails a verification code to `contact_email`."""
    from ..models import Organization
    from ..services import membership_create, organization_create

    if actor is not None and not policy.allows(actor, "add", Customer):
        raise PermissionDenied("Your role in this organization does not allow registering customers.")
    customer = Customer(name=name, contact_email=contact_email or "", contact_phone=contact_phone or "")
    customer.tenant_id = tenant.pk if tenant is not None else None
    if customer.tenant_id is None and actor is not None and acting(actor).is_platform:
        raise ValidationError({"tenant": "Platform staff must name the tenant the customer belongs to."})
    assign_tenant(customer, actor=actor)
    if customer.tenant_id is None:
        raise ValidationError({"tenant": "Name the tenant the customer belongs to."})
    tenant = Organization.objects.get(pk=customer.tenant_id)
    if tenant.kind != OrgKind.TENANT:
        raise ValidationError({"tenant": f"{tenant.slug} is not a tenant."})
    with transaction.atomic():
        if organization is not None:
            if organization.kind != OrgKind.CUSTOMER or organization.parent_id != tenant.pk:
                raise ValidationError({"organization": "Link a customer organization of the same tenant."})
            if Customer.objects.filter(organization=organization).exists():
                raise ValidationError({"organization": f"{organization.slug} is already linked to a customer."})
        else:
            organization = organization_create(actor=None, kind=OrgKind.CUSTOMER, name=name, parent=tenant)
        customer.organization = organization
        customer.account_number = _new_account_number(tenant.pk)
        customer.full_clean()
        try:
            with transaction.atomic():
                customer.save()
        except IntegrityError:  # a concurrent registration took the number: draw again once
            customer.account_number = _new_account_number(tenant.pk)
            customer.save()
        LifecycleEvent.objects.create(
            tenant_id=tenant.pk, customer=customer, from_state="", to_state=S.REGISTERED, actor=actor, reason="registered"
        )
        if username:
            membership_create(actor=None, organization=organization, role=Role.CUSTOMER, username=username, email=contact_email)
        publish("customer.registered", tenant=tenant.pk, payload=_payload(customer, f"Customer {customer.account_number} registered"), actor=actor)
    if send_code and customer.contact_email:
        try:
            customer_send_verification_code(customer, actor=None)
        except ValidationError as exc:  # registration stands; the code can be re-sent
            log.warning("verification code for customer %s not sent: %s", customer.pk, exc)
    return customer


def customer_update(customer: Customer, *, actor, **changes) -> Customer:
    """Change a customer's name and contact details (not its state: see `customer_transition`)."""
    check_customer_permission(actor, customer, "change")
    if customer.erased_at:
        raise ValidationError("This customer's personal data was erased; it cannot be changed.")
    allowed = {"name", "contact_email", "contact_phone"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationError({k: "This field cannot be changed here." for k in sorted(unknown)})
    with transaction.atomic():
        for key, value in changes.items():
            setattr(customer, key, value or "")
        customer.full_clean()
        customer.save()
    return customer


# -- the state machine -------------------------------------------------------------------------
def customer_transition(customer: Customer, *, actor, to_state: str, reason: str = "", action: str = "change") -> Customer:
    """Move a customer to `to_state` if the state machine allows it, record a LifecycleEvent
    with actor and reason, apply the side effects (suspend/resume services and the customer
    organization's logins) and publish `customer.<to_state>`. An illegal move is a
    ValidationError naming the states that are allowed."""
    check_customer_permission(actor, customer, action)
    if to_state not in CustomerState.values:
        raise ValidationError({"state": f"Unknown state {to_state!r}; states are {', '.join(CustomerState.values)}."})
    with transaction.atomic():
        locked = Customer.objects.select_for_update().get(pk=customer.pk)
        current = locked.state
        allowed = CUSTOMER_TRANSITIONS[current]
        if to_state not in allowed:
            choices = ", ".join(allowed) if allowed else "none (terminated is final)"
            raise ValidationError(
                {"state": f"A {current} customer cannot become {to_state}. Allowed from {current}: {choices}."}
            )
        now = timezone.now()
        locked.state = to_state
        if to_state == S.VERIFIED:
            locked.verified_at = now
        elif to_state == S.ACTIVE and locked.activated_at is None:
            locked.activated_at = now
        elif to_state == S.TERMINATED:
            locked.terminated_at = now
        locked.full_clean()
        locked.save()
        LifecycleEvent.objects.create(
            tenant_id=locked.tenant_id, customer=locked, from_state=current, to_state=to_state, actor=actor, reason=reason or ""
        )
        _apply_side_effects(locked, current, to_state, actor=actor)
        payload = _payload(locked, f"Customer {locked.account_number} is now {to_state}", previous_state=current, reason=reason or "")
        if to_state in (S.SUSPENDED, S.TERMINATED):
            payload["notify"] = {"type": "customer_lifecycle", "priority": "medium", "roles": [Role.OWNER, Role.ADMIN]}
        publish(f"customer.{to_state}", tenant=locked.tenant_id, payload=payload, actor=actor)
    customer.refresh_from_db()
    return customer


def _apply_side_effects(customer: Customer, previous: str, to_state: str, *, actor) -> None:
    from ..models import Organization

    if to_state == S.SUSPENDED:
        moves, org_status, cause = {ServiceStatus.ACTIVE: ServiceStatus.SUSPENDED}, OrgStatus.SUSPENDED, "customer_suspended"
    elif to_state == S.ACTIVE and previous == S.SUSPENDED:
        moves, org_status, cause = {ServiceStatus.SUSPENDED: ServiceStatus.ACTIVE}, OrgStatus.ACTIVE, "customer_reactivated"
    elif to_state == S.TERMINATED:
        moves = {s: ServiceStatus.TERMINATED for s in ServiceStatus.values if s != ServiceStatus.TERMINATED}
        org_status, cause = OrgStatus.DELETED, "customer_terminated"
    else:
        return
    for service in customer.services.select_for_update().filter(status__in=list(moves)):
        _set_service_status(service, moves[service.status], actor=actor, cause=cause)
    if customer.organization_id:
        # The customer's users act within this organization; suspended/deleted ones cannot log in.
        Organization.objects.filter(pk=customer.organization_id).update(status=org_status, updated_at=timezone.now())
        tenancy_changed()  # a queryset update sends no signal: processes keeping acting contexts reload


def customer_start_onboarding(customer: Customer, *, actor, reason: str = "") -> Customer:
    return customer_transition(customer, actor=actor, to_state=S.ONBOARDING, reason=reason or "onboarding started")


def customer_activate(customer: Customer, *, actor, reason: str = "") -> Customer:
    return customer_transition(customer, actor=actor, to_state=S.ACTIVE, reason=reason or "activated")


def _require_reason(reason: str, what: str) -> str:
    if not (reason or "").strip():
        raise ValidationError({"reason": f"Say why the customer is {what}."})
    return reason.strip()


def customer_suspend(customer: Customer, *, actor, reason: str) -> Customer:
    """Suspend an active customer: its active services become suspended, its logins stop."""
    return customer_transition(customer, actor=actor, to_state=S.SUSPENDED, reason=_require_reason(reason, "suspended"))


def customer_reactivate(customer: Customer, *, actor, reason: str = "") -> Customer:
    """Reactivate a suspended customer: its suspended services become active again."""
    return customer_transition(customer, actor=actor, to_state=S.ACTIVE, reason=reason or "reactivated")


def customer_terminate(customer: Customer, *, actor, reason: str) -> Customer:
    """Terminate a customer (final): every service is terminated, its logins stop."""
    return customer_transition(customer, actor=actor, to_state=S.TERMINATED, reason=_require_reason(reason, "terminated"))


# -- verification ------------------------------------------------------------------------------
def _hash_code(customer_id: int, code: str) -> str:
    return hmac.new(settings.SECRET_KEY.encode(), f"{customer_id}:{code}".encode(), hashlib.sha256).hexdigest()


def customer_send_verification_code(customer: Customer, *, actor) -> VerificationCode:
    """Email a fresh one-time code to the customer's contact address (earlier codes die).
    At most CUSTOMER_VERIFICATION_MAX_SENDS_PER_HOUR codes per customer and hour."""
    check_customer_permission(actor, customer, "send_code")
    if customer.state != S.REGISTERED:
        raise ValidationError(f"Customer {customer.account_number} is {customer.state}; only registered customers verify.")
    if not customer.contact_email:
        raise ValidationError({"contact_email": "The customer has no contact email to send a code to."})
    now = timezone.now()
    limit = settings.CUSTOMER_VERIFICATION_MAX_SENDS_PER_HOUR
    with transaction.atomic():
        Customer.objects.select_for_update().filter(pk=customer.pk).first()
        recent = VerificationCode.objects.filter(customer=customer, created_at__gte=now - timedelta(hours=1)).count()
        if recent >= limit:
            raise ValidationError(f"{limit} codes were sent within the last hour; wait before asking for another.")
        VerificationCode.objects.filter(customer=customer, used_at__isnull=True).update(expires_at=now)
        code = f"{secrets.randbelow(10**6):06d}"
        ttl = settings.CUSTOMER_VERIFICATION_CODE_TTL_MINUTES
        row = VerificationCode.objects.create(
            customer=customer, code_hash=_hash_code(customer.pk, code), sent_to=customer.contact_email,
            expires_at=now + timedelta(minutes=ttl),
        )
    try:
        send_mail(
            subject=f"Your verification code: {code}",
            message=(
                f"Hello {customer.name},\n\nyour verification code for account {customer.account_number} is {code}.\n"
                f"It expires in {ttl} minutes.\n"
            ),
            from_email=None,
            recipient_list=[customer.contact_email],
        )
    except Exception as exc:  # SMTP down or refused: the code is useless, say so
        VerificationCode.objects.filter(pk=row.pk).update(expires_at=now)
        raise ValidationError(f"The verification email could not be sent ({exc}); try again later.") from exc
    return row


def customer_verify(customer: Customer, *, actor, code: str, reason: str = "") -> Customer:
    """Check a one-time code and move the customer registered → verified. A wrong code counts
    an attempt; after CUSTOMER_VERIFICATION_MAX_ATTEMPTS the code is dead."""
    check_customer_permission(actor, customer, "verify")
    if S.VERIFIED not in CUSTOMER_TRANSITIONS[customer.state]:
        # the state machine's own message, naming what is allowed
        return customer_transition(customer, actor=actor, to_state=S.VERIFIED, action="verify")
    now = timezone.now()
    max_attempts = settings.CUSTOMER_VERIFICATION_MAX_ATTEMPTS
    error = None
    with transaction.atomic():
        row = (
            VerificationCode.objects.select_for_update()
            .filter(customer=customer, used_at__isnull=True, expires_at__gt=now)
            .order_by("-created_at")
            .first()
        )
        if row is None:
            error = "There is no valid verification code for this customer; request a new one."
        elif row.attempts >= max_attempts:
            error = "Too many wrong attempts for this code; request a new one."
        elif not hmac.compare_digest(row.code_hash, _hash_code(customer.pk, str(code or "").strip())):
            row.attempts += 1
            row.save(update_fields=["attempts"])
            left = max_attempts - row.attempts
            error = f"The code is wrong; {left} attempt(s) left." if left else "The code is wrong; request a new one."
        else:
            row.used_at = now
            row.save(update_fields=["used_at"])
            customer_transition(
                customer, actor=actor, to_state=S.VERIFIED, reason=reason or "contact email verified by code", action="verify"
            )
    if error:
        raise ValidationError({"code": error})
    customer.refresh_from_db()
    return customer


# -- customer services -------------------------------------------------------------------------
def _service_payload(service: CustomerService, title: str, **extra) -> dict:
    return {
        "id": service.pk,
        "object_type": "tenants.customerservice",
        "title": title,
        "url": f"/admin/tenants/customerservice/{service.pk}/change/",
        "customer_id": service.customer_id,
        "plan": service.plan,
        "status": service.status,
        **extra,
    }


def customer_service_provision(*, actor, customer: Customer, plan: str, parameters: dict | None = None) -> CustomerService:
    """Request a service for a verified, onboarding or active customer. A verified customer
    moves to onboarding. Publishes `customer_service.provision_requested`; the app that runs the
    provisioning job reports back through `customer_service_set_status`."""
    check_customer_permission(actor, customer, "provision")
    allowed_states = (S.VERIFIED, S.ONBOARDING, S.ACTIVE)
    if customer.state not in allowed_states:
        raise ValidationError(
            f"Customer {customer.account_number} is {customer.state}; services are provisioned for "
            f"{', '.join(allowed_states)} customers."
        )
    if parameters is not None and not isinstance(parameters, dict):
        raise ValidationError({"parameters": "Parameters are a JSON object."})
    with transaction.atomic():
        if customer.state == S.VERIFIED:
            customer_transition(customer, actor=actor, to_state=S.ONBOARDING, reason=f"service {plan!r} requested", action="provision")
        service = CustomerService(tenant_id=customer.tenant_id, customer=customer, plan=(plan or "").strip(), parameters=parameters or {})
        service.status_changed_at = timezone.now()
        service.full_clean()
        service.save()
        _publish_provision(service, actor=actor)
    return service


def _publish_provision(service: CustomerService, *, actor) -> None:
    customer = service.customer
    publish(
        "customer_service.provision_requested",
        tenant=service.tenant_id,
        payload=_service_payload(
            service, f"Provision {service.plan} for {customer.account_number}",
            account_number=customer.account_number, parameters=service.parameters,
        ),
        actor=actor,
    )


def customer_service_reprovision(service: CustomerService, *, actor) -> CustomerService:
    """Ask again for a failed service (failed → pending, provision requested again)."""
    if actor is not None and not CustomerService.objects.visible_to(actor, "change").filter(pk=service.pk).exists():
        raise PermissionDenied("You may not change this customer service.")
    if service.status != ServiceStatus.FAILED:
        raise ValidationError(f"Only failed services are provisioned again; this one is {service.status}.")
    with transaction.atomic():
        service = customer_service_set_status(service=service, status=ServiceStatus.PENDING, actor=actor)
        _publish_provision(service, actor=actor)
    return service


def customer_service_set_status(
    *, service: CustomerService, status: str, actor=None, job_run_id: int | None = None, error: str = ""
) -> CustomerService:
    """Record the provisioning result (or any status change) of a customer service.

    Called by the app that runs the provisioning job (status provisioning when the job starts,
    active when it succeeded, failed with `error` when it failed). Idempotent: the same status
    twice is a no-op. The first active service of an onboarding customer activates the customer.
    """
    if actor is not None and not CustomerService.objects.visible_to(actor, "change").filter(pk=service.pk).exists():
        raise PermissionDenied("You may not change this customer service.")
    if status not in ServiceStatus.values:
        raise ValidationError({"status": f"Unknown status {status!r}; statuses are {', '.join(ServiceStatus.values)}."})
    with transaction.atomic():
        locked = CustomerService.objects.select_for_update().select_related("customer").get(pk=service.pk)
        if locked.status == status:
            changed = False
            if job_run_id and locked.job_run_id != job_run_id:
                locked.job_run_id = job_run_id
                locked.save(update_fields=["job_run_id", "updated_at"])
        else:
            changed = True
            _set_service_status(locked, status, actor=actor, job_run_id=job_run_id, error=error)
        customer = locked.customer
        if changed and status == ServiceStatus.ACTIVE and customer.state == S.ONBOARDING:
            customer_transition(customer, actor=actor, to_state=S.ACTIVE, reason=f"service {locked.plan!r} is active")
    return locked


def _set_service_status(service: CustomerService, status: str, *, actor, job_run_id=None, error: str = "", cause: str = "") -> None:
    previous = service.status
    allowed = SERVICE_TRANSITIONS[previous]
    if status not in allowed:
        raise ValidationError(
            {"status": f"A {previous} service cannot become {status}. Allowed from {previous}: {', '.join(allowed) or 'none'}."}
        )
    now = timezone.now()
    service.status = status
    service.status_changed_at = now
    if job_run_id:
        service.job_run_id = job_run_id
    if status == ServiceStatus.ACTIVE and service.provisioned_at is None:
        service.provisioned_at = now
    service.last_error = (error or "")[:4000] if status == ServiceStatus.FAILED else ""
    service.full_clean()
    service.save()
    payload = _service_payload(
        service, f"Service {service.plan} of customer {service.customer_id} is {status}",
        previous_status=previous, job_run_id=service.job_run_id, cause=cause, error=service.last_error,
    )
    if status == ServiceStatus.FAILED:
        payload["notify"] = {"type": "customer_service_failed", "priority": "high", "roles": [Role.OWNER, Role.ADMIN, Role.OPERATOR]}
    publish("customer_service.status_changed", tenant=service.tenant_id, payload=payload, actor=actor)
