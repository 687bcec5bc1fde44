"""A paginator for tables of millions of rows (admin changelists, page-numbered API lists):
it counts at most `cap` + 1 rows (`SELECT COUNT(*) FROM (SELECT … LIMIT cap+1)`), and past
the cap it still serves every page: each page reads one row more than it shows to know whether
another follows. The count then reads "more than 10,000" (docs/tickets.md, "Every row reachable")."""

from __future__ import annotations

import math

from django.core.paginator import EmptyPage, Page, PageNotAnInteger, Paginator
from django.utils.functional import cached_property

COUNT_CAP = 10_000


class MoreThan(int):
    """A count that stopped at the cap: computes as cap + 1, prints "more than cap" (Django's
    number formatting passes an int through str() when it does not group thousands)."""

    def __new__(cls, cap: int):
        return super().__new__(cls, cap + 1)

    def __str__(self):
        return f"more than {int(self) - 1:,}"


class LargeTablePaginator(Paginator):
    cap = COUNT_CAP

    @cached_property
    def count(self):
        qs = self.object_list
        if not hasattr(qs, "order_by"):
            return len(qs)
        n = qs.order_by()[: self.cap + 1].count()
        return MoreThan(self.cap) if n > self.cap else n

    @property
    def capped(self) -> bool:
        return isinstance(self.count, MoreThan)

    def page(self, number):
        if not self.capped:
            return super().page(number)
        try:
            number = int(number)
        except (TypeError, ValueError) as exc:
            raise PageNotAnInteger(self.error_messages["invalid_page"]) from exc
        if number < 1:
            raise EmptyPage(self.error_messages["min_page"])
        bottom = (number - 1) * self.per_page
        rows = list(self.object_list[bottom : bottom + self.per_page + 1])
        if not rows and number > 1:
            raise EmptyPage(self.error_messages["no_results"])
        more = len(rows) > self.per_page
        # pages known so far: those under the cap, or up to the one after this
        self.__dict__["num_pages"] = max(math.ceil(self.count / self.per_page), number + 1 if more else number)
        return Page(rows[: self.per_page], number, self)
