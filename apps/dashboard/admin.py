"""Admin of the dashboard app: KPI targets (editable by owners/admins), checkpoints and account
health (read-only, computed by beat tasks; actions recompute now), tenant summaries (read-only)."""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html, format_html_join

from apps.core.admin import TenantScopedAdmin

from . import services
from .models import AccountHealth, KpiCheckpoint, KpiTarget, TenantSummary


class _ReadOnly(TenantScopedAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(KpiTarget)
class KpiTargetAdmin(TenantScopedAdmin):
    list_display = ("tenant", "kpi", "target_percent", "period", "min_samples", "enabled")
    list_filter = ("kpi", "period", "enabled", "tenant")
    search_fields = ("tenant__name", "tenant__slug")
    list_select_related = ("tenant",)
    raw_id_fields = ("tenant",)
    list_editable = ("target_percent", "enabled")

    def save_service(self, request, obj, form, change):
        return services.kpi_target_save(obj, actor=request.user)


@admin.register(KpiCheckpoint)
class KpiCheckpointAdmin(_ReadOnly):
    list_display = ("period_start", "tenant", "kpi", "period", "value_percent", "target_percent", "samples", "outcome", "alert_link", "ticket_link")
    list_filter = ("outcome", "kpi", "period", "tenant")
    search_fields = ("tenant__name", "tenant__slug")
    list_select_related = ("tenant", "alert", "ticket")
    raw_id_fields = ("tenant", "alert", "ticket")
    date_hierarchy = "period_start"

    @admin.display(description="alert")
    def alert_link(self, obj):
        return format_html('<a href="/admin/alerts/alert/{}/change/">#{}</a>', obj.alert_id, obj.alert_id) if obj.alert_id else "–"

    @admin.display(description="ticket")
    def ticket_link(self, obj):
        return format_html('<a href="/admin/tickets/ticket/{}/change/">{}</a>', obj.ticket_id, obj.ticket.number) if obj.ticket_id else "–"


@admin.register(AccountHealth)
class AccountHealthAdmin(_ReadOnly):
    list_display = ("account", "tenant", "score", "grade", "reason_list", "computed_at")
    list_filter = ("grade", "tenant")
    search_fields = ("tenant__name", "customer__name", "customer__account_number")
    list_select_related = ("tenant", "customer")
    raw_id_fields = ("tenant", "customer")
    actions = ["recompute"]

    @admin.display(description="account", ordering="customer__name")
    def account(self, obj):
        return obj.customer.name if obj.customer_id else format_html("<strong>{}</strong> (tenant)", obj.tenant.name)

    @admin.display(description="reasons")
    def reason_list(self, obj):
        if not obj.reasons:
            return "no issues"
        return format_html("<ul style='margin:0;padding-left:1em'>{}</ul>", format_html_join("", "<li>{}</li>", ((r["text"],) for r in obj.reasons)))

    def has_recompute_permission(self, request):
        return request.user.is_staff and self._allowed(request, "recompute")

    @admin.action(description="Recompute health of the selected accounts' tenants now", permissions=["recompute"])
    def recompute(self, request, queryset):
        tenant_ids = sorted(set(queryset.values_list("tenant_id", flat=True)))
        n = sum(self.run_service(request, services.health_recompute, tenant=t) or 0 for t in tenant_ids)
        self.message_user(request, f"{n} health row(s) recomputed.")


@admin.register(TenantSummary)
class TenantSummaryAdmin(_ReadOnly):
    list_display = ("tenant", "open_tickets", "computed_at", "compute_ms")
    search_fields = ("tenant__name", "tenant__slug")
    list_filter = ("tenant",)
    list_select_related = ("tenant",)
    raw_id_fields = ("tenant",)
    actions = ["refresh"]

    @admin.display(description="open tickets")
    def open_tickets(self, obj):
        return (obj.data.get("tickets_open") or {}).get("total", 0)

    def has_refresh_permission(self, request):
        return request.user.is_staff and self._allowed(request, "refresh")

    @admin.action(description="Refresh the selected summaries now", permissions=["refresh"])
    def refresh(self, request, queryset):
        n = sum(self.run_service(request, services.summary_refresh, tenant=t) or 0 for t in queryset.values_list("tenant_id", flat=True))
        self.message_user(request, f"{n} summary row(s) refreshed.")
