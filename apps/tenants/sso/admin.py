"""Admin screens for SSO: claim → role mappings and each organization's sign-in policy."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db import models

from apps.core.admin import SecretFormField, TenantScopedAdmin

from . import services
from .models import SsoIdentity, SsoPolicy, SsoProvider, SsoRoleMapping


class SsoSettingAdmin(TenantScopedAdmin):
    """Writes only by platform owners and admins (`services.may_manage_sso`); others read their own."""

    def has_add_permission(self, request):
        return super().has_add_permission(request) and services.may_manage_sso(request.user)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and services.may_manage_sso(request.user)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and services.may_manage_sso(request.user)

    def save_service(self, request, obj, form, change):
        return services.sso_setting_save(obj, actor=request.user)

    def delete_model(self, request, obj):
        services.sso_setting_delete(obj, actor=request.user)


@admin.register(SsoRoleMapping)
class SsoRoleMappingAdmin(SsoSettingAdmin):
    list_display = ("organization", "claim", "value", "role", "updated_at")
    list_filter = ("role", "claim", "organization__kind")
    search_fields = ("value", "claim", "organization__name", "organization__slug")
    list_select_related = ("organization",)
    autocomplete_fields = ("organization",)


@admin.register(SsoPolicy)
class SsoPolicyAdmin(SsoSettingAdmin):
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


def _https_by_default(field, **kwargs):
    if isinstance(field, models.URLField):
        kwargs["assume_scheme"] = "https"
    return field.formfield(**kwargs)


class SsoProviderForm(forms.ModelForm):
    client_secret_input = SecretFormField(label="Client secret")

    class Meta:
        model = SsoProvider
        fields = [
            "organization",
            "name",
            "slug",
            "issuer",
            "authorization_endpoint",
            "token_endpoint",
            "userinfo_endpoint",
            "jwks_endpoint",
            "client_id",
            "scopes",
            "is_active",
        ]
        formfield_callback = _https_by_default

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["client_secret_input"].initial = self.instance.client_secret


@admin.register(SsoProvider)
class SsoProviderAdmin(SsoSettingAdmin):
    """An organization's own OpenID Connect provider; the client secret is write-only and stored encrypted."""

    form = SsoProviderForm
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = ("name", "organization", "slug", "issuer", "is_active", "updated_at")
    list_filter = ("is_active", "organization__kind")
    search_fields = ("name", "slug", "issuer", "organization__name")
    list_select_related = ("organization",)
    autocomplete_fields = ("organization",)

    def save_service(self, request, obj, form, change):
        secret = form.cleaned_data.get("client_secret_input")
        return services.sso_provider_save(
            obj, actor=request.user, secret=None if SecretFormField.is_unchanged(secret) else secret
        )
