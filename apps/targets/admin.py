"""Admin of the targets app: everything through services; runs show a status summary, paged
per-target results and live output (polled from a small JSON view), never the whole run."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import JsonResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from import_export import resources

from apps.core.admin import ScopedExportMixin, SecretFormField, TenantScopedAdmin
from apps.core.jsonform import structured

from . import editor_schemas, services
from .choices import FINAL_RUN_STATUSES, Trigger
from .models import Credential, FailedTask, Job, JobRun, JobRunOutput, JobRunStep, JobSchedule, Target, TargetGroup
from .scheduling import next_runs
from .services.definitions import VERSIONED_FIELDS as JOB_DEFINITION_FIELDS

STEPS_PER_PAGE = 50


class CredentialForm(forms.ModelForm):
    secret_input = SecretFormField(label="Secret")
    passphrase_input = SecretFormField(label="Key passphrase")

    class Meta:
        model = Credential
        fields = ["tenant", "name", "kind", "username", "description"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["secret_input"].initial = self.instance.secret
            self.fields["passphrase_input"].initial = self.instance.passphrase


@admin.register(Credential)
class CredentialAdmin(TenantScopedAdmin):
    form = CredentialForm
    list_display = ("name", "kind", "username", "tenant", "rotated_at", "updated_at")
    list_filter = ("kind", "tenant")
    search_fields = ("name", "username")
    list_select_related = ("tenant",)

    def save_service(self, request, obj, form, change):
        secret = form.cleaned_data.get("secret_input")
        passphrase = form.cleaned_data.get("passphrase_input")
        fields = {k: form.cleaned_data[k] for k in ("name", "kind", "username", "description") if k in form.cleaned_data}
        if "tenant" in form.cleaned_data:
            fields["tenant"] = form.cleaned_data["tenant"]
        try:
            if change:
                saved = services.credential_update(obj, actor=request.user, secret=None if SecretFormField.is_unchanged(secret) else secret,
                                                   passphrase=None if SecretFormField.is_unchanged(passphrase) else passphrase, **fields)
            else:
                saved = services.credential_create(actor=request.user, secret=secret or "", passphrase=passphrase or "", **fields)
        except ValidationError as exc:
            raise PermissionDenied("; ".join(exc.messages)) from exc
        obj.pk = saved.pk
        return saved

    def delete_model(self, request, obj):
        services.credential_delete(obj, actor=request.user)


@admin.register(TargetGroup)
class TargetGroupAdmin(TenantScopedAdmin):
    list_display = ("name", "tenant", "created_at")
    list_filter = ("tenant",)
    search_fields = ("name",)
    list_select_related = ("tenant",)

    def delete_model(self, request, obj):
        services.group_delete(obj, actor=request.user)


@admin.register(Target)
class TargetAdmin(TenantScopedAdmin):
    list_display = ("name", "hostname", "protocol", "os", "effective_port", "credential", "enabled", "last_test_result", "tenant")
    list_filter = ("protocol", "os", "enabled", "last_test_result", "tenant")
    search_fields = ("name", "hostname")
    list_select_related = ("tenant", "credential")
    autocomplete_fields = ("credential",)
    filter_horizontal = ("groups",)
    readonly_fields = ("last_test_at", "last_test_result", "last_test_message")
    actions = ["test_connection"]

    @admin.action(description="Test the connection of the selected targets")
    def test_connection(self, request, queryset):
        for target in queryset[:50]:
            done = self.run_service(request, services.target_test_connection, target, actor=request.user)
            if done is not None:
                self.message_user(request, f"{done}: {done.last_test_result} {done.last_test_message[:200]}")

    def delete_model(self, request, obj):
        services.target_delete(obj, actor=request.user)


class JobForm(forms.ModelForm):
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    parameters_schema = forms.JSONField(required=False, initial=dict)
    steps = forms.JSONField(help_text='A list of steps, e.g. [{"type": "ssh.exec", "command": "hostname"}].')
    concurrency = forms.IntegerField(initial=25, min_value=1, max_value=1000)
    on_failure = forms.ChoiceField(choices=[("stop_target", "Stop this target"), ("continue", "Continue")], initial="stop_target")
    notify = forms.JSONField(required=False, initial=dict, help_text='{"on": "failure|success|always|never", "roles": [...], "user_ids": [...]}')
    run_timeout_seconds = forms.IntegerField(initial=3600, min_value=1)

    class Meta:
        model = Job
        fields = ["tenant", "name", "overlap_policy", "enabled", "default_targets", "default_groups"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        version = self.instance.current_version if self.instance.pk else None
        if version:
            for name in JOB_DEFINITION_FIELDS:
                self.fields[name].initial = getattr(version, name)
        structured(self, "steps", editor_schemas.STEPS, help_text="Each step's type picks its fields (the raw JSON below shows the same list).")
        structured(self, "parameters_schema", editor_schemas.PARAMETERS_SCHEMA)
        structured(self, "notify", editor_schemas.NOTIFY)


class JobScheduleInline(admin.TabularInline):
    model = JobSchedule
    extra = 0
    fields = ("name", "cron", "interval_seconds", "timezone", "enabled", "last_fired_at", "last_error", "change_link")
    readonly_fields = fields
    show_change_link = True
    can_delete = False

    def change_link(self, obj):
        return format_html('<a href="{}">edit, next runs</a>', reverse("admin:targets_jobschedule_change", args=[obj.pk])) if obj.pk else ""

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Job)
class JobAdmin(TenantScopedAdmin):
    form = JobForm
    list_display = ("name", "version_number", "overlap_policy", "enabled", "tenant", "updated_at")
    list_filter = ("enabled", "overlap_policy", "tenant")
    search_fields = ("name",)
    list_select_related = ("tenant", "current_version")
    filter_horizontal = ("default_targets", "default_groups")
    inlines = [JobScheduleInline]
    actions = ["run_now", "check_now"]

    @admin.display(description="version")
    def version_number(self, obj):
        return obj.current_version.number if obj.current_version_id else "-"

    def save_model(self, request, obj, form, change):
        data = {k: form.cleaned_data[k] for k in JOB_DEFINITION_FIELDS if k in form.cleaned_data}
        data["parameters_schema"] = data.get("parameters_schema") or {}
        data["notify"] = data.get("notify") or {}
        base = {k: form.cleaned_data[k] for k in ("name", "overlap_policy", "enabled") if k in form.cleaned_data}
        if "tenant" in form.cleaned_data:
            base["tenant"] = form.cleaned_data["tenant"]
        m2m = {"default_targets": list(form.cleaned_data.get("default_targets") or []), "default_groups": list(form.cleaned_data.get("default_groups") or [])}
        if change:
            saved = services.job_update(Job.objects.get(pk=obj.pk), actor=request.user, **base, **data, **m2m)
        else:
            saved = services.job_create(actor=request.user, **base, **data, **m2m)
        obj.pk = saved.pk
        obj.current_version = saved.current_version

    def save_related(self, request, form, formsets, change):
        for formset in formsets:  # inline schedules are read-only; edits go through their page
            formset.save_m2m = lambda: None

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)

        class Validating(form):
            def clean(inner):
                data = super().clean()
                from .services.definitions import _validate_definition

                try:
                    _validate_definition({k: data.get(k) for k in ("parameters_schema", "steps", "notify")} | {"parameters_schema": data.get("parameters_schema") or {}})
                except ValidationError as exc:
                    for field, msgs in exc.message_dict.items():
                        inner.add_error(field if field in inner.fields else None, msgs)
                return data

        return Validating

    @admin.action(description="Run the selected jobs now (default targets)")
    def run_now(self, request, queryset):
        for job in queryset:
            self.run_service(request, services.job_run_create, job, actor=request.user, trigger=Trigger.USER, success=f"{job}: run queued.")

    @admin.action(description="Check mode: connect and render without executing")
    def check_now(self, request, queryset):
        for job in queryset:
            self.run_service(request, services.job_run_create, job, actor=request.user, check_mode=True, success=f"{job}: check run queued.")

    def delete_model(self, request, obj):
        services.job_delete(obj, actor=request.user)


class JobScheduleForm(forms.ModelForm):
    class Meta:
        model = JobSchedule
        fields = ["job", "name", "cron", "interval_seconds", "timezone", "params", "targets", "groups", "enabled", "grace_seconds"]


@admin.register(JobSchedule)
class JobScheduleAdmin(TenantScopedAdmin):
    form = JobScheduleForm
    list_display = ("name", "job", "cron", "interval_seconds", "timezone", "enabled", "last_fired_at", "tenant")
    list_filter = ("enabled", "timezone", "tenant")
    search_fields = ("name", "job__name")
    list_select_related = ("job", "tenant")
    autocomplete_fields = ("job",)
    filter_horizontal = ("targets", "groups")
    readonly_fields = ("preview", "last_fired_at", "last_error")

    def get_exclude(self, request, obj=None):
        return [*super().get_exclude(request, obj), "tenant"]

    @admin.display(description="Next 10 runs (schedule's time zone)")
    def preview(self, obj):
        if not obj or not obj.pk:
            return "-"
        runs = next_runs(obj)
        if not runs:
            return "never"  # a cron no date matches (saved before validation refused it)
        return format_html_join(mark_safe("<br>"), "{}", ((d.strftime("%Y-%m-%d %H:%M %Z"),) for d in runs))

    def save_model(self, request, obj, form, change):
        data = {k: v for k, v in form.cleaned_data.items() if k not in ("job", "targets", "groups")}
        m2m = {"targets": list(form.cleaned_data.get("targets") or []), "groups": list(form.cleaned_data.get("groups") or [])}
        if change:
            saved = services.schedule_update(JobSchedule.objects.get(pk=obj.pk), actor=request.user, **data, **m2m)
        else:
            saved = services.schedule_create(actor=request.user, job=form.cleaned_data["job"], **data, **m2m)
        obj.pk = saved.pk

    def save_related(self, request, form, formsets, change):
        return None  # the service set the many-to-many fields

    def delete_model(self, request, obj):
        services.schedule_delete(obj, actor=request.user)


class JobRunResource(resources.ModelResource):
    """Columns of the job-run export; never the run's params (they may carry secrets' names and values)."""

    class Meta:
        model = JobRun
        fields = ("id", "job__name", "version__number", "status", "trigger", "check_mode", "tenant__name", "triggered_by__username",
                  "schedule__name", "target_count", "failed_target_count", "created_at", "started_at", "finished_at", "error")
        export_order = fields


@admin.register(JobRun)
class JobRunAdmin(ScopedExportMixin, TenantScopedAdmin):
    resource_classes = [JobRunResource]
    list_display = ("id", "job", "version", "status", "trigger", "check_mode", "target_count", "failed_target_count", "created_at", "finished_at", "tenant")
    list_filter = ("status", "trigger", "check_mode", "tenant")
    search_fields = ("job__name",)
    list_select_related = ("job", "version", "tenant")
    raw_id_fields = ("job", "version", "schedule", "retry_of", "triggered_by")
    date_hierarchy = "created_at"
    actions = ["cancel_runs", "retry_failed"]
    fields = ("job", "version", "status", "trigger", "triggered_by", "schedule", "retry_of", "check_mode", "params_display",
              "created_at", "started_at", "finished_at", "heartbeat_at", "error", "summary", "results", "live_output")
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="params")
    def params_display(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.params, indent=2))

    @admin.display(description="Summary")
    def summary(self, obj):
        return format_html_join(", ", "{}: {}", sorted(obj.counts.items())) or "-"

    @admin.display(description="Per-target results (paged)")
    def results(self, obj):
        request = self._request
        page_no = request.GET.get("steps_page", 1)
        status = request.GET.get("step_status")
        qs = JobRunStep.objects.filter(run=obj).order_by("target_name", "step_index")
        if status:
            qs = qs.filter(status=status)
        page = Paginator(qs.only("target_name", "step_index", "step_name", "status", "exit_code", "error"), STEPS_PER_PAGE).get_page(page_no)
        rows = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                                ((s.target_name, s.step_index, s.step_name, s.status, "" if s.exit_code is None else s.exit_code, s.error[:200]) for s in page))
        nav = format_html('page {} of {} ({} rows) {} {}', page.number, page.paginator.num_pages, page.paginator.count,
                          format_html('<a href="?steps_page={}">previous</a>', page.number - 1) if page.has_previous() else "",
                          format_html('<a href="?steps_page={}">next</a>', page.number + 1) if page.has_next() else "")
        return format_html("<table><tr><th>target</th><th>#</th><th>step</th><th>status</th><th>exit</th><th>error</th></tr>{}</table>{}", rows, nav)

    @admin.display(description="Live output")
    def live_output(self, obj):
        url = reverse("admin:targets_jobrun_output", args=[obj.pk])
        return format_html(
            '<pre id="run-output" style="max-height:30em;overflow:auto;white-space:pre-wrap"></pre>'
            '<script nonce="{}">(function(){{var after=0,box=document.getElementById("run-output");'
            'function tick(){{fetch("{}?after="+after).then(r=>r.json()).then(function(d){{'
            'd.chunks.forEach(function(c){{box.append(document.createTextNode("["+c.target_name+"#"+c.step_index+" "+c.stream+"] "+c.data));}});'
            'after=d.next_after; if(!d.finished){{setTimeout(tick, d.chunks.length?200:1500);}}}});}} tick();}})();</script>',
            getattr(self._request, "csp_nonce", ""), url)  # the CSP nonce (apps/core/csp.py)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        self._request = request
        return super().changeform_view(request, object_id, form_url, extra_context)

    def get_urls(self):
        return [path("<int:pk>/output/", self.admin_site.admin_view(self.output_view), name="targets_jobrun_output"), *super().get_urls()]

    def output_view(self, request, pk):
        run = self.get_queryset(request).filter(pk=pk).first()
        if run is None:
            return JsonResponse({"detail": "Not found."}, status=404)
        after = int(request.GET.get("after") or 0)
        chunks = list(JobRunOutput.objects.filter(run=run, id__gt=after).select_related("step").order_by("id")[:200])
        return JsonResponse({
            "chunks": [{"id": c.id, "target_name": c.step.target_name, "step_index": c.step.step_index, "stream": c.stream, "data": c.data} for c in chunks],
            "next_after": chunks[-1].id if chunks else after,
            "finished": run.status in FINAL_RUN_STATUSES and len(chunks) < 200,
        })

    @admin.action(description="Cancel the selected runs")
    def cancel_runs(self, request, queryset):
        for run in queryset:
            self.run_service(request, services.run_cancel, run, actor=request.user, success=f"Run #{run.pk}: cancel requested.")

    @admin.action(description="Retry the failed targets of the selected runs")
    def retry_failed(self, request, queryset):
        for run in queryset:
            self.run_service(request, services.run_retry_failed, run, actor=request.user, success=f"Run #{run.pk}: retry queued.")


@admin.register(FailedTask)
class FailedTaskAdmin(TenantScopedAdmin):
    list_display = ("task_name", "task_id", "exception", "created_at", "retried_at", "retry_count")
    list_filter = ("task_name",)
    search_fields = ("task_name", "task_id")
    list_select_related = ()
    readonly_fields = [f.name for f in FailedTask._meta.fields]
    actions = ["retry"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Retry the selected tasks")
    def retry(self, request, queryset):
        self.run_service(request, services.failed_task_retry, actor=request.user, ids=queryset.values_list("pk", flat=True), success="Tasks re-sent.")
