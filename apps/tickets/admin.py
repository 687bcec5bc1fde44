"""Admin for tickets (fast at a million rows: capped count, select_related, no per-row
queries), SLA policies, business calendars and agents. Every write calls a service."""

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.contrib.admin.views.main import ORDER_VAR, ChangeList
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html
from import_export import resources

from apps.core.admin import ScopedExportMixin, TenantScopedAdmin
from apps.core.tenancy import acting

from . import services, sla_config
from .canned import PLACEHOLDERS, CannedResponse, render_canned
from .choices import OPEN_STATUSES, TRANSITIONS, TicketStatus
from .models import STAFF_WORKERS, BusinessCalendar, SlaPolicy, Ticket, TicketAgent, TicketAttachment, TicketEvent, TicketMessage
from .pagination import CappedCountPaginator
from .search import ORDERINGS, ordering_for, search_tickets


def _staff_users(request):
    """Users an admin form may offer as assignee/agent: staff of the acting user's organization."""
    ctx = acting(request.user)
    qs = get_user_model().objects.filter(is_active=True, memberships__is_active=True, memberships__role__in=list(STAFF_WORKERS))
    if not ctx.is_platform:
        qs = qs.filter(memberships__organization_id=ctx.organization_id)
    return qs.distinct().order_by("username")


class _ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False
    related = ()  # the foreign keys the inline shows: joined, not one query per row

    def get_queryset(self, request):
        return self.model.objects.visible_to(request.user).select_related(*self.related)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return request.user.is_staff


class MessageInline(_ReadOnlyInline):
    model = TicketMessage
    related = ("author",)
    fields = ("created_at", "author", "author_type", "is_internal", "body")
    readonly_fields = fields


class AttachmentInline(_ReadOnlyInline):
    model = TicketAttachment
    related = ("uploaded_by",)
    fields = ("created_at", "download", "content_type", "size", "uploaded_by")
    readonly_fields = fields

    @admin.display(description="file")
    def download(self, obj):
        # Never the storage URL (MEDIA is not served): the API download view checks the tenant
        # gate and hides internal-note attachments from customers on every request.
        url = reverse("ticket-download", kwargs={"pk": obj.ticket_id, "attachment_id": obj.pk})
        return format_html('<a href="{}">{}</a>', url, obj.filename)


class TimelineInline(_ReadOnlyInline):
    model = TicketEvent
    verbose_name_plural = "timeline"
    related = ("actor",)
    fields = ("created_at", "kind", "actor", "text")
    readonly_fields = fields


class TicketAddForm(forms.ModelForm):
    message = forms.CharField(widget=forms.Textarea, help_text="The first message of the ticket.")

    class Meta:
        model = Ticket
        fields = ("tenant", "subject", "priority", "target_type", "partner", "tags", "metadata")


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files in one input; each is checked by the service (validate_attachment: the
    API's size and type limits), so the admin and the API refuse the same files."""

    widget = MultipleFileInput

    def clean(self, data, initial=None):
        files = data if isinstance(data, list | tuple) else [data] if data else []
        return [super(MultipleFileField, self).clean(f, initial) for f in files]


class CannedSelect(forms.Select):
    """The tenant's canned responses; each option carries its text rendered for this ticket
    (`data-text`), which tickets/desk.js inserts into the reply box at the cursor."""

    def __init__(self, *args, rendered: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.rendered = rendered or {}

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        if str(value) in self.rendered:
            option["attrs"]["data-text"] = self.rendered[str(value)]
        return option


class TicketChangeForm(forms.ModelForm):
    canned_response = forms.ChoiceField(required=False, label="Canned response",
                                        help_text="Inserts the response, filled in for this ticket, into the reply box.")
    reply = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 6}),
                            help_text="Added to the messages when you save (ticket_reply); leave empty to only save the fields above.")
    reply_is_internal = forms.BooleanField(required=False, label="Internal note", help_text="Staff only; the customer never sees it.")
    reply_attachments = MultipleFileField(required=False, label="Attachments",
                                          help_text="Sent with the reply or note (the same size and type limits as the API).")

    class Meta:
        model = Ticket
        fields = ("subject", "priority", "assignee", "tags", "metadata")

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("reply_attachments") and not (cleaned.get("reply") or "").strip():
            self.add_error("reply", "Write a message to go with the attachments.")
        return cleaned


