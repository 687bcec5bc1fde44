"""Admin: schedules (who is on call now, the next 14 days as an SVG timeline with gaps, an
iCalendar import action), layers, overrides and feed tokens; every write through services."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from apps.core.admin import TenantScopedAdmin

from . import selectors, services
from .models import FeedToken, Layer, Override, Schedule
from .selectors import _tz
from .timeline import timeline_svg


def _names(ids) -> dict[int, str]:
    return dict(get_user_model().objects.filter(pk__in=[i for i in ids if i]).values_list("pk", "username"))


class IcalUploadForm(forms.Form):
    file = forms.FileField(help_text="An .ics calendar (RFC 5545); each event's attendee or summary names the person on call.")
    level = forms.IntegerField(required=False, min_value=1, help_text="Empty: a new level above the others.")
    name = forms.CharField(required=False, initial="Imported calendar")


@admin.register(Schedule)
class ScheduleAdmin(TenantScopedAdmin):
    list_display = ("name", "tenant", "timezone", "on_call_now", "gap_start", "notify_shifts")
    list_filter = ("tenant",)
    search_fields = ("name",)
    list_select_related = ("tenant",)
    filter_horizontal = ("owners",)
    readonly_fields = ("on_call_now", "gap_start", "final_schedule")

    def get_changelist_instance(self, request):
        # one load for the page's schedules; each row object carries its answer
        changelist = super().get_changelist_instance(request)
        rows = list(changelist.result_list)
        found = selectors.oncall_now([s.pk for s in rows])
        names = _names(a.user_id for a in found.values())
        for row in rows:
            row._oncall = (found.get(row.pk), names)
        return changelist

    @admin.display(description="on call now")
    def on_call_now(self, obj):
        if obj is None or not obj.pk:
            return "—"
        answer, names = getattr(obj, "_oncall", (None, None))
        if answer is None:
            answer = selectors.oncall_now([obj.pk])[obj.pk]
            names = _names([answer.user_id])
        if answer.user_id is None:
            return format_html('<b style="color:{}">{}</b>', "#c62828", "nobody")
        return f"{names.get(answer.user_id, answer.user_id)} ({answer.source})"

    @admin.display(description="next 14 days")
    def final_schedule(self, obj):
        if obj is None or not obj.pk:
            return "—"
        start = timezone.now().replace(minute=0, second=0, microsecond=0)
        pieces = selectors.final_schedule(obj.pk, start=start, days=14)
        return timeline_svg(
            pieces,
            _names(p.user_id for p in pieces),
            start=start,
            end=start + timedelta(days=14),
            tz=_tz(obj.timezone),
            title=f"{obj.name}: final schedule, next 14 days",
        )

    def save_model(self, request, obj, form, change):
        data = {f: form.cleaned_data[f] for f in form.cleaned_data if f not in ("owners",)}
        owners = form.cleaned_data.get("owners")
        if change:
            schedule = services.schedule_update(
                obj, actor=request.user, owners=owners, **{k: v for k, v in data.items() if k != "tenant"}
            )
        else:
            schedule = services.schedule_create(actor=request.user, owners=owners, **data)
        obj.pk = schedule.pk

    def save_related(self, request, form, formsets, change):
        pass  # owners are set by the service

    def delete_model(self, request, obj):
        services.schedule_delete(obj, actor=request.user)

    def get_urls(self):
        return [
            path("<int:pk>/import-ical/", self.admin_site.admin_view(self.import_ical_view), name="oncall_schedule_import_ical"),
            *super().get_urls(),
        ]

    def import_ical_view(self, request, pk):
        schedule = self.get_queryset(request).filter(pk=pk).first()
        if schedule is None or not self.has_change_permission(request, schedule):
            raise PermissionDenied("You cannot change this schedule.")
        form = IcalUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            try:
                result = services.schedule_import_ical(
                    schedule,
                    actor=request.user,
                    data=form.cleaned_data["file"].read(2 * 1024 * 1024 + 1),
                    level=form.cleaned_data.get("level"),
                    name=form.cleaned_data.get("name") or "Imported calendar",
                )
            except (ValidationError, PermissionDenied) as exc:
                form.add_error(None, "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc))
            else:
                skipped = f"; skipped (nobody named): {', '.join(result['skipped'][:10])}" if result["skipped"] else ""
                self.message_user(request, f"Imported {result['imported']} shifts{skipped}.", messages.SUCCESS)
                return redirect(reverse("admin:oncall_schedule_change", args=[schedule.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Import a calendar into {schedule}",
            "form": form,
            "opts": self.model._meta,
            "original": schedule,
        }
        return render(request, "admin/oncall/import_ical.html", context)


@admin.register(Layer)
class LayerAdmin(TenantScopedAdmin):
    list_display = ("name", "schedule", "level", "kind", "frequency", "handoff_time", "timezone", "members")
    list_filter = ("kind", "frequency")
    search_fields = ("name", "schedule__name")
    list_select_related = ("schedule",)
    raw_id_fields = ("schedule",)
    exclude = ("tenant",)

    def get_readonly_fields(self, request, obj=None):
        return ("schedule", "kind", "members") if obj is not None else ()  # a layer stays in its schedule

    @admin.display(description="members")
    def members(self, obj):
        names = _names(obj.member_ids or [])
        return ", ".join(names.get(i, str(i)) for i in obj.member_ids or []) or "—"

    def save_model(self, request, obj, form, change):
        data = {k: v for k, v in form.cleaned_data.items() if k != "tenant"}
        if change:
            services.layer_update(obj, actor=request.user, **data)
        else:
            schedule = data.pop("schedule")
            obj.pk = services.layer_create(actor=request.user, schedule=schedule, **data).pk

    def delete_model(self, request, obj):
        services.layer_delete(obj, actor=request.user)


@admin.register(Override)
class OverrideAdmin(TenantScopedAdmin):
    list_display = ("schedule", "user", "starts_at", "ends_at", "reason")
    list_filter = ("schedule",)
    search_fields = ("schedule__name", "user__username", "reason")
    list_select_related = ("schedule", "user")
    raw_id_fields = ("schedule", "user")
    exclude = ("tenant", "created_by")

    def save_model(self, request, obj, form, change):
        data = {k: v for k, v in form.cleaned_data.items() if k not in ("tenant", "created_by")}
        if change:
            services.override_update(obj, actor=request.user, **data)
        else:
            obj.pk = services.override_create(actor=request.user, **data).pk

    def delete_model(self, request, obj):
        services.override_delete(obj, actor=request.user)


@admin.register(FeedToken)
class FeedTokenAdmin(TenantScopedAdmin):
    list_display = ("prefix", "name", "schedule", "user", "created_by", "last_used_at", "revoked_at")
    list_filter = ("schedule",)
    search_fields = ("name", "prefix")
    list_select_related = ("schedule", "user", "created_by")
    readonly_fields = ("prefix", "schedule", "user", "created_by", "last_used_at", "revoked_at", "name")
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False  # created through the API (the URL is shown once)

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Revoke the selected feeds")
    def revoke(self, request, queryset):
        done = sum(
            1 for feed in queryset if self.run_service(request, services.feed_revoke, feed, actor=request.user) is not None
        )
        self.message_user(request, f"Revoked {done} feed(s).")

    def delete_model(self, request, obj):
        services.feed_delete(obj, actor=request.user)
