"""The tenants app's own exporters and erasers (see `registry.py` for the contract)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils import timezone

from apps.core.choices import OrgKind
from apps.core.tenancy import tenancy_changed

from .erasure import PersonalData, scrub_tables
from .registry import ExportScope, register_eraser, register_exporter
from .registry import iso as _iso


def _customers(scope: ExportScope):
    from .models import Customer

    qs = Customer.objects.filter(tenant_id=scope.tenant_id)
    if scope.customer is not None:
        qs = qs.filter(pk=scope.customer.pk)
    return qs


@register_exporter("customers", label="Customers")
def export_customers(scope: ExportScope):
    for c in scope.in_range(_customers(scope)).order_by("pk").iterator(chunk_size=2000):
        yield {
            "id": c.pk, "account_number": c.account_number, "name": c.name, "contact_email": c.contact_email,
            "contact_phone": c.contact_phone, "state": c.state, "created_at": _iso(c.created_at),
            "verified_at": _iso(c.verified_at), "activated_at": _iso(c.activated_at), "terminated_at": _iso(c.terminated_at),
        }


@register_exporter("lifecycle_events", label="Lifecycle events")
def export_lifecycle_events(scope: ExportScope):
    from .models import LifecycleEvent

    qs = LifecycleEvent.objects.filter(tenant_id=scope.tenant_id, customer__in=_customers(scope))
    for e in scope.in_range(qs).select_related("customer", "actor").order_by("pk").iterator(chunk_size=2000):
        yield {
            "id": e.pk, "account_number": e.customer.account_number, "from_state": e.from_state, "to_state": e.to_state,
            "actor": e.actor.get_username() if e.actor else "", "reason": e.reason, "created_at": _iso(e.created_at),
        }


@register_exporter("customer_services", label="Customer services")
def export_customer_services(scope: ExportScope):
    from .models import CustomerService

    qs = CustomerService.objects.filter(tenant_id=scope.tenant_id, customer__in=_customers(scope))
    for s in scope.in_range(qs).select_related("customer").order_by("pk").iterator(chunk_size=2000):
        yield {
            "id": s.pk, "account_number": s.customer.account_number, "plan": s.plan, "status": s.status,
            "created_at": _iso(s.created_at), "provisioned_at": _iso(s.provisioned_at),
        }


@register_exporter("memberships", label="Memberships")
def export_memberships(scope: ExportScope):
    from ..models import Membership

    if scope.customer is not None:
        orgs = Q(organization_id=scope.customer.organization_id)
    else:
        orgs = Q(organization_id=scope.tenant_id) | Q(organization__kind=OrgKind.CUSTOMER, organization__parent_id=scope.tenant_id)
    qs = Membership.objects.filter(orgs)
    for m in scope.in_range(qs).select_related("user", "organization").order_by("pk").iterator(chunk_size=2000):
        yield {
            "id": m.pk, "username": m.user.get_username(), "email": m.user.email, "organization": m.organization.slug,
            "role": m.role, "is_active": m.is_active, "created_at": _iso(m.created_at),
        }


@register_eraser("tenants")
def erase_customer(customer, *, request, personal: PersonalData) -> dict:
    """Anonymise the customer record, its organization (and its history) and the logins that
    belong only to it; redact them from lifecycle reasons, service parameters, deletion
    reasons (and those rows' history); drop verification codes and the export files that hold
    their data. Rows stay for integrity."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from ..models import Membership, Organization
    from .choices import ExportStatus
    from .exports import delete_export_file
    from .models import CustomerService, DataExport, DeletionRequest, LifecycleEvent, VerificationCode

    User = get_user_model()
    label = f"Erased customer {customer.account_number}"
    report: dict = {"customer_fields": [f for f in ("name", "contact_email", "contact_phone") if getattr(customer, f) and not customer.erased_at]}
    customer.name, customer.contact_email, customer.contact_phone = label, "", ""
    customer.erased_at = customer.erased_at or timezone.now()
    customer.save(update_fields=["name", "contact_email", "contact_phone", "erased_at", "updated_at"])

    own = {"tenant_id": customer.tenant_id, "customer_id": customer.pk}
    report["text_redacted"] = (
        personal.scrub(LifecycleEvent.objects.filter(**own), ["reason"])
        + personal.scrub_with_history(CustomerService.objects.filter(**own), ["parameters", "last_error"], **own)
        + personal.scrub_with_history(DeletionRequest.objects.filter(**own), ["reason"], **own)
        + personal.scrub_history(Membership, [])  # change reasons of any membership's history
    )
    report["verification_codes_deleted"] = VerificationCode.objects.filter(customer=customer).delete()[0]
    # the customer's own exports and the tenant-wide ones (they hold every customer's rows)
    files = 0
    holding = DataExport.objects.filter(Q(customer=customer) | Q(tenant_id=customer.tenant_id, customer__isnull=True))
    for export in holding.exclude(file=""):
        files += delete_export_file(export)
    holding.filter(status=ExportStatus.SUCCEEDED).update(status=ExportStatus.EXPIRED)
    report["export_files_deleted"] = files

    users = 0
    if customer.organization_id:
        org_id = customer.organization_id
        Organization.objects.filter(pk=org_id).update(name=label, slug=f"erased-{org_id}")
        Organization.history.filter(id=org_id).update(name=label, slug=f"erased-{org_id}")
        # Only logins that belong to this customer alone are anonymised; others just lose access.
        for user in User.objects.filter(pk__in=personal.user_ids):
            user.username = f"erased-user-{user.pk}"
            user.email = ""
            user.first_name = user.last_name = ""
            user.is_active = False
            user.set_unusable_password()
            user.save()
            users += 1
        # their authenticator devices are named by the person (often their e-mail)
        report["otp_devices_deleted"] = TOTPDevice.objects.filter(user_id__in=personal.user_ids).delete()[0]
        report["memberships_deactivated"] = Membership.objects.filter(organization_id=org_id).update(is_active=False)
        tenancy_changed()  # a queryset update sends no signal: processes keeping acting contexts reload
        report["organization_anonymised"] = True
    report["users_anonymised"] = users
    return report


@register_eraser("events")
def erase_events(customer, *, request, personal: PersonalData) -> dict:
    """The outbox keeps payloads (titles, reasons, parameters) of the tenant's events: redact
    the customer's identifiers from them; the rows stay (dispatch state, the tenant timeline)."""
    from apps.core.models import Event

    events = Event.objects.filter(Q(tenant_id=customer.tenant_id) | Q(tenant__isnull=True))
    return {"events_redacted": personal.scrub(events, ["payload", "last_error"])}


@register_eraser("platform_logs")
def erase_platform_logs(customer, *, request, personal: PersonalData) -> dict:
    """Logs kept by libraries beside the apps: django-admin's change log (object names and change
    messages) and django-axes' login attempts (usernames, request data). Rows stay, redacted."""
    from django.apps import apps as registry
    from django.contrib.admin.models import LogEntry

    tables = {"admin_log": (LogEntry.objects.all(), ["object_repr", "change_message"])}
    if registry.is_installed("axes"):
        for name in ("AccessAttempt", "AccessLog", "AccessFailureLog"):
            model = registry.get_model("axes", name)
            fields = [f for f in ("username", "get_data", "post_data") if f in {x.name for x in model._meta.fields}]
            tables[f"axes_{name.lower()}"] = (model.objects.all(), fields)
    return scrub_tables(personal, tables)
