"""Customers of a tenant and everything that hangs off them.

A `Customer` is the tenant's business record of an end customer; its optional one-to-one
`organization` (kind customer, parent = tenant) is what the customer's own users log in to.
Customers (role customer) reach only the rows of their own Customer.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from apps.core.choices import MANAGER_ROLES, STAFF_ROLES, OrgKind, Role
from apps.core.models import TenantOwnedModel
from apps.core.tenancy import Acting

from .choices import CustomerState, DeletionStatus, ExportFormat, ExportStatus, ServiceStatus

OPERATORS = frozenset({Role.OWNER, Role.ADMIN, Role.OPERATOR})
C = Role.CUSTOMER


class CustomerScopedMixin:
    """Reach of rows that belong to a customer: staff by tenant, a customer its own rows only.

    `CUSTOMER_PATH` is the lookup from the row to the customer organization id."""

    CUSTOMER_PATH = "customer__organization_id"

    @classmethod
    def scope_queryset(cls, queryset, ctx: Acting, action: str):
        if ctx.kind == OrgKind.CUSTOMER and ctx.organization_id:
            return queryset.filter(**{cls.CUSTOMER_PATH: ctx.organization_id, "tenant_id": ctx.tenant_id})
        return super().scope_queryset(queryset, ctx, action)


class Customer(CustomerScopedMixin, TenantOwnedModel):
    """A tenant's end customer: account number, contact details and a lifecycle state that
    only `customer_transition` changes (each change is a LifecycleEvent)."""

    CUSTOMER_PATH = "organization_id"

    account_number = models.CharField(max_length=20, editable=False)
    name = models.CharField(max_length=200)
    contact_email = models.EmailField(blank=True, default="")
    contact_phone = models.CharField(max_length=40, blank=True, default="")
    state = models.CharField(
        max_length=12, choices=CustomerState.choices, default=CustomerState.REGISTERED, db_index=True, editable=False
    )
    organization = models.OneToOneField(
        "tenants.Organization",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="customer_record",
        limit_choices_to={"kind": OrgKind.CUSTOMER},
        help_text="The customer organization whose users act for this customer.",
    )
    verified_at = models.DateTimeField(null=True, blank=True, editable=False)
    activated_at = models.DateTimeField(null=True, blank=True, editable=False)
    terminated_at = models.DateTimeField(null=True, blank=True, editable=False)
    erased_at = models.DateTimeField(null=True, blank=True, editable=False)

    PORTAL_ROLE_ACTIONS = {
        "view": STAFF_ROLES | {C},
        "add": OPERATORS | {Role.SUPPORT_AGENT},
        "change": OPERATORS,
        "delete": frozenset(),
        "verify": STAFF_ROLES - {Role.VIEWER} | {C},
        "send_code": STAFF_ROLES - {Role.VIEWER} | {C},
        "provision": OPERATORS,
    }

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "account_number"], name="tenants_customer_account_unique"),
        ]
        indexes = [models.Index(fields=["tenant", "state"], name="tenants_customer_state_idx")]

    def __str__(self) -> str:
        return f"{self.account_number} {self.name}"


class LifecycleEvent(CustomerScopedMixin, TenantOwnedModel):
    """One transition of a customer's lifecycle: from, to, who and why (the audit timeline)."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="lifecycle_events")
    from_state = models.CharField(max_length=12, choices=CustomerState.choices, blank=True, default="")
    to_state = models.CharField(max_length=12, choices=CustomerState.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    reason = models.TextField(blank=True, default="")

    PORTAL_ROLE_ACTIONS = {"view": STAFF_ROLES | {C}, "add": frozenset(), "change": frozenset(), "delete": frozenset()}

    class Meta:
        ordering = ["created_at", "pk"]
        indexes = [models.Index(fields=["customer", "created_at"], name="tenants_lifecycle_cust_idx")]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.from_state or '∅'} → {self.to_state}"


