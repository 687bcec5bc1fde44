"""Admin screens for the platform, tenants, partners, customer organizations and memberships."""

from django.contrib import admin, messages
from django.db.models import Count
from django.urls import reverse
from django.utils.html import format_html

from apps.core.admin import TenantScopedAdmin
from apps.core.choices import OrgKind
from apps.core.tenancy import acting

from . import services
from .choices import InvitationStatus
from .models import CustomerOrganization, Invitation, Membership, Organization, Partner, Tenant
from .selectors import sees_all_served_tenants, served_tenants_in_sight


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    fields = ("user", "role", "is_active", "created_at")
    readonly_fields = ("user", "role", "is_active", "created_at")
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


class OrganizationAdminBase(TenantScopedAdmin):
    kind: str | None = None
    list_display = ("name", "slug", "kind", "status", "timezone", "require_staff_mfa", "member_count", "created_at")
    list_filter = ("status", "require_staff_mfa")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    readonly_fields = ("created_at", "updated_at")
    inlines = [MembershipInline]
    fields = ("name", "slug", "status", "timezone", "require_staff_mfa", "settings", "created_at", "updated_at")

    def get_readonly_fields(self, request, obj=None):
        # whether staff need two-factor sign-in is the platform's call (the service enforces it too)
        shown = (*self.readonly_fields, "served_tenants_in_sight")
        if acting(request.user).is_platform:
            return shown
        return (*shown, "require_staff_mfa")

    def _kind_form(self, form, obj):
        kind = self.kind
        if obj is None and kind:

            class KindForm(form):
                def __init__(self, *args, **kw):
                    super().__init__(*args, **kw)
                    self.instance.kind = kind  # validated as the kind this screen creates

            return KindForm
        return form

    def get_queryset(self, request):
        qs = super().get_queryset(request).annotate(member_count=Count("memberships", distinct=True))
        return qs.filter(kind=self.kind) if self.kind else qs

    @admin.display(ordering="member_count", description="members")
    def member_count(self, obj):
        return obj.member_count

    def save_service(self, request, obj, form, change):
        data = {f: form.cleaned_data[f] for f in form.cleaned_data if f not in ("slug",) or not change}
        served = data.pop("served_tenants", None)
        if change:
            data.pop("slug", None)
            if served is not None:
                data["served_tenants"] = served
            return services.organization_update(obj, actor=request.user, **data)
        created = services.organization_create(actor=request.user, kind=self.kind, served_tenants=served or (), **data)
        obj.pk = created.pk
        return created

    def save_related(self, request, form, formsets, change):
        # served tenants are written by the service; only inline formsets remain
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def delete_model(self, request, obj):
        services.organization_delete(obj, actor=request.user)

    def has_add_permission(self, request):
        # tenants, partners (and the platform) are created by platform staff only
        return acting(request.user).is_platform and super().has_add_permission(request)

    # A partner's tenants: a served tenant's staff see only their own tenant (issue 17.3).
    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if obj is not None and "served_tenants" in fields and not sees_all_served_tenants(request.user, obj):
            fields = tuple("served_tenants_in_sight" if f == "served_tenants" else f for f in fields)
        return fields

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is not None:
            obj.served_in_sight = served_tenants_in_sight(request.user, obj)
        return obj

    @admin.display(description="served tenants")
    def served_tenants_in_sight(self, obj):
        return ", ".join(str(t) for t in getattr(obj, "served_in_sight", ())) or "—"

    def get_form(self, request, obj=None, change=False, **kwargs):
        return self._kind_form(super().get_form(request, obj, change=change, **kwargs), obj)

    def has_view_history_or_change_history_permission(self, request, obj=None):
        # a partner's history names every tenant it ever served
        if obj is not None and obj.kind == OrgKind.PARTNER and not sees_all_served_tenants(request.user, obj):
            return False
        return super().has_view_history_or_change_history_permission(request, obj)


@admin.register(Tenant)
class TenantAdmin(OrganizationAdminBase):
    kind = OrgKind.TENANT
    fields = (*OrganizationAdminBase.fields, "timeline")
    readonly_fields = (*OrganizationAdminBase.readonly_fields, "timeline")

    @admin.display(description="timeline")
    def timeline(self, obj):
        # the page lives in the dashboard app (a higher layer): linked by URL name only
        if not obj or not obj.pk:
            return "—"
        return format_html('<a href="{}">Everything that happened to {}</a>', reverse("admin-tenant-timeline", args=[obj.slug]), obj.name)