def _canned_choices(request, ticket) -> tuple[list, dict[str, str]]:
    rows = CannedResponse.objects.visible_to(request.user).filter(tenant_id=ticket.tenant_id, is_active=True).order_by("title")[:200]
    rendered = {str(r.pk): render_canned(r.body, ticket=ticket, agent=request.user) for r in rows}
    return [("", "— insert a canned response —"), *[(str(r.pk), r.title) for r in rows]], rendered


# Buttons of the change page and actions of the changelist: label per target status.
# Escalation is not a plain move (it takes a level and a reason): its own action.
TRANSITION_LABELS = {
    TicketStatus.IN_PROGRESS: "Start",
    TicketStatus.WAITING: "Wait on customer",
    TicketStatus.OPEN: "Reopen",
    TicketStatus.RESOLVED: "Resolve",
    TicketStatus.CLOSED: "Close",
}
STATUS_FIELD = "_status"  # name of the transition buttons in the change form


def transitions_from(status: str) -> list[tuple[str, str]]:
    """(target, label) of the buttons a ticket in `status` shows, in TRANSITION_LABELS order."""
    allowed = TRANSITIONS.get(status, frozenset())
    labels = dict(TRANSITION_LABELS)
    if status not in (TicketStatus.RESOLVED, TicketStatus.CLOSED):
        labels[TicketStatus.OPEN] = "Back to open"  # not a reopening: the work is simply not started
    return [(target.value, labels[target]) for target in TRANSITION_LABELS if target in allowed]


class QueueFilter(admin.SimpleListFilter):
    """The desk's queues over open tickets (open, in progress, waiting, escalated): assigned to me,
    to nobody, to anyone of my organization's staff (my team); SLA breached or at risk."""

    title = "queue"
    parameter_name = "queue"

    def lookups(self, request, model_admin):
        return [("mine", "Mine"), ("unassigned", "Unassigned"), ("team", "My team"),
                ("breached", "SLA breached"), ("at_risk", "SLA at risk")]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        queryset = queryset.filter(status__in=list(OPEN_STATUSES))
        if value == "mine":
            return queryset.filter(assignee=request.user)
        if value == "unassigned":
            return queryset.filter(assignee__isnull=True)
        if value == "team":
            ctx = acting(request.user)
            if ctx.organization_id is None:
                return queryset.filter(assignee__isnull=False)
            team = get_user_model().objects.filter(memberships__organization_id=ctx.organization_id, memberships__is_active=True,
                                                   memberships__role__in=list(STAFF_WORKERS))
            return queryset.filter(assignee__in=team.values("pk"))
        if value == "breached":
            return queryset.filter(Q(first_response_breached=True) | Q(resolution_breached=True))
        if value == "at_risk":
            return queryset.filter(sla_at_risk=True, first_response_breached=False, resolution_breached=False)
        return queryset


class TicketResource(resources.ModelResource):
    """Columns of the ticket export (the filtered changelist as CSV/XLSX)."""

    class Meta:
        model = Ticket
        fields = ("number", "subject", "status", "priority", "tenant__name", "customer__name", "partner__name",
                  "assignee__username", "escalation_level", "sla_at_risk", "first_response_breached", "resolution_breached",
                  "first_response_due_at", "resolution_due_at", "first_responded_at", "resolved_at", "closed_at", "created_at")
        export_order = fields


