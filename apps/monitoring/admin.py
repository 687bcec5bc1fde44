"""Admin: endpoints with a status colour, the last result, a latency sparkline and actions;
trend rules with their state and an "evaluate now" action."""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join

from apps.core.admin import TenantScopedAdmin

from . import selectors, services
from .choices import EndpointKind
from .models import Endpoint, TrendRule


def sparkline(values, width=120, height=24):
    points = [v for v in values if v is not None]
    if len(points) < 2:
        return "—"
    top = max(points) or 1.0
    step = width / (len(values) - 1)
    coords = " ".join(
        f"{i * step:.1f},{height - (v / top) * (height - 2) - 1:.1f}" for i, v in enumerate(values) if v is not None
    )
    return format_html(
        '<svg width="{}" height="{}" viewBox="0 0 {} {}"><polyline fill="none" stroke="#1565c0" stroke-width="1.5" points="{}"/></svg>'
        ' <small>max {} ms</small>', width, height, width, height, coords, f"{top:.0f}",
    )


@admin.register(Endpoint)
class EndpointAdmin(TenantScopedAdmin):
    list_display = ("name", "tenant", "kind", "target", "status_badge", "status_since", "last_result", "latency", "enabled", "in_maintenance")
    list_filter = ("status", "kind", "enabled", "in_maintenance", "tenant")
    search_fields = ("name", "host")
    list_select_related = ("tenant",)
    readonly_fields = (
        "ping_url", "status", "status_since", "status_reason", "notified_status", "consecutive_failures", "consecutive_slow",
        "in_maintenance", "next_check_at", "last_checked_at", "last_latency_ms", "last_status_code", "last_error",
        "last_ping_at", "last_start_at", "tls_expires_at", "recent_results",
    )
    actions = ["check_now", "pause", "resume"]

    class Media:
        css = {"all": ["monitoring/admin.css"]}

    @admin.display(description="target")
    def target(self, obj):
        return obj.url

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj):
        return format_html('<b class="mon-badge {}">{}</b>', obj.status, obj.get_status_display())

    @admin.display(description="last result")
    def last_result(self, obj):
        if not obj.last_checked_at:
            return "—"
        code = f"HTTP {obj.last_status_code} " if obj.last_status_code else ""
        return f"{code}{obj.last_error or 'ok'}"[:80]

    @admin.display(description="latency", ordering="last_latency_ms")
    def latency(self, obj):
        return f"{obj.last_latency_ms:.0f} ms" if obj.last_latency_ms is not None else "—"

    @admin.display(description="ping URL")
    def ping_url(self, obj):
        return f"/ping/{obj.ping_id}" if obj.kind == EndpointKind.HEARTBEAT else "—"

    @admin.display(description="recent results")
    def recent_results(self, obj):
        if not obj.pk:
            return "—"
        rows = obj.results.order_by("-checked_at")[:15]
        table = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((r.checked_at.strftime("%Y-%m-%d %H:%M:%S"), r.status, "" if r.latency_ms is None else f"{r.latency_ms:.0f} ms",
              r.error or "", "maintenance" if r.in_maintenance else "") for r in rows),
        )
        return format_html("{}<table>{}</table>", sparkline(selectors.recent_latencies(obj.pk)), table)

    def save_service(self, request, obj, form, change):
        fields = {f: getattr(obj, f) for f in services.EDITABLE}
        if change:  # the stored row, not `obj` (the form is applied to it): the service writes what differs
            return services.endpoint_update(Endpoint.objects.get(pk=obj.pk), actor=request.user, **fields)
        endpoint = services.endpoint_create(actor=request.user, tenant_id=obj.tenant_id, **fields)
        obj.pk, obj.tenant_id = endpoint.pk, endpoint.tenant_id
        return endpoint

    def delete_model(self, request, obj):
        services.endpoint_delete(obj, actor=request.user)

    @admin.action(description="Check the selected endpoints now")
    def check_now(self, request, queryset):
        done = 0
        for endpoint in queryset.exclude(kind=EndpointKind.HEARTBEAT)[:50]:
            if self.run_service(request, services.endpoint_check_now, endpoint, actor=request.user) is not None:
                done += 1
        self.message_user(request, f"{done} endpoint(s) checked.", level=messages.SUCCESS)

    @admin.action(description="Pause checks of the selected endpoints")
    def pause(self, request, queryset):
        for endpoint in queryset:
            self.run_service(request, services.endpoint_pause, endpoint, actor=request.user)

    @admin.action(description="Resume checks of the selected endpoints")
    def resume(self, request, queryset):
        for endpoint in queryset:
            self.run_service(request, services.endpoint_resume, endpoint, actor=request.user)


@admin.register(TrendRule)
class TrendRuleAdmin(TenantScopedAdmin):
    list_display = ("name", "tenant", "endpoint", "kind", "budget", "severity", "state_badge", "state_since", "last_reason", "enabled")
    list_filter = ("state", "kind", "severity", "enabled", "tenant")
    search_fields = ("name", "endpoint__name")
    list_select_related = ("tenant", "endpoint")
    autocomplete_fields = ("endpoint",)
    exclude = ("tenant",)  # a rule belongs to its endpoint's tenant
    readonly_fields = ("state", "state_since", "last_value", "last_samples", "last_reason", "last_evaluated_at", "created_by")
    actions = ["evaluate_now"]

    class Media:
        css = {"all": ["monitoring/admin.css"]}

    @admin.display(description="budget")
    def budget(self, obj):
        if obj.kind == "latency_p95":
            return f"p95 ≤ {obj.threshold_ms} ms over {obj.window_minutes} min"
        return f"certificate valid ≥ {obj.days} days"

    @admin.display(description="state", ordering="state")
    def state_badge(self, obj):
        return format_html('<b class="mon-badge {}">{}</b>', obj.state, obj.get_state_display())

    def save_service(self, request, obj, form, change):
        fields = {f: getattr(obj, f) for f in services.TREND_FIELDS if f in form.cleaned_data}
        if change:
            return services.trend_rule_update(TrendRule.objects.get(pk=obj.pk), actor=request.user, **fields)
        rule = services.trend_rule_create(actor=request.user, **fields)
        obj.pk, obj.tenant_id = rule.pk, rule.tenant_id
        return rule

    def delete_model(self, request, obj):
        services.trend_rule_delete(obj, actor=request.user)

    def has_evaluate_permission(self, request):
        return request.user.is_staff and self._allowed(request, "evaluate")

    @admin.action(description="Evaluate the selected trend rules now", permissions=["evaluate"])
    def evaluate_now(self, request, queryset):
        done = sum(1 for rule in queryset.select_related("endpoint")[:100]
                   if self.run_service(request, services.trend_rule_evaluate_now, rule, actor=request.user) is not None)
        self.message_user(request, f"{done} trend rule(s) evaluated.", level=messages.SUCCESS)
