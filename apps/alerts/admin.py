"""Admin for every alerts model; saves and actions go through services."""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join
from import_export import resources

from apps.core.admin import ScopedExportMixin, TenantScopedAdmin
from apps.core.jsonform import structured
from apps.core.tenancy import acting

from . import incident, services
from .choices import RuleType
from .models import Alert, AlertRule, AlertSubscription, EscalationPolicy, IngestToken, InhibitRule, RunbookRequest, Silence
from .schemas import (
    _CHANNELS,
    ACTIONS_SCHEMA,
    ALERT_CONFIG_SCHEMA,
    ALERT_TYPES_SCHEMA,
    CONDITION_SCHEMAS,
    MATCHERS_SCHEMA,
    STEPS_SCHEMA,
)


class AlertResource(resources.ModelResource):
    """Columns of the alert export (the filtered changelist as CSV/XLSX)."""

    class Meta:
        model = Alert
        fields = ("id", "title", "severity", "status", "alert_type", "source", "tenant__name", "resource_type", "resource_id",
                  "occurrences", "first_seen", "last_seen", "acknowledged_at", "resolved_at", "silenced", "ticket__number",
                  "assigned_to__username", "fingerprint")
        export_order = fields


@admin.register(Alert)
class AlertAdmin(ScopedExportMixin, TenantScopedAdmin):
    resource_classes = [AlertResource]
    list_display = ("title", "severity", "status", "alert_type", "occurrences", "last_seen", "assigned_to", "silenced", "ticket", "tenant")
    list_filter = ("status", "severity", "alert_type", "source", "silenced", "tenant")
    search_fields = ("title", "fingerprint", "resource_id")
    list_select_related = ("tenant", "assigned_to", "ticket")
    raw_id_fields = ("assigned_to", "acknowledged_by", "resolved_by", "rule", "escalation_policy", "ticket")
    readonly_fields = (
        "fingerprint", "occurrences", "first_seen", "last_seen", "starts_at", "status", "source", "labels", "annotations",
        "acknowledged_by", "acknowledged_at", "resolved_by", "resolved_at", "silenced", "escalation_policy",
        "escalation_step", "next_escalation_at", "content_type", "object_id", "rule", "generator_url", "ticket",
    )
    date_hierarchy = "last_seen"
    actions = ["acknowledge", "resolve", "silence_like_this", "open_ticket"]

    def save_service(self, request, obj, form, change):
        if change:
            fields = {f: form.cleaned_data[f] for f in form.changed_data if f in {"assigned_to", "severity", "title", "message", "expires_at", "metadata"}}
            return services.alert_update(obj, actor=request.user, **fields)
        alert, _ = services.alert_raise(
            tenant=obj.tenant_id or acting(request.user).tenant_id,
            alert_type=obj.alert_type, title=obj.title, severity=obj.severity, message=obj.message,
            resource_type=obj.resource_type, resource_id=obj.resource_id, assigned_to=obj.assigned_to,
            metadata=obj.metadata, expires_at=obj.expires_at, source="manual", actor=request.user,
        )
        obj.pk = alert.pk
        return alert

    def _each(self, request, queryset, func, verb):
        done = 0
        for alert in queryset:
            if self.run_service(request, func, alert, actor=request.user) is not None:
                done += 1
        self.message_user(request, f"{done} alert(s) {verb}.", level=messages.SUCCESS)

    @admin.action(description="Acknowledge the selected alerts")
    def acknowledge(self, request, queryset):
        self._each(request, queryset, services.alert_acknowledge, "acknowledged")

    @admin.action(description="Resolve the selected alerts")
    def resolve(self, request, queryset):
        self._each(request, queryset, services.alert_resolve, "resolved")

    @admin.action(description="Open (or link to) the incident ticket")
    def open_ticket(self, request, queryset):
        for alert in queryset:
            found = self.run_service(request, incident.alert_open_ticket, alert, actor=request.user)
            if found is not None:
                ticket, opened = found
                self.message_user(request, f"{'Opened' if opened else 'Linked to'} {ticket.number} for alert {alert.pk}.", level=messages.SUCCESS)

    @admin.action(description="Silence alerts like these for 2 hours")
    def silence_like_this(self, request, queryset):
        made = self.run_service(request, services.silence_alerts, actor=request.user, alerts=list(queryset))
        if made is not None:
            self.message_user(request, f"{len(made)} silence(s) created.", level=messages.SUCCESS)