class TicketChangeList(ChangeList):
    """Sorts only by the API's orderings (one column, then the id the same way: an index scan);
    any other column falls back to newest first; a search without a sort column ranks."""

    def get_ordering(self, request, queryset):
        if ORDER_VAR not in self.params:
            return ordering_for(None)
        first = super().get_ordering(request, queryset)[0]
        sign, column = ("-", first[1:]) if first.startswith("-") else ("", first)
        names = {col: name for name, col in ORDERINGS.items()}
        return ordering_for(f"{sign}{names[column]}") if column in names else ordering_for(None)

    _PK = "TICKETPK"  # letters only: admin quote() leaves it as it is

    def url_for_result(self, result):
        # Django reverses the change URL twice per row (number and subject link): once per page
        if not hasattr(self, "_change_url"):
            self._change_url = super().url_for_result(type(result)(pk=self._PK))
        return self._change_url.replace(self._PK, str(quote(result.pk)))

    def get_queryset(self, request, exclude_parameters=None):
        qs = super().get_queryset(request, exclude_parameters)
        if ORDER_VAR not in self.params and "search_rank" in qs.query.annotations:
            qs = qs.order_by(*ordering_for(None, searching=True))  # the search runs after the ordering
        return qs


@admin.register(Ticket)
class TicketAdmin(ScopedExportMixin, TenantScopedAdmin):
    list_display = ("number", "subject", "status", "priority_label", "assignee", "sla_state", "resolution_due_at", "created_at", "tenant")
    list_display_links = ("number", "subject")
    sortable_by = ("status", "priority_label", "resolution_due_at", "created_at")
    list_filter = (QueueFilter, "status", "priority", "target_type", "escalation_level", "sla_at_risk",
                   "first_response_breached", "resolution_breached", "tenant")
    search_fields = ("number", "subject")  # shows the box; get_search_results does the searching
    search_help_text = "A ticket number (any case), or a phrase in the subject, a message, the customer's name or e-mail."
    list_select_related = ("tenant", "assignee")
    paginator = CappedCountPaginator
    inlines = [MessageInline, AttachmentInline, TimelineInline]
    actions = ["assign_to_me", "start", "wait_on_customer", "reopen", "resolve", "close", "escalate_one_level"]
    resource_classes = [TicketResource]
    change_form_template = "admin/tickets/ticket/change_form.html"
    readonly_fields = ("number", "tenant", "status", "origin_type", "target_type", "customer", "partner", "created_by",
                       "escalation_level", "sla_policy", "first_response_due_at", "resolution_due_at", "first_responded_at",
                       "resolved_at", "closed_at", "sla_at_risk", "first_response_breached", "resolution_breached",
                       "sla_paused_at", "created_at")
    change_fields = ("subject", "priority", "assignee", "tags", "metadata")
    sla_fields = ("status", "sla_policy", "first_response_due_at", "resolution_due_at", "sla_at_risk",
                  "first_response_breached", "resolution_breached", "sla_paused_at")
    reply_fields = ("canned_response", "reply", "reply_is_internal", "reply_attachments")
    refusal_fields = {"attachments": "reply_attachments", "body": "reply"}

    class Media:
        js = ("tickets/desk.js",)

    def get_list_display(self, request):
        shown = list(super().get_list_display(request))
        if not acting(request.user).is_platform:
            shown.remove("tenant")  # tenant staff see one tenant: the column says nothing
        return shown

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return super().get_fieldsets(request, obj)
        sets = [(None, {"fields": list(self.change_fields)})]
        if self._offers_reply(request, obj):
            sets.insert(0, ("Reply", {"fields": list(self.reply_fields), "classes": ("desk-reply",)}))
        # the SLA state stays in sight on a desk page; the rest of the record folds away
        sla = [f for f in self.readonly_fields if f in self.sla_fields]
        sets.append(("SLA", {"fields": sla}))
        sets.append(("Details", {"fields": [f for f in self.readonly_fields if f not in sla], "classes": ("collapse",)}))
        return sets

    def get_fields(self, request, obj=None):
        if obj is None:
            fields = list(TicketAddForm.Meta.fields) + ["message"]
            if not acting(request.user).is_platform:
                fields.remove("tenant")
            return fields
        reply = list(self.reply_fields) if self._offers_reply(request, obj) else []
        return list(self.change_fields) + list(self.readonly_fields) + reply

    def _offers_reply(self, request, obj) -> bool:
        # a closed ticket takes no replies (ticket_reply refuses them): no reply box to fill
        return obj.status != TicketStatus.CLOSED and self.has_change_permission(request, obj)

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else ()

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = TicketAddForm
        elif self._offers_reply(request, obj):
            kwargs["form"] = TicketChangeForm
        form = super().get_form(request, obj, **kwargs)
        if obj is not None and self._offers_reply(request, obj):
            choices, rendered = _canned_choices(request, obj)

            class WithCanned(form):
                def __init__(self_, *args, **kw):
                    super().__init__(*args, **kw)
                    field = self_.fields["canned_response"]
                    field.choices = choices
                    field.widget = CannedSelect(choices=choices, rendered=rendered, attrs={"data-desk-canned": "1"})

            WithCanned.__name__ = form.__name__
            return WithCanned
        return form

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "assignee":
            kwargs["queryset"] = _staff_users(request)
            return db_field.formfield(**kwargs)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_changelist(self, request, **kwargs):
        return TicketChangeList

    def get_search_results(self, request, queryset, search_term):
        return search_tickets(queryset, search_term, user=request.user), False

    @admin.display(description="priority", ordering="priority_rank")
    def priority_label(self, obj):
        return obj.get_priority_display()

    @admin.display(description="SLA")
    def sla_state(self, obj):
        if obj.sla_breached:
            return format_html('<span class="desk-sla desk-sla-breached">{}</span>', "breached")
        if obj.sla_at_risk:
            return format_html('<span class="desk-sla desk-sla-risk">{}</span>', "at risk")
        return "ok" if obj.status in OPEN_STATUSES else "—"

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and self.has_change_permission(request, obj):
            context["desk_transitions"] = transitions_from(obj.status)
            context["desk_status_field"] = STATUS_FIELD
            context["desk_placeholders"] = list(PLACEHOLDERS)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def save_service(self, request, obj, form, change):
        data = form.cleaned_data
        if not change:
            created = services.ticket_create(
                actor=request.user, subject=data["subject"], message=data["message"], priority=data["priority"],
                target_type=data["target_type"], tenant=getattr(data.get("tenant"), "pk", None),
                partner=getattr(data.get("partner"), "pk", None), tags=data.get("tags") or [], metadata=data.get("metadata") or {},
            )
            # the "was added" message and the redirect name the stored ticket (its number, not a blank)
            for field in Ticket._meta.concrete_fields:
                setattr(obj, field.attname, getattr(created, field.attname))
            return created
        original = Ticket.objects.get(pk=obj.pk)
        services.ticket_update(original, actor=request.user, subject=data["subject"], priority=data["priority"],
                               tags=data.get("tags") or [], metadata=data.get("metadata") or {})
        if "assignee" in form.changed_data:
            services.ticket_assign(original, actor=request.user, assignee=data.get("assignee"))
        if (data.get("reply") or "").strip():
            services.ticket_reply(original, actor=request.user, body=data["reply"], is_internal=bool(data.get("reply_is_internal")),
                                  attachments=data.get("reply_attachments") or [])
        target = request.POST.get(STATUS_FIELD)
        if target:
            original = services.ticket_change_status(original, actor=request.user, status=target)
            obj.status = original.status
        return original

    def response_change(self, request, obj):
        if request.POST.get(STATUS_FIELD):
            # a transition button: stay on the ticket, with the new state's buttons
            self.message_user(request, f"{obj.number} is now {TicketStatus(obj.status).label.lower()}.")
            return HttpResponseRedirect(request.get_full_path())
        return super().response_change(request, obj)

    def save_formset(self, request, form, formset, change):
        pass  # inlines are read-only; replies come from the reply box (ticket_reply)

    def save_related(self, request, form, formsets, change):
        pass

    def _each(self, request, queryset, func, success, **kwargs):
        done = 0
        for ticket in queryset.select_related("tenant")[:500]:
            if self.run_service(request, func, ticket, actor=request.user, **kwargs) is not None:
                done += 1
        if done:
            self.message_user(request, success.format(n=done))

    def _move_each(self, request, queryset, status: str) -> None:
        label = TicketStatus(status).label.lower()
        self._each(request, queryset, services.ticket_change_status, "{n} ticket(s) now " + label + ".", status=status)

    @admin.action(description="Assign to me")
    def assign_to_me(self, request, queryset):
        self._each(request, queryset, services.ticket_assign, "{n} ticket(s) assigned to you.", assignee=request.user)

    @admin.action(description="Start (in progress)")
    def start(self, request, queryset):
        self._move_each(request, queryset, TicketStatus.IN_PROGRESS)

    @admin.action(description="Wait on customer")
    def wait_on_customer(self, request, queryset):
        self._move_each(request, queryset, TicketStatus.WAITING)

    @admin.action(description="Reopen")
    def reopen(self, request, queryset):
        self._move_each(request, queryset, TicketStatus.OPEN)

    @admin.action(description="Escalate one level")
    def escalate_one_level(self, request, queryset):
        done = 0
        for ticket in queryset[:500]:
            if self.run_service(request, services.ticket_escalate, ticket, actor=request.user,
                                level=min(3, ticket.escalation_level + 1), reason="escalated from the admin") is not None:
                done += 1
        if done:
            self.message_user(request, f"{done} ticket(s) escalated.")

    @admin.action(description="Resolve")
    def resolve(self, request, queryset):
        self._move_each(request, queryset, TicketStatus.RESOLVED)

    @admin.action(description="Close")
    def close(self, request, queryset):
        self._move_each(request, queryset, TicketStatus.CLOSED)


