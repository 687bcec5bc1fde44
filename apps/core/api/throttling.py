"""The per-user API rate limit with a constant cost per request.

DRF's `UserRateThrottle` keeps, per user, the list of every request time of the last window and
reads and writes it whole on each request: at the default 6000/min a busy integration moves up
to ~50 KB of pickled floats to and from Redis per call. This one counts per window (one integer
per user and minute) and estimates the sliding window from the current and the previous count
(the previous weighted by how much of it still overlaps): one Redis round trip (`core.cache.count`)."""

from __future__ import annotations

from rest_framework.throttling import UserRateThrottle as DRFUserRateThrottle

from apps.core.cache import count


class UserRateThrottle(DRFUserRateThrottle):
    """DRF's "user" rate (authenticated users by id, anonymous ones by address)."""

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        now = self.timer()
        window, elapsed = divmod(now, self.duration)
        current, previous = count(f"{self.key}:{int(window)}", 1, self.duration * 2, also_get=f"{self.key}:{int(window) - 1}")
        estimate = current + previous * (1 - elapsed / self.duration)
        self._wait = self.duration - elapsed
        return estimate <= self.num_requests

    def wait(self):
        return self._wait
