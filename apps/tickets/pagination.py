"""Counting a million rows on every page view is what makes helpdesk lists slow; we count at
most `cap` + 1 rows (`SELECT COUNT(*) FROM (SELECT … LIMIT cap+1)`). A count of cap + 1 means
"more than cap"; filters narrow it to an exact figure."""

from django.core.paginator import Paginator
from django.utils.functional import cached_property

from apps.core.api.pagination import PortalPagination

COUNT_CAP = 10_000


class CappedCountPaginator(Paginator):
    cap = COUNT_CAP

    @cached_property
    def count(self):
        qs = self.object_list
        if hasattr(qs, "order_by"):
            return qs.order_by()[: self.cap + 1].count()
        return len(qs)


class TicketPagination(PortalPagination):
    django_paginator_class = CappedCountPaginator
