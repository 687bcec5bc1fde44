"""Ticket lists page by cursor (`KeysetPagination`); `?page=N` and the admin changelist count at
most 10,000 rows and still reach every page past them (`apps.core.paginator`)."""

from apps.core.api.pagination import KeysetPagination
from apps.core.paginator import COUNT_CAP, LargeTablePaginator

__all__ = ["COUNT_CAP", "CappedCountPaginator", "TicketPagination"]


class CappedCountPaginator(LargeTablePaginator):
    cap = COUNT_CAP


class TicketPagination(KeysetPagination):
    django_paginator_class = CappedCountPaginator