@admin.register(Partner)
class PartnerAdmin(OrganizationAdminBase):
    kind = OrgKind.PARTNER
    fields = OrganizationAdminBase.fields[:4] + ("served_tenants",) + OrganizationAdminBase.fields[4:]
    filter_horizontal = ("served_tenants",)


@admin.register(CustomerOrganization)
class CustomerOrganizationAdmin(OrganizationAdminBase):
    kind = OrgKind.CUSTOMER
    list_display = ("name", "slug", "parent", "status", "member_count", "created_at")
    list_select_related = ("parent",)
    fields = ("name", "slug", "parent", "status", "timezone", "require_staff_mfa", "settings", "created_at", "updated_at")
    autocomplete_fields = ("parent",)

    def has_add_permission(self, request):
        return TenantScopedAdmin.has_add_permission(self, request)


@admin.register(Organization)
class OrganizationAdmin(OrganizationAdminBase):
    """All organizations in one list (platform staff find anything here)."""

    list_filter = ("kind", "status")
    fields = ("kind", "name", "slug", "parent", "status", "timezone", "require_staff_mfa", "settings", "created_at", "updated_at")
    autocomplete_fields = ("parent",)

    def save_service(self, request, obj, form, change):
        if change:
            return super().save_service(request, obj, form, change)
        data = dict(form.cleaned_data)
        created = services.organization_create(actor=request.user, **data)
        obj.pk = created.pk
        return created


@admin.register(Membership)
class MembershipAdmin(TenantScopedAdmin):
    list_display = ("user", "organization", "role", "is_active", "created_at")
    list_filter = ("role", "is_active", "organization__kind")
    search_fields = ("user__username", "user__email", "organization__name", "organization__slug")
    list_select_related = ("user", "organization")
    autocomplete_fields = ("organization",)
    raw_id_fields = ("user",)
    readonly_fields = ("created_at", "updated_at")

    def save_service(self, request, obj, form, change):
        if change:
            return services.membership_update(
                obj, actor=request.user, role=form.cleaned_data["role"], is_active=form.cleaned_data["is_active"]
            )
        created = services.membership_create(
            actor=request.user,
            user=form.cleaned_data["user"],
            organization=form.cleaned_data["organization"],
            role=form.cleaned_data["role"],
            is_active=form.cleaned_data["is_active"],
        )
        obj.pk = created.pk
        return created

    def delete_model(self, request, obj):
        services.membership_delete(obj, actor=request.user)


@admin.register(Invitation)
class InvitationAdmin(TenantScopedAdmin):
    """Invitations: created here or through the API (the invitation is e-mailed), revoked by an
    action; the invited person accepts through the API with the e-mailed code."""

    list_display = ("email", "organization", "role", "shown_status", "expires_at", "invited_by", "created_at")
    list_filter = ("status", "role", "organization__kind")
    search_fields = ("email", "organization__name", "organization__slug")
    list_select_related = ("organization", "invited_by")
    autocomplete_fields = ("organization",)
    actions = ["revoke_invitations"]
    add_fields = ("organization", "email", "role")
    readonly_fields = ("organization", "email", "role", "shown_status", "expires_at", "invited_by", "accepted_by", "accepted_at", "created_at")

    def get_fields(self, request, obj=None):
        return self.add_fields if obj is None else self.readonly_fields

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    @admin.display(description="status", ordering="status")
    def shown_status(self, obj):
        return InvitationStatus(obj.current_status).label

    def save_service(self, request, obj, form, change):
        if change:
            return obj  # nothing on an invitation is edited; it is revoked by the action
        created = services.invitation_create(actor=request.user, **{f: form.cleaned_data[f] for f in self.add_fields})
        obj.pk = created.pk
        return created

    @admin.action(description="Revoke the selected invitations", permissions=["change"])
    def revoke_invitations(self, request, queryset):
        done = [self.run_service(request, services.invitation_revoke, inv, actor=request.user) for inv in queryset]
        if any(done):
            self.message_user(request, f"{sum(1 for d in done if d)} invitation(s) revoked.", level=messages.SUCCESS)

    def has_delete_permission(self, request, obj=None):
        return False  # revoked, not deleted: the record of who was invited stays


from .customers import admin as _customers_admin  # noqa: E402, F401  (registers the customers screens)
from .sso import admin as _sso_admin  # noqa: E402, F401  (registers the SSO screens)
from .tokens import admin as _tokens_admin  # noqa: E402, F401  (registers the API token and service account screens)
