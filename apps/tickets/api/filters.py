import django_filters
from django.db import connection
from django.db.models import Q

from ..choices import TicketPriority, TicketStatus
from ..models import Ticket


class TicketFilter(django_filters.FilterSet):
    """`?status=open,waiting&priority=high&assignee=12&tag=vip&breached=true&created_after=…`"""

    status = django_filters.BaseInFilter(field_name="status", help_text=f"One or more of {', '.join(TicketStatus.values)}, comma-separated.")
    priority = django_filters.BaseInFilter(field_name="priority", help_text=f"One or more of {', '.join(TicketPriority.values)}.")
    assignee = django_filters.NumberFilter(field_name="assignee_id")
    unassigned = django_filters.BooleanFilter(field_name="assignee", lookup_expr="isnull")
    tag = django_filters.CharFilter(method="filter_tag")
    breached = django_filters.BooleanFilter(method="filter_breached")
    at_risk = django_filters.BooleanFilter(field_name="sla_at_risk")
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    target_type = django_filters.CharFilter(field_name="target_type")
    tenant = django_filters.CharFilter(field_name="tenant__slug")

    class Meta:
        model = Ticket
        fields = ["status", "priority", "assignee", "tag", "breached", "target_type"]

    def filter_tag(self, queryset, name, value):
        if connection.vendor == "postgresql":
            return queryset.filter(tags__contains=[value])
        return queryset.filter(tags__icontains=f'"{value}"')

    def filter_breached(self, queryset, name, value):
        cond = Q(first_response_breached=True) | Q(resolution_breached=True)
        return queryset.filter(cond) if value else queryset.exclude(cond)
