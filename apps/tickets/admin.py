"""Admin for tickets (fast at a million rows: capped count, select_related, no per-row
queries), SLA policies, business calendars and agents. Every write calls a service."""

from django import forms
from django.contrib import admin
from django.contrib.admin.views.main import ORDER_VAR, ChangeList
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils.html import format_html

from apps.core.admin import TenantScopedAdmin
from apps.core.tenancy import acting

from . import services, sla_config
from .choices import TicketStatus
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


class TicketChangeForm(forms.ModelForm):
    reply = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 4}),
                            help_text="Added to the messages when you save (ticket_reply); leave empty to only save the fields above.")
    reply_is_internal = forms.BooleanField(required=False, label="Internal note", help_text="Staff only; the customer never sees it.")

    class Meta:
        model = Ticket
        fields = ("subject", "priority", "assignee", "tags", "metadata")


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

    def get_queryset(self, request, exclude_parameters=None):
        qs = super().get_queryset(request, exclude_parameters)
        if ORDER_VAR not in self.params and "search_rank" in qs.query.annotations:
            qs = qs.order_by(*ordering_for(None, searching=True))  # the search runs after the ordering
        return qs


@admin.register(Ticket)
class TicketAdmin(TenantScopedAdmin):
    list_display = ("number", "subject", "tenant", "status", "priority_label", "assignee", "escalation_level",
                    "sla_at_risk", "breached", "resolution_due_at", "created_at")
    sortable_by = ("status", "priority_label", "resolution_due_at", "created_at")
    list_filter = ("status", "priority", "target_type", "escalation_level", "sla_at_risk",
                   "first_response_breached", "resolution_breached", "tenant")
    search_fields = ("number", "subject")  # shows the box; get_search_results does the searching
    search_help_text = "A ticket number (any case) or a phrase in the subject or a message."
    list_select_related = ("tenant", "assignee")
    paginator = CappedCountPaginator
    inlines = [MessageInline, AttachmentInline, TimelineInline]
    actions = ["assign_to_me", "escalate_one_level", "resolve", "close"]
    readonly_fields = ("number", "tenant", "status", "origin_type", "target_type", "customer", "partner", "created_by",
                       "escalation_level", "sla_policy", "first_response_due_at", "resolution_due_at", "first_responded_at",
                       "resolved_at", "closed_at", "sla_at_risk", "first_response_breached", "resolution_breached",
                       "sla_paused_at", "created_at")
    change_fields = ("subject", "priority", "assignee", "tags", "metadata")
    reply_fields = ("reply", "reply_is_internal")

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
        return super().get_form(request, obj, **kwargs)

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

    @admin.display(boolean=True, description="breached")
    def breached(self, obj):
        return obj.sla_breached

    def save_service(self, request, obj, form, change):
        data = form.cleaned_data
        if not change:
            created = services.ticket_create(
                actor=request.user, subject=data["subject"], message=data["message"], priority=data["priority"],
                target_type=data["target_type"], tenant=getattr(data.get("tenant"), "pk", None),
                partner=getattr(data.get("partner"), "pk", None), tags=data.get("tags") or [], metadata=data.get("metadata") or {},
            )
            obj.pk = created.pk
            return created
        original = Ticket.objects.get(pk=obj.pk)
        services.ticket_update(original, actor=request.user, subject=data["subject"], priority=data["priority"],
                               tags=data.get("tags") or [], metadata=data.get("metadata") or {})
        if "assignee" in form.changed_data:
            services.ticket_assign(original, actor=request.user, assignee=data.get("assignee"))
        if (data.get("reply") or "").strip():
            services.ticket_reply(original, actor=request.user, body=data["reply"], is_internal=bool(data.get("reply_is_internal")))
        return original

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

    @admin.action(description="Assign to me")
    def assign_to_me(self, request, queryset):
        self._each(request, queryset, services.ticket_assign, "{n} ticket(s) assigned to you.", assignee=request.user)

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
        self._each(request, queryset, services.ticket_change_status, "{n} ticket(s) resolved.", status=TicketStatus.RESOLVED)

    @admin.action(description="Close")
    def close(self, request, queryset):
        self._each(request, queryset, services.ticket_change_status, "{n} ticket(s) closed.", status=TicketStatus.CLOSED)


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
