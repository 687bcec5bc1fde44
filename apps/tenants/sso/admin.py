"""Admin screens for SSO: claim → role mappings and each organization's sign-in policy."""

from __future__ import annotations

from django.contrib import admin

from apps.core.admin import TenantScopedAdmin

from .models import SsoIdentity, SsoPolicy, SsoRoleMapping


@admin.register(SsoRoleMapping)
class SsoRoleMappingAdmin(TenantScopedAdmin):
    list_display = ("organization", "claim", "value", "role", "updated_at")
    list_filter = ("role", "claim", "organization__kind")
    search_fields = ("value", "claim", "organization__name", "organization__slug")
    list_select_related = ("organization",)
    autocomplete_fields = ("organization",)


@admin.register(SsoPolicy)
class SsoPolicyAdmin(TenantScopedAdmin):
    list_display = ("organization", "password_login", "mfa_amr_values", "mfa_acr_values", "updated_at")
    list_filter = ("password_login", "organization__kind")
    search_fields = ("organization__name", "organization__slug")
    list_select_related = ("organization",)
    autocomplete_fields = ("organization",)


@admin.register(SsoIdentity)
class SsoIdentityAdmin(TenantScopedAdmin):
    """Links of provider subjects to portal users; platform staff only (read and unlink)."""

    list_display = ("user", "issuer", "subject", "last_login_at")
    search_fields = ("user__username", "user__email", "subject")
    list_select_related = ("user",)
    raw_id_fields = ("user",)
    readonly_fields = ("user", "issuer", "subject", "last_login_at", "created_at", "updated_at")

    def has_add_permission(self, request):
        return False
