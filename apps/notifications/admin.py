from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html
from import_export import resources

from apps.core.admin import ScopedExportMixin, SecretFormField, TenantScopedAdmin

from . import services
from .models import ChannelConfig, Delivery, Notification, NotificationTemplate, Preference


@admin.register(Notification)
class NotificationAdmin(TenantScopedAdmin):
    list_display = ("title", "recipient", "notification_type", "priority", "tenant", "read_at", "created_at")
    list_filter = ("priority", "notification_type", "tenant")
    search_fields = ("title", "message", "recipient__username")
    list_select_related = ("recipient", "tenant")
    raw_id_fields = ("recipient",)
    readonly_fields = ("event_id", "created_at")
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False  # notifications come from services (notify_team, events), not the add form


class DeliveryResource(resources.ModelResource):
    """Columns of the delivery export; never the channel's config (its secrets stay encrypted)."""

    class Meta:
        model = Delivery
        fields = ("id", "kind", "status", "reason", "tenant__name", "recipient__username", "channel__name", "notification__title",
                  "attempts", "next_attempt_at", "sent_at", "created_at")
        export_order = fields


@admin.register(Delivery)
class DeliveryAdmin(ScopedExportMixin, TenantScopedAdmin):
    resource_classes = [DeliveryResource]
    list_display = ("id", "kind", "status", "reason", "recipient", "channel", "attempts", "next_attempt_at", "sent_at", "tenant")
    list_filter = ("status", "kind", "reason", "tenant")
    search_fields = ("recipient__username", "notification__title", "last_error")
    list_select_related = ("recipient", "channel", "tenant")
    raw_id_fields = ("notification", "recipient", "channel", "digest")
    readonly_fields = [f.name for f in Delivery._meta.fields]
    actions = ["retry"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Retry the selected failed or suppressed deliveries")
    def retry(self, request, queryset):
        count = self.run_service(request, services.delivery_retry, actor=request.user, delivery_ids=queryset.values_list("pk", flat=True))
        if count is not None:
            self.message_user(request, f"{count} deliver{'y' if count == 1 else 'ies'} queued again.")


@admin.register(Preference)
class PreferenceAdmin(TenantScopedAdmin):
    list_display = ("user", "notification_type", "channels", "digest", "quiet_start", "quiet_end", "timezone", "tenant")
    list_filter = ("digest", "tenant")
    search_fields = ("user__username", "notification_type")
    list_select_related = ("user", "tenant")
    autocomplete_fields = ("user",)  # people within reach (apps/core/users.py)

    def save_service(self, request, obj, form, change):
        return services.preference_save(obj, actor=request.user)


class ChannelConfigForm(forms.ModelForm):
    url = SecretFormField(label="URL", help_text="Apprise URL (slack://…, workflow://… for Teams, tgram://…) or webhook URL. Write-only.")
    signing_secret = SecretFormField(help_text="Webhooks: HMAC-SHA256 key. Write-only.")

    class Meta:
        model = ChannelConfig
        fields = ["tenant", "name", "kind", "user", "url", "signing_secret", "enabled", "min_priority", "notification_types"]

    def clean(self):
        data = super().clean()
        url = data.get("url")
        if not SecretFormField.is_unchanged(url):
            problem = services.channel_url_problem(data.get("kind", ""), url.strip())
            if problem:
                self.add_error("url", problem)
        elif not (self.instance and self.instance.url):
            self.add_error("url", "A channel needs a URL.")
        return data


@admin.register(ChannelConfig)
class ChannelConfigAdmin(TenantScopedAdmin):
    form = ChannelConfigForm
    list_display = ("name", "kind", "user", "enabled", "min_priority", "last_test_ok", "last_tested_at", "circuit_open_until", "tenant")
    list_filter = ("kind", "enabled", "tenant")
    search_fields = ("name",)
    list_select_related = ("user", "tenant")
    autocomplete_fields = ("user",)
    readonly_fields = ("last_tested_at", "last_test_ok", "last_error", "consecutive_failures", "circuit_open_until")
    actions = ["send_test"]

    def save_service(self, request, obj, form, change):
        secrets = {}
        for name in ("url", "signing_secret"):
            value = form.cleaned_data.get(name)
            secrets[name] = None if SecretFormField.is_unchanged(value) else value
            if change:
                setattr(obj, name, form.initial.get(name, getattr(obj, name)))  # the form must not write plaintext
        return services.channel_save(obj, actor=request.user, **secrets)

    @admin.action(description="Send a test message to the selected channels")
    def send_test(self, request, queryset):
        for channel in queryset:
            result = self.run_service(request, services.channel_test, actor=request.user, channel=channel)
            if result is not None:
                ok, detail = result
                self.message_user(request, f"{channel.name}: {detail}", level=messages.SUCCESS if ok else messages.ERROR)


@admin.register(NotificationTemplate)
class NotificationTemplateAdmin(TenantScopedAdmin):
    list_display = ("notification_type", "channel", "subject", "tenant", "updated_at")
    list_filter = ("channel", "tenant")
    search_fields = ("notification_type", "subject")
    list_select_related = ("tenant",)
    readonly_fields = ("preview",)
    actions = ["preview_action"]

    @admin.display(description="Preview (sample notification)")
    def preview(self, obj):
        if obj is None or not obj.pk:
            return "Save the template to see a preview."
        try:
            rendered = services.template_preview(template=obj)
        except Exception as exc:  # a broken template shows its error instead of the page failing
            return f"Cannot render: {exc}"
        return format_html(
            "<p><b>Subject:</b> {}</p><pre style='white-space:pre-wrap'>{}</pre>{}",
            rendered.subject, rendered.text,
            format_html("<iframe sandbox srcdoc=\"{}\" style='width:100%;height:260px;border:1px solid #ccc'></iframe>", rendered.html) if rendered.html else "",
        )

    @admin.action(description="Preview the selected templates")
    def preview_action(self, request, queryset):
        for template in queryset[:5]:
            rendered = services.template_preview(template=template)
            self.message_user(request, f"{template}: {rendered.subject} — {rendered.text[:300]}")
