"""Admin screens for customers, their services, data exports and deletion requests."""

from django.contrib import admin
from django.utils.html import format_html

from apps.core.admin import TenantScopedAdmin
from apps.core.tenancy import acting

from . import deletion, services
from .models import Customer, CustomerService, DataExport, DeletionRequest, LifecycleEvent


class LifecycleEventInline(admin.TabularInline):
    model = LifecycleEvent
    extra = 0
    fields = ("created_at", "from_state", "to_state", "actor", "reason")
    readonly_fields = fields
    can_delete = False
    ordering = ("created_at",)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class CustomerServiceInline(admin.TabularInline):
    model = CustomerService
    extra = 0
    fields = ("plan", "status", "job_run_id", "last_error", "provisioned_at")
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Customer)
class CustomerAdmin(TenantScopedAdmin):
    list_display = ("account_number", "name", "state", "tenant", "contact_email", "created_at")
    list_filter = ("state", "tenant")
    search_fields = ("account_number", "name", "contact_email")
    list_select_related = ("tenant", "organization")
    autocomplete_fields = ("tenant",)
    readonly_fields = ("account_number", "state", "organization", "verified_at", "activated_at", "terminated_at", "erased_at", "created_at")
    fields = ("tenant", "name", "contact_email", "contact_phone", *readonly_fields)
    inlines = [LifecycleEventInline, CustomerServiceInline]
    actions = ["send_code", "start_onboarding", "activate", "suspend", "reactivate", "terminate"]

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []  # a new customer has no timeline yet

    def get_fields(self, request, obj=None):
        fields = list(super().get_fields(request, obj))
        if not acting(request.user).is_platform or obj is not None:
            fields.remove("tenant")  # tenant staff register into their own tenant; it never changes
        return fields

    def save_service(self, request, obj, form, change):
        data = {k: form.cleaned_data.get(k, "") for k in ("name", "contact_email", "contact_phone")}
        if change:
            return services.customer_update(obj, actor=request.user, **data)
        created = services.customer_register(actor=request.user, tenant=form.cleaned_data.get("tenant"), **data)
        obj.pk = created.pk
        return created

    def save_related(self, request, form, formsets, change):
        return None  # inlines are read-only; the service wrote everything

    def _each(self, request, queryset, func, done, **kwargs):
        ok = 0
        for customer in queryset:
            if self.run_service(request, func, customer, actor=request.user, **kwargs) is not None:
                ok += 1
        if ok:
            self.message_user(request, f"{ok} customer(s) {done}.")

    def _reason(self, request, what):
        return f"{what} in the admin by {request.user.get_username()}"

    @admin.action(description="Email a new verification code")
    def send_code(self, request, queryset):
        self._each(request, queryset, services.customer_send_verification_code, "sent a code")

    @admin.action(description="Start onboarding")
    def start_onboarding(self, request, queryset):
        self._each(request, queryset, services.customer_start_onboarding, "onboarding")

    @admin.action(description="Activate")
    def activate(self, request, queryset):
        self._each(request, queryset, services.customer_activate, "activated")

    @admin.action(description="Suspend (and their services)")
    def suspend(self, request, queryset):
        self._each(request, queryset, services.customer_suspend, "suspended", reason=self._reason(request, "Suspended"))

    @admin.action(description="Reactivate (and their services)")
    def reactivate(self, request, queryset):
        self._each(request, queryset, services.customer_reactivate, "reactivated")

    @admin.action(description="Terminate (final)")
    def terminate(self, request, queryset):
        self._each(request, queryset, services.customer_terminate, "terminated", reason=self._reason(request, "Terminated"))


@admin.register(CustomerService)
class CustomerServiceAdmin(TenantScopedAdmin):
    list_display = ("plan", "customer", "status", "tenant", "job_run_id", "status_changed_at", "created_at")
    list_filter = ("status", "tenant")
    search_fields = ("plan", "customer__account_number", "customer__name")
    list_select_related = ("customer", "tenant")
    autocomplete_fields = ("customer",)
    readonly_fields = ("tenant", "status", "job_run_id", "last_error", "status_changed_at", "provisioned_at", "created_at")
    fields = ("customer", "plan", "parameters", *readonly_fields)
    actions = ["reprovision"]

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields + (("customer", "plan", "parameters") if obj else ())

    def save_service(self, request, obj, form, change):
        if change:
            return obj  # plan and parameters are fixed once requested
        created = services.customer_service_provision(
            actor=request.user, customer=form.cleaned_data["customer"], plan=form.cleaned_data["plan"],
            parameters=form.cleaned_data.get("parameters") or {},
        )
        obj.pk = created.pk
        return created

    @admin.action(description="Provision the selected failed services again")
    def reprovision(self, request, queryset):
        for service in queryset:
            self.run_service(request, services.customer_service_reprovision, service, actor=request.user, success=f"{service.plan}: provisioning requested again.")


@admin.register(DataExport)
class DataExportAdmin(TenantScopedAdmin):
    list_display = ("id", "tenant", "customer", "format", "status", "progress", "requested_by", "expires_at", "download_count", "download_link")
    list_filter = ("status", "format", "tenant")
    search_fields = ("customer__account_number", "customer__name", "requested_by__username")
    list_select_related = ("tenant", "customer", "requested_by")
    raw_id_fields = ("customer",)
    readonly_fields = (
        "tenant", "customer", "requested_by", "format", "data_types", "date_from", "date_to", "status", "progress",
        "size_bytes", "row_counts", "error", "started_at", "finished_at", "expires_at", "download_count",
        "last_downloaded_at", "last_downloaded_by", "download_link",
    )
    fields = readonly_fields

    def has_add_permission(self, request):
        return False  # requested through the API (POST /api/v1/exports/)

    @admin.display(description="download")
    def download_link(self, obj):
        if obj.status != "succeeded":
            return "—"
        return format_html('<a href="/api/v1/exports/{}/download">download</a>', obj.pk)


@admin.register(DeletionRequest)
class DeletionRequestAdmin(TenantScopedAdmin):
    list_display = ("customer", "tenant", "status", "due_at", "immediate", "requested_by", "completed_at")
    list_filter = ("status", "immediate", "tenant")
    search_fields = ("customer__account_number", "reason")
    list_select_related = ("customer", "tenant", "requested_by")
    autocomplete_fields = ("customer",)
    readonly_fields = ("tenant", "status", "due_at", "requested_by", "cancelled_at", "cancelled_by", "completed_at", "report", "error", "created_at")
    fields = ("customer", "reason", "immediate", *readonly_fields)
    actions = ["cancel", "retry"]

    def get_readonly_fields(self, request, obj=None):
        ro = self.readonly_fields + (("customer", "reason", "immediate") if obj else ())
        if obj is None and not acting(request.user).is_platform:
            ro += ("immediate",)
        return ro

    def save_service(self, request, obj, form, change):
        if change:
            return obj
        created = deletion.deletion_request_create(
            actor=request.user, customer=form.cleaned_data["customer"], reason=form.cleaned_data.get("reason", ""),
            immediate=bool(form.cleaned_data.get("immediate")),
        )
        obj.pk = created.pk
        return created

    @admin.action(description="Cancel the selected pending requests")
    def cancel(self, request, queryset):
        for req in queryset:
            self.run_service(request, deletion.deletion_request_cancel, req, actor=request.user, success=f"Request {req.pk} cancelled.")

    @admin.action(description="Retry the selected failed requests")
    def retry(self, request, queryset):
        for req in queryset:
            self.run_service(request, deletion.deletion_request_retry, req, actor=request.user, success=f"Request {req.pk} will run again.")
