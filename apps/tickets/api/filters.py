import django_filters
from django.db import connection
from django.db.models import Q
from rest_framework.exceptions import ValidationError
from rest_framework.filters import OrderingFilter, SearchFilter
from rest_framework.settings import api_settings

from ..choices import TicketPriority, TicketStatus
from ..models import Ticket
from ..search import ALLOWED_ORDERINGS, ordering_for, search_tickets


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


class TicketSearchFilter(SearchFilter):
    """`?search=`: a ticket number (any case, exact) or a phrase in the subject or a message,
    ranked (`apps.tickets.search.search_tickets`, which the admin uses too)."""

    search_description = "A ticket number (any case) or a phrase found in the subject or a message."

    def filter_queryset(self, request, queryset, view):
        return search_tickets(queryset, request.query_params.get(self.search_param, ""), user=request.user)


class TicketOrderingFilter(OrderingFilter):
    """`?ordering=`: one of `ALLOWED_ORDERINGS`, each an index scan ending with the id; anything
    else is a 400 naming them. Without it: newest first, or by rank when searching."""

    ordering_description = f"One of {', '.join(ALLOWED_ORDERINGS)}; default -created_at (by rank when searching)."

    def get_ordering(self, request, queryset, view):
        name = request.query_params.get(self.ordering_param, "").strip()
        searching = bool(request.query_params.get(api_settings.SEARCH_PARAM, "").strip())
        try:
            return ordering_for(name or None, searching=searching)
        except ValueError as exc:
            raise ValidationError({self.ordering_param: [str(exc)]}) from exc
