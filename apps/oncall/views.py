"""The public iCalendar feed: a plain view (the secret in the URL is the credential)."""

from __future__ import annotations

from django.http import Http404, HttpResponse

from .services import feed_render


def feed(request, token: str):
    body = feed_render(token)
    if body is None:
        raise Http404("No such feed (unknown or revoked).")
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Cache-Control"] = "private, max-age=300"
    return response