class _ConfigAdmin(TenantScopedAdmin):
    create = update = delete = None
    json_editors: dict = {}  # field → schema (or callable(instance) → schema): structured editors

    def get_form(self, request, obj=None, **kwargs):
        base = super().get_form(request, obj, **kwargs)
        editors = self.json_editors
        if not editors:
            return base

        class Structured(base):
            def __init__(inner, *args, **kw):
                super().__init__(*args, **kw)
                for field, schema in editors.items():
                    structured(inner, field, schema)

        return Structured

    def save_service(self, request, obj, form, change):
        fields = {f.name: getattr(obj, f.name) for f in obj._meta.concrete_fields if f.name in form.cleaned_data}
        fields = {k: v for k, v in fields.items() if k not in ("id",)}
        if change:
            for key in list(fields):
                if key not in form.changed_data:
                    fields.pop(key)
            return type(self).update(obj, actor=request.user, **fields)
        saved = type(self).create(actor=request.user, **{k: v for k, v in fields.items() if k != "tenant" or v is not None})
        obj.pk = saved.pk
        return saved

    def delete_model(self, request, obj):
        type(self).delete(obj, actor=request.user)


def _rule_type(form) -> str:
    """The rule type the conditions are for: as submitted, as stored, or the add page's ?rule_type=."""
    return (form.data.get("rule_type") if form.is_bound else None) or form.instance.rule_type or form.initial.get("rule_type") or ""


@admin.register(AlertRule)
class AlertRuleAdmin(_ConfigAdmin):
    list_display = ("name", "rule_type", "enabled", "last_evaluated_at", "tenant")
    list_filter = ("rule_type", "enabled", "tenant")
    search_fields = ("name",)
    list_select_related = ("tenant",)
    raw_id_fields = ("created_by",)
    readonly_fields = ("created_by", "last_evaluated_at")
    json_editors = {"conditions": lambda form: CONDITION_SCHEMAS.get(_rule_type(form)),
                    "alert_config": ALERT_CONFIG_SCHEMA, "actions": ACTIONS_SCHEMA}
    create = staticmethod(services.rule_create)

    def get_form(self, request, obj=None, **kwargs):
        base = super().get_form(request, obj, **kwargs)

        class RuleForm(base):
            def __init__(inner, *args, **kw):
                super().__init__(*args, **kw)
                if "conditions" in inner.fields and not CONDITION_SCHEMAS.get(_rule_type(inner)):
                    links = format_html_join(" · ", '<a href="?rule_type={}">{}</a>', RuleType.choices)
                    inner.fields["conditions"].help_text = format_html("JSON. A form for the conditions of: {}", links)

        return RuleForm
    update = staticmethod(services.rule_update)
    delete = staticmethod(services.rule_delete)


@admin.register(AlertSubscription)
class AlertSubscriptionAdmin(_ConfigAdmin):
    list_display = ("user", "alert_type", "enabled", "min_severity", "tenant")
    list_filter = ("alert_type", "enabled", "tenant")
    search_fields = ("user__username",)
    list_select_related = ("tenant", "user")
    raw_id_fields = ("user",)
    json_editors = {"channels": _CHANNELS}
    create = staticmethod(services.subscription_create)
    update = staticmethod(services.subscription_update)
    delete = staticmethod(services.subscription_delete)


@admin.register(Silence)
class SilenceAdmin(_ConfigAdmin):
    list_display = ("__str__", "starts_at", "ends_at", "created_by", "tenant")
    list_filter = ("tenant",)
    search_fields = ("comment",)
    list_select_related = ("tenant", "created_by")
    raw_id_fields = ("created_by",)
    readonly_fields = ("created_by", "reminded_at")
    actions = ["expire_now"]
    json_editors = {"matchers": MATCHERS_SCHEMA}
    create = staticmethod(services.silence_create)
    update = staticmethod(services.silence_update)
    delete = staticmethod(services.silence_delete)

    @admin.action(description="Expire the selected silences now")
    def expire_now(self, request, queryset):
        for silence in queryset:
            self.run_service(request, services.silence_expire, silence, actor=request.user)


