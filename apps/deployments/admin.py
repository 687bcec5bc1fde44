"""Admin: instances (operations inline, run-now), operations (approve/reject/cancel), runbooks,
schedules (timing edited on their own page through `schedule_retime`, which keeps the
django-celery-beat PeriodicTask in sync) and provisioning runs."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from apps.core.admin import TenantScopedAdmin
from apps.core.tenancy import acting

from . import services
from .choices import OperationKind
from .models import DeploymentSchedule, Instance, Operation, OperationBatch, ProvisioningRun, Runbook
from .scheduling import upcoming_runs
from .services.schedules import REQUEST_FOR


class OperationInline(admin.TabularInline):
    model = Operation
    extra = 0
    fields = ("operation", "status", "strategy", "triggered_by", "approved_by", "started_at", "finished_at", "error")
    readonly_fields = fields
    show_change_link = True
    can_delete = False
    ordering = ("-created_at",)

    def get_queryset(self, request):
        return Operation.objects.visible_to(request.user).select_related("triggered_by", "approved_by")

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Instance)
class InstanceAdmin(TenantScopedAdmin):
    list_display = ("name", "tenant", "environment", "version", "status", "cpu_cores", "memory_gb", "storage_gb")
    list_filter = ("environment", "status", "tenant")
    search_fields = ("name", "version")
    list_select_related = ("tenant",)
    autocomplete_fields = ("targets",)
    readonly_fields = ("status", "previous_version")
    inlines = [OperationInline]
    actions = ["run_suspend", "run_resume", "run_destroy"]

    def save_service(self, request, obj, form, change):
        fields = {k: getattr(obj, k) for k in services.definitions.INSTANCE_FIELDS}
        targets = list(form.cleaned_data.get("targets") or [])
        if change:
            return services.instance_update(obj, actor=request.user, targets=targets, **fields)
        instance = services.instance_create(actor=request.user, tenant_id=obj.tenant_id, targets=targets, **fields)
        obj.pk, obj.tenant_id = instance.pk, instance.tenant_id
        obj._state.adding = False
        return instance

    def save_related(self, request, form, formsets, change):
        # Targets are set by the service; inlines are read-only.
        pass

    def delete_model(self, request, obj):
        services.instance_delete(obj, actor=request.user)

    def _run(self, request, queryset, operation):
        done = 0
        for instance in queryset:
            if self.run_service(request, services.operation_request, actor=request.user, instance=instance, operation=operation):
                done += 1
        if done:
            self.message_user(request, f"{operation} requested on {done} instance(s).")

    @admin.action(description="Run now: suspend")
    def run_suspend(self, request, queryset):
        self._run(request, queryset, OperationKind.SUSPEND)

    @admin.action(description="Run now: resume")
    def run_resume(self, request, queryset):
        self._run(request, queryset, OperationKind.RESUME)

    @admin.action(description="Run now: destroy (needs a second admin's approval)")
    def run_destroy(self, request, queryset):
        self._run(request, queryset, OperationKind.DESTROY)


class BatchInline(admin.TabularInline):
    model = OperationBatch
    extra = 0
    fields = ("phase", "index", "target_names", "status", "job_run", "gate_passed", "gate_detail", "started_at", "finished_at")
    readonly_fields = fields
    can_delete = False

    def get_queryset(self, request):
        return OperationBatch.objects.visible_to(request.user)

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Operation)
class OperationAdmin(TenantScopedAdmin):
    list_display = ("__str__", "tenant", "operation", "status", "strategy", "triggered_by", "approved_by", "created_at", "finished_at")
    list_filter = ("status", "operation", "strategy", "trigger", "tenant")
    search_fields = ("instance__name", "error")
    list_select_related = ("tenant", "instance", "triggered_by", "approved_by")
    raw_id_fields = ("instance", "runbook", "job", "triggered_by", "approved_by", "schedule")
    readonly_fields = [f.name for f in Operation._meta.fields if f.name not in ("id",)] + ["log_text"]
    exclude = ("log",)
    inlines = [BatchInline]
    actions = ["approve", "reject", "cancel"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False  # operations are requested from the instance page or the API

    def has_change_permission(self, request, obj=None):
        return False if obj is not None else super().has_change_permission(request, obj)

    @admin.display(description="log")
    def log_text(self, obj):
        return format_html("<pre>{}</pre>", "\n".join(f"{e.get('at', '')[:19]}  {e.get('message', '')}" for e in obj.log or []))

    @admin.action(description="Approve (four eyes)")
    def approve(self, request, queryset):
        for op in queryset:
            self.run_service(request, services.operation_approve, op, actor=request.user, success=f"Operation #{op.pk} approved.")

    @admin.action(description="Reject")
    def reject(self, request, queryset):
        for op in queryset:
            self.run_service(request, services.operation_reject, op, actor=request.user, success=f"Operation #{op.pk} rejected.")

    @admin.action(description="Cancel")
    def cancel(self, request, queryset):
        for op in queryset:
            self.run_service(request, services.operation_cancel, op, actor=request.user, success=f"Operation #{op.pk} cancelled.")


@admin.register(Runbook)
class RunbookAdmin(TenantScopedAdmin):
    list_display = ("action", "tenant", "instance", "job", "strategy", "batch_percent", "health_gate")
    list_filter = ("action", "strategy", "tenant")
    search_fields = ("job__name", "instance__name", "description")
    list_select_related = ("tenant", "instance", "job")
    raw_id_fields = ("instance", "job")

    def save_service(self, request, obj, form, change):
        fields = {k: getattr(obj, k) for k in ("action", "strategy", "batch_percent", "health_gate", "description")}
        fields.update(instance=obj.instance if obj.instance_id else None, job=obj.job)
        if change:
            return services.runbook_update(obj, actor=request.user, **fields)
        runbook = services.runbook_create(actor=request.user, tenant_id=obj.tenant_id, **fields)
        obj.pk, obj.tenant_id = runbook.pk, runbook.tenant_id
        obj._state.adding = False
        return runbook

    def delete_model(self, request, obj):
        services.runbook_delete(obj, actor=request.user)


class DeploymentScheduleAddForm(forms.ModelForm):
    """The admin's way to `schedule_deployment`: one-time (no cron, no interval), cron in the
    tenant's time zone, or an interval; the request is the operation's JSON body."""

    cron_expression = forms.CharField(required=False, help_text='5 fields in the tenant\'s time zone, e.g. "0 2 * * 0". '
                                                                "Leave cron and interval empty for a one-time schedule.")
    interval_seconds = forms.IntegerField(required=False, help_text="Every N seconds (60 to 2,592,000) from the start time.")
    request = forms.JSONField(required=False, initial=dict, help_text='upgrade: {"to_version": "2.0", "rollback_on_failure": true}; '
                                                                      'scale: {"cpu_cores": 4}; provision: {"version": "1.0"}; others: {}.')

    class Meta:
        model = DeploymentSchedule
        fields = ("instance", "operation", "scheduled_at", "metadata")

    actor = None  # set by the admin for the request

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["instance"].required = True

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        operation = data["operation"]
        kwargs = {"tenant_id": None, "operation": operation, "scheduled_at": data["scheduled_at"], "instance_id": data["instance"].pk,
                  "cron_expression": data.get("cron_expression") or None, "interval_seconds": data.get("interval_seconds"),
                  "metadata": data.get("metadata") or {}}
        key = REQUEST_FOR.get(operation)
        if key:
            kwargs[key] = data.get("request") or None
        return kwargs

    def clean(self):
        data = super().clean()
        if self.errors or not data.get("instance") or not data.get("operation"):
            return data
        if data.get("request") and not REQUEST_FOR.get(data["operation"]):
            self.add_error("request", f"A {data['operation']} takes no request; leave it empty.")
            return data
        return data


class DeploymentScheduleTimingForm(forms.ModelForm):
    """The change page's timing: one-time (cron and interval empty), cron in the schedule's time
    zone, or an interval from the start time; saved through `schedule_retime`."""

    cron_expression = forms.CharField(required=False, help_text='5 fields in the time zone below, e.g. "0 2 * * 0". '
                                                                "Leave cron and interval empty for a one-time schedule.")
    interval_seconds = forms.IntegerField(required=False, help_text="Every N seconds (60 to 2,592,000) from the start time.")

    class Meta:
        model = DeploymentSchedule
        fields = ("scheduled_at", "timezone")
        help_texts = {"timezone": 'IANA name, e.g. "Europe/Berlin"; cron fields are read in this zone.'}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["cron_expression"].initial = self.instance.cron_expression or ""
            self.fields["interval_seconds"].initial = self.instance.interval_seconds

    def timing_changed(self) -> bool:
        return bool({"scheduled_at", "timezone", "cron_expression", "interval_seconds"} & set(self.changed_data))


@admin.register(DeploymentSchedule)
class DeploymentScheduleAdmin(TenantScopedAdmin):
    refusal_fields = {"instance_id": "instance", "provision_request": "request", "upgrade_request": "request", "scale_request": "request"}
    timing_fields = ("scheduled_at", "cron_expression", "interval_seconds", "timezone")
    list_display = ("__str__", "tenant", "instance", "operation", "scheduled_at", "timing", "enabled_flag", "next_run", "fire_count", "last_error")
    list_filter = ("operation", "tenant")
    search_fields = ("instance__name",)
    list_select_related = ("tenant", "instance", "periodic_task", "periodic_task__crontab", "periodic_task__interval", "periodic_task__clocked")
    raw_id_fields = ("created_by",)
    autocomplete_fields = ("instance",)
    readonly_fields = ("instance", "operation", "parameters", "metadata", "created_by", "last_fired_at",
                       "fire_count", "last_error", "periodic_task_link", "timing", "enabled_flag", "upcoming")
    exclude = ("periodic_task",)
    actions = ["pause", "resume"]
    add_fields = ("instance", "operation", "scheduled_at", "cron_expression", "interval_seconds", "request", "metadata")

    def get_fields(self, request, obj=None):
        if obj is None:
            return list(self.add_fields)
        editable = list(self.timing_fields) if self.has_change_permission(request, obj) else []
        return [*editable, *self.readonly_fields]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return self.readonly_fields if self.has_change_permission(request, obj) else (*self.readonly_fields, "scheduled_at", "timezone")

    def get_form(self, request, obj=None, **kwargs):
        if obj is not None:
            if self.has_change_permission(request, obj):
                kwargs["form"] = DeploymentScheduleTimingForm
            return super().get_form(request, obj, **kwargs)
        kwargs["form"] = DeploymentScheduleAddForm
        form = super().get_form(request, obj, **kwargs)
        return type("DeploymentScheduleAddFormFor", (form,), {"actor": request.user})

    def save_model(self, request, obj, form, change):
        if change:
            if form.timing_changed():
                data = form.cleaned_data
                services.schedule_retime(DeploymentSchedule.objects.get(pk=obj.pk), actor=request.user, scheduled_at=data["scheduled_at"],
                                         cron_expression=data.get("cron_expression") or None, interval_seconds=data.get("interval_seconds"),
                                         tz=data.get("timezone"))
            return
        created = services.schedule_deployment(actor=request.user, **form.service_kwargs())
        saved = DeploymentSchedule.objects.select_related("periodic_task").get(pk=created["schedule_id"])
        obj.pk, obj.tenant_id, obj.periodic_task = saved.pk, saved.tenant_id, saved.periodic_task
        obj._state.adding = False

    @admin.display(description="timing")
    def timing(self, obj):
        return obj.cron_expression or (f"every {obj.interval_seconds}s" if obj.interval_seconds else "once")

    @admin.display(boolean=True, description="enabled")
    def enabled_flag(self, obj):
        return obj.enabled

    @admin.display(description="next run")
    def next_run(self, obj):
        return obj.next_run_at or "never"  # a one-off done, or a cron no date matches

    @admin.display(description="Next 10 runs (UTC)")
    def upcoming(self, obj):
        runs = upcoming_runs(obj) if obj and obj.pk else []
        if not runs:
            return "none (paused, a one-time schedule that has fired, or a cron no date matches)"
        return format_html_join(mark_safe("<br>"), "{}", ((d.strftime("%Y-%m-%d %H:%M UTC"),) for d in runs))

    @admin.display(description="periodic task")
    def periodic_task_link(self, obj):
        if not acting(self._request.user).is_platform:
            return obj.periodic_task.name  # beat's admin is the platform's; timing is edited here
        return format_html('<a href="/admin/django_celery_beat/periodictask/{}/change/">{}</a>', obj.periodic_task_id, obj.periodic_task.name)

    def get_object(self, request, object_id, from_field=None):
        self._request = request  # the read-only displays ask who is looking
        return super().get_object(request, object_id, from_field)

    def delete_model(self, request, obj):
        services.schedule_delete(obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            services.schedule_delete(obj, actor=request.user)

    @admin.action(description="Pause")
    def pause(self, request, queryset):
        for s in queryset:
            self.run_service(request, services.schedule_pause, s, actor=request.user)

    @admin.action(description="Resume")
    def resume(self, request, queryset):
        for s in queryset:
            self.run_service(request, services.schedule_resume, s, actor=request.user)


@admin.register(ProvisioningRun)
class ProvisioningRunAdmin(TenantScopedAdmin):
    list_display = ("__str__", "tenant", "status", "job_run", "created_at", "finished_at")
    list_filter = ("status", "tenant")
    search_fields = ("service_id", "error")
    list_select_related = ("tenant", "job_run")
    raw_id_fields = ("runbook", "job_run")
    readonly_fields = ("service_id", "request_event_id", "runbook", "job_run", "status", "error", "finished_at")


# -- django-celery-beat's periodic tasks: a tenant column for platform staff ------------------
# Registered here (the highest layer that knows both kinds of schedule rows): a task of a
# deployment schedule or a job schedule names its tenant; the rest are the platform's own.
from django.db.models import CharField, OuterRef, Subquery, Value  # noqa: E402
from django.db.models.functions import Coalesce  # noqa: E402
from django_celery_beat.admin import PeriodicTaskAdmin as BeatPeriodicTaskAdmin  # noqa: E402
from django_celery_beat.models import PeriodicTask  # noqa: E402

from apps.targets.models import JobSchedule  # noqa: E402


class PeriodicTaskTenantFilter(admin.SimpleListFilter):
    title = "tenant"
    parameter_name = "tenant"

    def lookups(self, request, model_admin):
        from apps.core.choices import OrgKind
        from apps.tenants.models import Organization

        return [("platform", "Platform (no tenant)")] + [
            (o.name, o.name) for o in Organization.objects.filter(kind=OrgKind.TENANT).order_by("name")[:200]]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        if self.value() == "platform":
            return queryset.filter(tenant_name="")
        return queryset.filter(tenant_name=self.value())


if admin.site.is_registered(PeriodicTask):
    admin.site.unregister(PeriodicTask)


@admin.register(PeriodicTask)
class PortalPeriodicTaskAdmin(BeatPeriodicTaskAdmin):
    """django-celery-beat's admin with the tenant each task serves (platform staff only: tenant
    staff are refused this admin and change their schedules on the schedules' own pages)."""

    list_display = ("name", "tenant_name", "enabled", "scheduler", "start_time", "last_run_at", "one_off")
    list_filter = [PeriodicTaskTenantFilter, "enabled", "one_off", "task"]

    def get_queryset(self, request):
        deployment = DeploymentSchedule.objects.filter(periodic_task=OuterRef("pk")).values("tenant__name")[:1]
        job = JobSchedule.objects.filter(periodic_task=OuterRef("pk")).values("tenant__name")[:1]
        return super().get_queryset(request).annotate(
            tenant_name=Coalesce(Subquery(deployment), Subquery(job), Value(""), output_field=CharField()))

    @admin.display(description="tenant", ordering="tenant_name")
    def tenant_name(self, obj):
        return obj.tenant_name or "platform"
