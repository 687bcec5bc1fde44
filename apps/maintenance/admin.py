"""Admin: maintenance windows (with scoped objects) and maintenance runs ("run now")."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from apps.core.admin import TenantScopedAdmin
from apps.core.jsonform import structured

from . import services
from .models import MaintenanceRun, MaintenanceWindow, MaintenanceWindowObject
from .registry import all_tasks


class WindowObjectInline(admin.TabularInline):
    model = MaintenanceWindowObject
    extra = 0
    fields = ("content_type", "object_id")
    verbose_name = "object in scope"

    def get_queryset(self, request):
        return MaintenanceWindowObject.objects.visible_to(request.user)


# label name → value; every pair must be among an object's labels for the window to cover it
LABEL_MATCHERS_SCHEMA = {"type": "object", "additionalProperties": {"type": "string", "minLength": 1}, "title": "labels"}


class MaintenanceWindowForm(forms.ModelForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        structured(self, "label_matchers", LABEL_MATCHERS_SCHEMA)


@admin.register(MaintenanceWindow)
class MaintenanceWindowAdmin(TenantScopedAdmin):
    form = MaintenanceWindowForm
    list_display = ("name", "tenant", "recurrence", "starts_at", "ends_at", "timezone", "scope", "enabled", "active_now")
    list_filter = ("recurrence", "scope", "enabled", "source", "tenant")
    search_fields = ("name", "description")
    list_select_related = ("tenant",)
    raw_id_fields = ("created_by",)
    readonly_fields = ("created_by", "source")
    inlines = [WindowObjectInline]
    date_hierarchy = "starts_at"

    @admin.display(boolean=True, description="active now")
    def active_now(self, obj):
        return obj.is_active(timezone.now())

    def save_service(self, request, obj, form, change):
        fields = {f: getattr(obj, f) for f in services.WINDOW_FIELDS}
        if change:
            return services.window_update(obj, actor=request.user, **fields)
        window = services.window_create(actor=request.user, tenant_id=obj.tenant_id, objects=None, **fields)
        obj.pk = window.pk
        obj.tenant_id = window.tenant_id
        obj._state.adding = False
        return window

    def delete_model(self, request, obj):
        services.window_delete(obj, actor=request.user)


class RunTaskForm(forms.Form):
    task = forms.ChoiceField()
    dry_run = forms.BooleanField(required=False, help_text="Report what would be removed; change nothing.")
    in_background = forms.BooleanField(required=False, initial=True, help_text="Run on a Celery worker.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["task"].choices = [(t.name, f"{t.name} — {t.description}") for t in all_tasks()]


@admin.register(MaintenanceRun)
class MaintenanceRunAdmin(TenantScopedAdmin):
    list_display = ("task", "status", "dry_run", "started_at", "duration_seconds", "total_rows", "bytes_freed", "trigger", "triggered_by")
    list_filter = ("status", "task", "dry_run", "trigger")
    search_fields = ("task", "error")
    list_select_related = ("triggered_by",)
    raw_id_fields = ("triggered_by",)
    readonly_fields = [f.name for f in MaintenanceRun._meta.fields]
    date_hierarchy = "started_at"
    actions = ["run_again", "dry_run_again"]
    change_list_template = "admin/maintenance/maintenancerun/change_list.html"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_urls(self):
        return [
            path("run/", self.admin_site.admin_view(self.run_view), name="maintenance_maintenancerun_run"),
            *super().get_urls(),
        ]

    def _start(self, request, task, dry_run, in_background):
        from .tasks import run_maintenance_task

        if not self._allowed(request, "add"):
            self.message_user(request, "Only platform admins run maintenance tasks.", level=messages.ERROR)
            return
        if in_background:
            run_maintenance_task.delay(task=task, dry_run=dry_run, trigger="admin", user_id=request.user.pk)
            self.message_user(request, f"{task} queued; its run appears below when it starts.")
            return
        run = self.run_service(request, services.maintenance_run, task=task, dry_run=dry_run, actor=request.user, trigger="admin")
        if run is not None:
            level = messages.SUCCESS if run.status == "succeeded" else messages.WARNING
            self.message_user(request, f"{task}: {run.status}, {run.total_rows} rows, {run.bytes_freed} bytes freed. {run.error[:200]}", level=level)

    def run_view(self, request):
        form = RunTaskForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            self._start(request, form.cleaned_data["task"], form.cleaned_data["dry_run"], form.cleaned_data["in_background"])
            return redirect(reverse("admin:maintenance_maintenancerun_changelist"))
        context = {**self.admin_site.each_context(request), "title": "Run a maintenance task", "form": form,
                   "opts": self.model._meta, "tasks": all_tasks()}
        return TemplateResponse(request, "admin/maintenance/run_task.html", context)

    @admin.action(description="Run the selected runs' tasks again")
    def run_again(self, request, queryset):
        for task in sorted(set(queryset.values_list("task", flat=True))):
            self._start(request, task, False, True)

    @admin.action(description="Dry-run the selected runs' tasks again")
    def dry_run_again(self, request, queryset):
        for task in sorted(set(queryset.values_list("task", flat=True))):
            self._start(request, task, True, True)