@admin.register(CannedResponse)
class CannedResponseAdmin(TenantScopedAdmin):
    """A tenant's stock replies; the body's placeholders are a fixed list (apps/tickets/canned.py)."""

    list_display = ("title", "tenant", "is_active", "updated_at")
    list_filter = ("is_active", "tenant")
    search_fields = ("title", "body")
    list_select_related = ("tenant",)


@admin.register(SlaPolicy)
class SlaPolicyAdmin(TenantScopedAdmin):
    list_display = ("name", "tenant", "priority", "first_response_minutes", "resolution_minutes", "at_risk_percent", "calendar", "is_active")
    list_filter = ("priority", "is_active", "tenant")
    search_fields = ("name",)
    list_select_related = ("tenant", "calendar")
    raw_id_fields = ()

    def save_service(self, request, obj, form, change):
        return sla_config.sla_policy_save(obj, actor=request.user)


@admin.register(BusinessCalendar)
class BusinessCalendarAdmin(TenantScopedAdmin):
    list_display = ("name", "tenant", "timezone", "is_default")
    list_filter = ("is_default", "tenant")
    search_fields = ("name",)
    list_select_related = ("tenant",)

    def save_service(self, request, obj, form, change):
        return sla_config.calendar_save(obj, actor=request.user)


@admin.register(TicketAgent)
class TicketAgentAdmin(TenantScopedAdmin):
    list_display = ("user", "tenant", "is_available", "last_assigned_at")
    list_filter = ("is_available", "tenant")
    search_fields = ("user__username",)
    list_select_related = ("tenant", "user")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user":
            kwargs["queryset"] = _staff_users(request)
            return db_field.formfield(**kwargs)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


from .mail import admin as _mail_admin  # noqa: E402,F401  ticket mail admin (apps/tickets/mail/admin.py)
