from rest_framework.pagination import CursorPagination, PageNumberPagination


class PortalPagination(PageNumberPagination):
    """Page-number pagination, `?page_size=` up to 500."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class PortalCursorPagination(CursorPagination):
    """For tables that grow to millions of rows: stable, no COUNT(*)."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
    ordering = "-created_at"