class VerificationCode(models.Model):
    """A one-time verification code sent to a customer's contact email: stored hashed, expires,
    and dies after a few wrong attempts."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="verification_codes")
    code_hash = models.CharField(max_length=128)
    sent_to = models.EmailField()
    expires_at = models.DateTimeField()
    attempts = models.PositiveIntegerField(default=0)
    used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"code for customer {self.customer_id}"


class CustomerService(CustomerScopedMixin, TenantOwnedModel):
    """A service a customer subscribes to (a plan). Provisioning is requested as an event; the
    app that runs the provisioning job reports back through `customer_service_set_status`."""

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="services")
    plan = models.CharField(max_length=100)
    parameters = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=12, choices=ServiceStatus.choices, default=ServiceStatus.PENDING, db_index=True)
    job_run_id = models.BigIntegerField(null=True, blank=True, help_text="The provisioning job run (targets app).")
    last_error = models.TextField(blank=True, default="")
    status_changed_at = models.DateTimeField(null=True, blank=True)
    provisioned_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords()

    PORTAL_ROLE_ACTIONS = {"view": STAFF_ROLES | {C}, "add": OPERATORS, "change": OPERATORS, "delete": frozenset()}

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["customer", "status"], name="tenants_custsvc_status_idx")]

    def __str__(self) -> str:
        return f"{self.plan} for customer {self.customer_id} ({self.status})"


class DataExport(CustomerScopedMixin, TenantOwnedModel):
    """A requested export (zip of JSON or CSV files) of a tenant's or one customer's data, built
    by a task. History (simple-history) audits the request and every download."""

    CUSTOMER_PATH = "customer__organization_id"

    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.PROTECT, related_name="exports",
        help_text="Empty: the whole tenant (tenant admins only).",
    )
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    format = models.CharField(max_length=4, choices=ExportFormat.choices, default=ExportFormat.JSON)
    data_types = models.JSONField(default=list)
    date_from = models.DateTimeField(null=True, blank=True)
    date_to = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=ExportStatus.choices, default=ExportStatus.PENDING, db_index=True)
    progress = models.PositiveSmallIntegerField(default=0)
    file = models.CharField(
        max_length=300, blank=True, default="",
        help_text="Name of the zip in the configured file storage (a path under MEDIA_ROOT, or the S3 key with "
                  "STORAGE_BACKEND=s3). Empty until the export succeeds, and again once expiry or erasure deletes the file.",
    )
    size_bytes = models.BigIntegerField(default=0)
    row_counts = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, default="")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    download_count = models.PositiveIntegerField(default=0)
    last_downloaded_at = models.DateTimeField(null=True, blank=True)
    last_downloaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    history = HistoricalRecords()

    PORTAL_ROLE_ACTIONS = {
        "view": MANAGER_ROLES | {C},
        "add": MANAGER_ROLES | {C},
        "change": MANAGER_ROLES,
        "delete": frozenset(),
        "download": MANAGER_ROLES | {C},
    }

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"export {self.pk} ({self.status})"


class DeletionRequest(CustomerScopedMixin, TenantOwnedModel):
    """A request to erase a customer's personal data after a grace period (cancellable until
    then). Executing it anonymises personal data and keeps rows for integrity; `report` says
    what each eraser removed."""

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="deletion_requests")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    reason = models.TextField(blank=True, default="")
    immediate = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=DeletionStatus.choices, default=DeletionStatus.PENDING, db_index=True)
    due_at = models.DateTimeField(db_index=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    completed_at = models.DateTimeField(null=True, blank=True)
    report = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, default="")
    history = HistoricalRecords()

    PORTAL_ROLE_ACTIONS = {
        "view": MANAGER_ROLES | {C},
        "add": MANAGER_ROLES | {C},
        "change": MANAGER_ROLES | {C},
        "cancel": MANAGER_ROLES | {C},
        "delete": frozenset(),
    }

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer"], condition=Q(status="pending"), name="tenants_one_pending_deletion"
            ),
        ]

    def __str__(self) -> str:
        return f"deletion of customer {self.customer_id} ({self.status})"
