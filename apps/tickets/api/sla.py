"""SLA policies and business calendars over the API (services in apps/tickets/sla_config.py)."""

import django_filters
from rest_framework import serializers

from apps.core.api.viewsets import TenantScopedViewSet
from apps.tenants.api.serializers import TenantConfigSerializer

from .. import sla_config
from ..choices import TicketPriority
from ..models import BusinessCalendar, SlaPolicy


class BusinessCalendarSerializer(TenantConfigSerializer):
    working_hours = serializers.JSONField(required=False, help_text='{"mon": [["09:00", "17:00"]], …}; a missing day is not worked')
    holidays = serializers.JSONField(required=False, help_text='["2026-12-25", …]')

    class Meta:
        model = BusinessCalendar
        fields = ["id", "tenant", "name", "timezone", "working_hours", "holidays", "is_default", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]
        validators: list = []  # one default calendar per tenant: checked by the service's full_clean()


class SlaPolicySerializer(TenantConfigSerializer):
    class Meta:
        model = SlaPolicy
        fields = ["id", "tenant", "name", "priority", "first_response_minutes", "resolution_minutes", "at_risk_percent", "calendar",
                  "is_active", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]
        validators: list = []  # one active policy per tenant and priority: checked by the service's full_clean()


class SlaPolicyFilter(django_filters.FilterSet):
    tenant = django_filters.CharFilter(field_name="tenant__slug")
    priority = django_filters.ChoiceFilter(choices=TicketPriority.choices)

    class Meta:
        model = SlaPolicy
        fields = ["tenant", "priority", "is_active", "calendar"]


class BusinessCalendarFilter(django_filters.FilterSet):
    tenant = django_filters.CharFilter(field_name="tenant__slug")

    class Meta:
        model = BusinessCalendar
        fields = ["tenant", "is_default"]


class SlaPolicyViewSet(TenantScopedViewSet):
    """SLA policies: minutes to first response and to resolution per priority, counted in business
    time of a calendar. Staff read; owners and admins write. No DELETE: switch one off
    (`is_active: false`); tickets keep the due times they were given."""

    queryset = SlaPolicy.objects.select_related("tenant", "calendar").order_by("tenant_id", "priority", "id")
    serializer_class = SlaPolicySerializer
    filterset_class = SlaPolicyFilter
    search_fields = ["name"]
    http_method_names = ["get", "post", "put", "patch", "head", "options"]
    create_service = staticmethod(sla_config.sla_policy_create)
    update_service = staticmethod(sla_config.sla_policy_update)


class BusinessCalendarViewSet(TenantScopedViewSet):
    """Business calendars: working hours per weekday in a time zone, plus holidays. No DELETE."""

    queryset = BusinessCalendar.objects.select_related("tenant").order_by("tenant_id", "name", "id")
    serializer_class = BusinessCalendarSerializer
    filterset_class = BusinessCalendarFilter
    search_fields = ["name"]
    http_method_names = ["get", "post", "put", "patch", "head", "options"]
    create_service = staticmethod(sla_config.calendar_create)
    update_service = staticmethod(sla_config.calendar_update)
