"""Admin screens for service accounts and API tokens (imported from apps/tenants/admin.py)."""

from django.contrib import admin, messages
from django.template.response import TemplateResponse

from apps.core.admin import TenantScopedAdmin

from . import services
from .models import ApiToken, ServiceAccount

_SECRET_ATTR = "_portal_new_token_secret"


@admin.register(ServiceAccount)
class ServiceAccountAdmin(TenantScopedAdmin):
    """Service accounts: created and changed through the services (role no higher than yours);
    deactivating one stops its tokens at once."""

    list_display = ("name", "organization", "role", "is_active", "user", "created_by", "created_at")
    list_filter = ("role", "is_active", "organization__kind")
    search_fields = ("name", "description", "organization__name", "organization__slug")
    list_select_related = ("organization", "user", "created_by")
    autocomplete_fields = ("organization",)
    add_fields = ("organization", "name", "description", "role")
    change_fields = ("organization", "name", "description", "role", "is_active", "user", "created_by", "created_at")

    def get_fields(self, request, obj=None):
        return self.add_fields if obj is None else self.change_fields

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else ("organization", "user", "created_by", "created_at")

    def save_service(self, request, obj, form, change):
        data = {f: form.cleaned_data[f] for f in ("name", "description", "role") if f in form.cleaned_data}
        if change:
            return services.service_account_update(obj, actor=request.user, is_active=form.cleaned_data.get("is_active"), **data)
        created = services.service_account_create(actor=request.user, organization=form.cleaned_data["organization"], **data)
        obj.pk, obj.user_id = created.pk, created.user_id
        return created

    def has_delete_permission(self, request, obj=None):
        return False  # deactivated, not deleted: its tokens' audit trail stays


@admin.register(ApiToken)
class ApiTokenAdmin(TenantScopedAdmin):
    """API tokens: created here (the secret is shown once, on the next page) or through the API;
    revoked by an action. Only the prefix is ever shown again."""

    list_display = (
        "name",
        "prefix",
        "organization",
        "user",
        "role",
        "shown_status",
        "expires_at",
        "last_used_at",
        "last_used_ip",
    )
    list_filter = ("role", "revoked_at", "organization__kind")
    search_fields = ("name", "prefix", "user__username", "organization__name", "organization__slug")
    list_select_related = ("organization", "user")
    autocomplete_fields = ("organization",)
    raw_id_fields = ("service_account",)
    actions = ["revoke_tokens"]
    add_fields = ("organization", "name", "role", "expires_at", "service_account")
    readonly_fields = (
        "name",
        "prefix",
        "organization",
        "user",
        "service_account",
        "role",
        "shown_status",
        "expires_at",
        "created_by",
        "created_at",
        "revoked_at",
        "revoked_by",
        "last_used_at",
        "last_used_ip",
    )

    def get_fields(self, request, obj=None):
        return self.add_fields if obj is None else self.readonly_fields

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    @admin.display(description="status")
    def shown_status(self, obj):
        return obj.status

    def save_service(self, request, obj, form, change):
        if change:
            return obj  # nothing on a token is edited; it is revoked by the action
        data = {f: form.cleaned_data.get(f) for f in self.add_fields}
        token, secret = services.api_token_create(actor=request.user, **data)
        obj.pk = token.pk
        setattr(request, _SECRET_ATTR, (token, secret))
        return token

    def response_add(self, request, obj, post_url_continue=None):
        created = getattr(request, _SECRET_ATTR, None)
        if created is None:
            return super().response_add(request, obj, post_url_continue)
        token, secret = created
        context = {
            **self.admin_site.each_context(request),
            "title": "API token created",
            "token": token,
            "secret": secret,
            "opts": self.model._meta,
        }
        response = TemplateResponse(request, "admin/tenants/apitoken/created.html", context)
        response["Cache-Control"] = "no-store"  # the secret must not stay in any cache
        return response

    @admin.action(description="Revoke the selected tokens", permissions=["change"])
    def revoke_tokens(self, request, queryset):
        done = [self.run_service(request, services.api_token_revoke, token, actor=request.user) for token in queryset]
        if any(done):
            self.message_user(request, f"{sum(1 for d in done if d)} token(s) revoked.", level=messages.SUCCESS)

    def has_delete_permission(self, request, obj=None):
        return False  # revoked, not deleted: the record of its use stays
