"""Admin base classes: every changelist, form choice, autocomplete and save goes through the gate.

`TenantScopedAdmin` is the base for every portal ModelAdmin:
- `get_queryset` is `Model.objects.visible_to(request.user)` (autocomplete and the change view
  use it too, so another tenant's row is "not found", never shown);
- foreign-key and many-to-many choices are the related model's `visible_to(user)` (a raw-id
  field, too, names only a row within reach: `ScopedRawIdWidget`);
- the `tenant` field is filled in for tenant staff and hidden from them;
- permissions come from the same policy as the API (`apps.core.permissions`);
- saves go through a service (`save_service`, by default `apps.core.services.scoped_save`).
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers, widgets
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Prefetch
from django.utils.html import format_html
from django.utils.translation import gettext as _
from import_export.admin import ExportMixin
from import_export.formats.base_formats import CSV, XLSX
from simple_history.admin import SimpleHistoryAdmin

from . import services
from .crypto import PLACEHOLDER
from .models import Event
from .policy import policy
from .tenancy import acting
from .users import PortalUser, visible_organizations, visible_users


def _scoped_choices(related_model, request):
    if related_model is get_user_model() or related_model is PortalUser:
        # people: only those within the acting user's reach (apps/core/users.py)
        return related_model.objects.filter(pk__in=visible_users(request.user).values("pk"))
    if hasattr(related_model.objects, "visible_to"):
        return related_model.objects.visible_to(request.user)
    return None


class ScopedRawIdWidget(widgets.ForeignKeyRawIdWidget):
    """A raw-id input that shows the chosen row's label and link only when the row is within the
    user's reach; Django's looks any id up with the default manager (an oracle for other
    tenants' rows and for who is behind a user id)."""

    def __init__(self, rel, admin_site, queryset, attrs=None, using=None):
        super().__init__(rel, admin_site, attrs=attrs, using=using)
        self.queryset = queryset

    def label_and_url_for_value(self, value):
        key = self.rel.get_related_field().name
        try:
            if not self.queryset.filter(**{key: value}).exists():
                return "", ""
        except (ValueError, TypeError, ValidationError):
            return "", ""
        return super().label_and_url_for_value(value)


def add_refusal(form, refusal: ValidationError | PermissionDenied, aliases: dict[str, str] | None = None) -> None:
    """A service's refusal as form errors: on the fields it names that the form shows (`aliases`
    maps a service argument to its form field), the rest (with the field's name) at the top."""
    if isinstance(refusal, PermissionDenied):
        form.add_error(None, str(refusal) or "You are not allowed to do this.")
    elif hasattr(refusal, "error_dict"):
        for field, errors in refusal.error_dict.items():
            field = (aliases or {}).get(field, field)
            if field in form.fields:
                form.add_error(field, errors)
            else:
                prefix = "" if field == "__all__" else f"{field}: "
                form.add_error(None, [f"{prefix}{message}" for error in errors for message in error.messages])
    else:
        form.add_error(None, refusal.messages)


class TenantScopedAdmin(SimpleHistoryAdmin):
    """Base ModelAdmin for portal models (history tab included): django-simple-history's history
    for models that keep one (`history = HistoricalRecords()`), Django's admin log for the rest."""

    show_full_result_count = False
    list_per_page = 50

    def __init__(self, model, admin_site):
        super().__init__(model, admin_site)
        self.keeps_history = hasattr(model._meta, "simple_history_manager_attribute")
        if not self.keeps_history:
            self.object_history_template = None  # Django's admin-log template

    def get_urls(self):
        return super().get_urls() if self.keeps_history else admin.ModelAdmin.get_urls(self)

    def history_view(self, request, object_id, extra_context=None):
        if self.keeps_history:
            return super().history_view(request, object_id, extra_context)
        return admin.ModelAdmin.history_view(self, request, object_id, extra_context)

    # -- rows ------------------------------------------------------------------------------
    def action_checkbox(self, obj):
        # Django's markup, written directly: its CheckboxInput renders a template per row, a
        # third of a 50-row changelist's rendering time (docs/tickets.md, "Admin changelist").
        label = format_html(_("Select this object for an action - {}"), str(obj))
        return format_html(
            '<input type="checkbox" name="{}" value="{}" class="action-select" aria-label="{}">',
            helpers.ACTION_CHECKBOX_NAME,
            str(obj.pk),
            label,
        )

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return qs.visible_to(request.user) if hasattr(qs, "visible_to") else qs.none()

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        scoped = _scoped_choices(db_field.related_model, request)
        if scoped is not None:
            kwargs["queryset"] = scoped.complex_filter(db_field.get_limit_choices_to())
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if scoped is not None and field is not None and isinstance(field.widget, widgets.ForeignKeyRawIdWidget):
            raw = field.widget
            field.widget = ScopedRawIdWidget(raw.rel, raw.admin_site, kwargs["queryset"], attrs=raw.attrs, using=raw.db)
        return field

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        scoped = _scoped_choices(db_field.related_model, request)
        if scoped is not None:
            kwargs["queryset"] = scoped.complex_filter(db_field.get_limit_choices_to())
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def get_exclude(self, request, obj=None):
        exclude = list(super().get_exclude(request, obj) or [])
        ctx = acting(request.user)
        if not ctx.is_platform and any(f.name == "tenant" for f in self.model._meta.fields):
            exclude.append("tenant")  # tenant staff always write into their own tenant
        return exclude

    def get_list_filter(self, request):
        filters = list(super().get_list_filter(request))
        if not acting(request.user).is_platform and "tenant" in filters:
            filters.remove("tenant")
        return filters

    # -- permissions: the policy, same as the API ------------------------------------------
    def _allowed(self, request, action, obj=None):
        # memoized per request: a change page asks the same row-level question a dozen times
        key = (action, self.model._meta.label, obj._meta.label if obj is not None else None, getattr(obj, "pk", None))
        answers = request.__dict__.setdefault("_portal_permission_answers", {})
        if key not in answers:
            if obj is not None:
                answers[key] = policy.allows_object(request.user, action, obj)
            else:
                answers[key] = policy.allows(request.user, action, self.model)
        return answers[key]

    def has_view_permission(self, request, obj=None):
        return request.user.is_staff and (self._allowed(request, "view", obj) or self._allowed(request, "change", obj))

    def has_add_permission(self, request):
        return request.user.is_staff and self._allowed(request, "add")

    def has_change_permission(self, request, obj=None):
        return request.user.is_staff and self._allowed(request, "change", obj)

    def has_delete_permission(self, request, obj=None):
        return request.user.is_staff and self._allowed(request, "delete", obj)

    def has_module_permission(self, request):
        return request.user.is_staff and self._allowed(request, "view")

    # -- writes through services -----------------------------------------------------------
    def save_service(self, request, obj, form, change):
        """Override to call the app's service; the default validates scope and saves."""
        return services.scoped_save(obj, actor=request.user)

    def save_model(self, request, obj, form, change):
        self.save_service(request, obj, form, change)

    # A service may refuse a save that passed the form (a rule only the service knows: the routing
    # matrix, a duplicate schedule, a role). Django's change view would answer 500 (403 for a
    # PermissionDenied). The view runs in one transaction, so the refused attempt left nothing; the
    # view runs once more with the refusal attached to the form, which is then invalid: the page
    # comes back with the person's input and the service's message on the fields it names.
    refusal_fields: dict[str, str] = {}  # service argument → form field, where they differ

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except (ValidationError, PermissionDenied) as exc:
            if request.method != "POST" or getattr(request, "_portal_refusal", None) is not None:
                raise
            request._portal_refusal = exc
            return super().changeform_view(request, object_id, form_url, extra_context)

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        refusal = getattr(request, "_portal_refusal", None)
        if refusal is None:
            return form

        def clean(self_):
            cleaned = form.clean(self_)
            add_refusal(self_, refusal, self.refusal_fields)
            return cleaned

        return type(form.__name__, (form,), {"clean": clean})

    def delete_model(self, request, obj):
        """Override to call the app's service; the default deletes and audits (`config.deleted`)."""
        services.scoped_delete(obj, actor=request.user)

    def construct_change_message(self, request, form, formsets, add=False):
        # Portal inlines are read-only and their formsets are never saved (the service wrote
        # everything), so Django's history message would read attributes only save() sets.
        for formset in formsets or ():
            for attr in ("new_objects", "changed_objects", "deleted_objects"):
                if not hasattr(formset, attr):
                    setattr(formset, attr, [])
        return super().construct_change_message(request, form, formsets, add)

    def run_service(self, request, func, *args, success: str | None = None, **kwargs):
        """Run a service from an admin action and turn a validation error into a message."""
        try:
            result = func(*args, **kwargs)
        except (ValidationError, PermissionDenied) as exc:
            text = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
            self.message_user(request, text, level=messages.ERROR)
            return None
        if success:
            self.message_user(request, success, level=messages.SUCCESS)
        return result


class ScopedExportMixin(ExportMixin):
    """"Export" on a changelist (django-import-export): CSV or XLSX of the rows the changelist shows
    with its filters and search, i.e. `get_queryset` = `visible_to(user)`, never more. Anyone who
    may view the changelist may export it; at most `ADMIN_EXPORT_MAX_ROWS` rows, in list order."""

    export_formats = [CSV, XLSX]

    def get_export_formats(self):
        return list(self.export_formats)

    def has_export_permission(self, request):
        return self.has_view_permission(request)

    def get_export_queryset(self, request):
        qs = super().get_export_queryset(request)
        limit = getattr(settings, "ADMIN_EXPORT_MAX_ROWS", 100_000)
        return qs.filter(pk__in=qs.values("pk")[:limit])

    def get_export_filename(self, request, queryset, file_format):
        from django.utils import timezone

        stamp = timezone.localtime().strftime("%Y-%m-%d-%H%M")
        return f"{self.model._meta.verbose_name_plural.replace(' ', '-')}-{stamp}.{file_format.get_extension()}"


class SecretFormField(forms.CharField):
    """A write-only secret in an admin form: shows a placeholder, keeps the stored value when the
    placeholder (or nothing) is sent back."""

    widget = forms.PasswordInput(render_value=True)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("help_text", "Write-only. Leave the placeholder to keep the stored secret.")
        super().__init__(*args, **kwargs)

    def prepare_value(self, value):
        return PLACEHOLDER if value else ""

    @staticmethod
    def is_unchanged(value) -> bool:
        return value in (None, "", PLACEHOLDER)


@admin.register(Event)
class EventAdmin(TenantScopedAdmin):
    list_display = ("name", "status", "tenant", "attempts", "created_at", "dispatched_at")
    list_filter = ("status", "name")
    search_fields = ("name",)
    list_select_related = ("tenant",)
    readonly_fields = [f.name for f in Event._meta.fields]
    actions = ["retry_events"]
    date_hierarchy = "created_at"

    def get_queryset(self, request):
        return Event.objects.visible_to(request.user).select_related("tenant")

    def has_add_permission(self, request):
        return False

    @admin.action(description="Retry the selected failed events")
    def retry_events(self, request, queryset):
        count = self.run_service(request, services.event_retry, actor=request.user, event_ids=queryset.values_list("pk", flat=True))
        if count is not None:
            self.message_user(request, f"{count} event(s) queued for dispatch.")


# -- people ----------------------------------------------------------------------------------
def _memberships_prefetch(request):
    Membership = PortalUser._meta.apps.get_model("tenants", "Membership")
    shown = Membership.objects.filter(is_active=True, organization__in=visible_organizations(request.user).values("pk"))
    return Prefetch("memberships", queryset=shown.select_related("organization").order_by("organization__name"), to_attr="shown_memberships")


def _organizations_of(obj) -> str:
    rows = getattr(obj, "shown_memberships", None)
    if rows is None:
        return ""
    return ", ".join(f"{m.organization.name} ({m.get_role_display()})" for m in rows)


class VisibleOrganizationFilter(admin.SimpleListFilter):
    """Filter people by an organization the acting user can see (never lists other tenants)."""

    title = "organization"
    parameter_name = "organization"

    def lookups(self, request, model_admin):
        return [(str(o.pk), o.name) for o in visible_organizations(request.user).order_by("name")[:200]]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        return queryset.filter(memberships__organization_id=self.value(), memberships__is_active=True).distinct()


@admin.register(PortalUser)
class PortalUserAdmin(admin.ModelAdmin):
    """"People": the users within the acting user's reach, read-only, searchable — the target of
    autocomplete for foreign keys declared to `core.PortalUser`."""

    list_display = ("username", "full_name", "email", "organizations", "is_active", "last_login")
    list_filter = ("is_active", VisibleOrganizationFilter)
    search_fields = ("username", "email", "first_name", "last_name")
    ordering = ("username",)
    fields = ("username", "first_name", "last_name", "email", "organizations", "is_active", "last_login", "date_joined")
    readonly_fields = fields
    show_full_result_count = False
    list_per_page = 50

    def get_queryset(self, request):
        return PortalUser.objects.visible_to(request.user).prefetch_related(_memberships_prefetch(request))

    @admin.display(description="name", ordering="last_name")
    def full_name(self, obj):
        return obj.get_full_name()

    @admin.display(description="organizations (role)")
    def organizations(self, obj):
        return _organizations_of(obj)

    def has_view_permission(self, request, obj=None):
        if not request.user.is_staff:
            return False
        if obj is not None:
            return policy.allows_object(request.user, "view", obj)
        return policy.allows(request.user, "view", PortalUser)

    def has_module_permission(self, request):
        return self.has_view_permission(request)

    def has_add_permission(self, request):
        return False  # people are created in Django's User admin (platform) or as memberships

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


User = get_user_model()
if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class ScopedUserAdmin(DjangoUserAdmin):
    """Django's own User admin for platform staff (unchanged); for tenant and partner staff a
    read-only view of the people within their reach, so autocomplete and raw-id lookups on any
    foreign key to the user model work for them without showing anyone else."""

    def _platform(self, request) -> bool:
        return acting(request.user).is_platform

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if self._platform(request):
            return qs
        return qs.filter(pk__in=visible_users(request.user).values("pk"))

    def has_view_permission(self, request, obj=None):
        if self._platform(request):
            return super().has_view_permission(request, obj)
        if not request.user.is_staff or not policy.allows(request.user, "view", PortalUser):
            return False
        return obj is None or visible_users(request.user).filter(pk=obj.pk).exists()

    def has_module_permission(self, request):
        # tenant staff find people under "People"; this admin serves their lookups only
        return super().has_module_permission(request) if self._platform(request) else False

    def has_add_permission(self, request):
        return self._platform(request) and super().has_add_permission(request)

    def has_change_permission(self, request, obj=None):
        return self._platform(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._platform(request) and super().has_delete_permission(request, obj)

    def get_fieldsets(self, request, obj=None):
        if self._platform(request):
            return super().get_fieldsets(request, obj)
        return [(None, {"fields": ("username", "first_name", "last_name", "email", "is_active", "last_login", "date_joined")})]

    def get_list_filter(self, request):
        return super().get_list_filter(request) if self._platform(request) else ("is_active",)

    def get_list_display(self, request):
        return super().get_list_display(request) if self._platform(request) else ("username", "email", "first_name", "last_name", "is_active")