@admin.register(InhibitRule)
class InhibitRuleAdmin(_ConfigAdmin):
    list_display = ("name", "enabled", "tenant")
    list_filter = ("enabled", "tenant")
    search_fields = ("name",)
    list_select_related = ("tenant",)
    json_editors = {"source_matchers": MATCHERS_SCHEMA, "target_matchers": MATCHERS_SCHEMA,
                    "equal": {"type": "array", "items": {"type": "string", "minLength": 1}, "title": "labels equal"}}
    create = staticmethod(services.inhibit_rule_create)
    update = staticmethod(services.inhibit_rule_update)
    delete = staticmethod(services.inhibit_rule_delete)


@admin.register(EscalationPolicy)
class EscalationPolicyAdmin(_ConfigAdmin):
    list_display = ("name", "enabled", "min_severity", "repeat", "tenant")
    list_filter = ("enabled", "tenant")
    search_fields = ("name",)
    list_select_related = ("tenant",)
    json_editors = {"steps": STEPS_SCHEMA, "alert_types": ALERT_TYPES_SCHEMA}
    create = staticmethod(services.escalation_policy_create)
    update = staticmethod(services.escalation_policy_update)
    delete = staticmethod(services.escalation_policy_delete)


@admin.register(IngestToken)
class IngestTokenAdmin(TenantScopedAdmin):
    list_display = ("name", "prefix", "last_used_at", "revoked_at", "tenant")
    list_filter = ("tenant",)
    search_fields = ("name", "prefix")
    list_select_related = ("tenant",)
    raw_id_fields = ("created_by",)
    readonly_fields = ("prefix", "created_by", "last_used_at", "revoked_at")
    actions = ["revoke"]

    def save_service(self, request, obj, form, change):
        if change:
            return services._update_config(obj, actor=request.user, fields={"name": obj.name})
        token, raw = services.ingest_token_create(actor=request.user, tenant=obj.tenant if obj.tenant_id else None, name=obj.name)
        obj.pk = token.pk
        self.message_user(request, f"Ingestion token (shown once, copy it now): {raw}", level=messages.WARNING)
        return token

    def delete_model(self, request, obj):
        services.ingest_token_delete(obj, actor=request.user)

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        for token in queryset:
            self.run_service(request, services.ingest_token_revoke, token, actor=request.user)


@admin.register(RunbookRequest)
class RunbookRequestAdmin(TenantScopedAdmin):
    """Runbook runs for alerts; approve (a second person) or reject pending ones."""

    list_display = ("id", "job", "alert", "ticket", "status", "requires_approval", "requested_by", "decided_by", "run", "created_at", "tenant")
    list_filter = ("status", "requires_approval", "tenant")
    search_fields = ("job__name", "alert__title")
    list_select_related = ("tenant", "job", "alert", "ticket", "requested_by", "decided_by", "run")
    raw_id_fields = ("alert", "ticket", "rule", "job", "requested_by", "decided_by", "run")
    readonly_fields = ("alert", "ticket", "rule", "job", "target_ids", "params", "status", "requires_approval", "requested_by",
                       "decided_by", "decided_at", "run", "summary", "finished_at")
    actions = ["approve", "reject"]

    def has_add_permission(self, request):
        return False  # requested from an alert (API action or rule)

    @admin.action(description="Approve the selected runbook requests")
    def approve(self, request, queryset):
        for req in queryset:
            self.run_service(request, incident.runbook_approve, req, actor=request.user, success=f"Runbook request {req.pk} approved.")

    @admin.action(description="Reject the selected runbook requests")
    def reject(self, request, queryset):
        for req in queryset:
            self.run_service(request, incident.runbook_reject, req, actor=request.user, success=f"Runbook request {req.pk} rejected.")
