"""Admin for ticket mail: mailboxes (IMAP password write-only, a "poll now" action) and the
read-only log of every mail in and out. Writes call the mail services."""

from django import forms
from django.contrib import admin, messages

from apps.core.admin import SecretFormField, TenantScopedAdmin

from . import services
from .models import Mailbox, MailMessage


class MailboxForm(forms.ModelForm):
    imap_password = SecretFormField(label="IMAP password", help_text="Write-only; stored encrypted.")

    class Meta:
        model = Mailbox
        fields = [
            "tenant",
            "name",
            "address",
            "kind",
            "unknown_senders",
            "is_active",
            "imap_host",
            "imap_port",
            "imap_security",
            "imap_username",
            "imap_folder",
        ]


@admin.register(Mailbox)
class MailboxAdmin(TenantScopedAdmin):
    form = MailboxForm
    list_display = ("name", "address", "kind", "unknown_senders", "is_active", "last_polled_at", "short_error", "tenant")
    list_filter = ("kind", "is_active", "unknown_senders", "tenant")
    search_fields = ("name", "address")
    list_select_related = ("tenant",)
    readonly_fields = ("last_polled_at", "last_error")
    actions = ["poll_now"]
    refusal_fields = {"imap_password": "imap_password"}

    @admin.display(description="last error")
    def short_error(self, obj):
        return (obj.last_error or "")[:80]

    def save_service(self, request, obj, form, change):
        password = form.cleaned_data.get("imap_password")
        if change:  # the form wrote what was typed onto the row: put the sealed value back
            obj.imap_password = form.initial.get("imap_password", "")
        data = {k: v for k, v in form.cleaned_data.items() if k != "imap_password"}
        return services.mailbox_save(
            obj if change else None,
            actor=request.user,
            imap_password=None if SecretFormField.is_unchanged(password) else password,
            **data,
        )

    @admin.action(description="Poll the selected IMAP mailboxes now")
    def poll_now(self, request, queryset):
        for box in queryset:
            try:
                counts = services.mailbox_poll(mailbox_id=box.pk, actor=request.user)
            except Exception as exc:  # stored on the mailbox too
                self.message_user(request, f"{box.address}: {type(exc).__name__}: {exc}", level=messages.ERROR)
                continue
            self.message_user(
                request, f"{box.address}: " + ", ".join(f"{k} {v}" for k, v in counts.items() if v) or "nothing new"
            )


@admin.register(MailMessage)
class MailMessageAdmin(TenantScopedAdmin):
    list_display = ("created_at", "direction", "outcome", "sender", "subject", "ticket", "mailbox", "tenant")
    list_filter = ("direction", "outcome", "tenant")
    search_fields = ("message_id", "sender", "subject")
    list_select_related = ("ticket", "mailbox", "tenant")
    raw_id_fields = ("ticket", "ticket_message", "mailbox")
    readonly_fields = [f.name for f in MailMessage._meta.fields]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False  # the log is written by the mail services only

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
