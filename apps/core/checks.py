"""System checks that keep uploaded files private (run by `manage.py check` and at start-up).

Uploads (ticket attachments, customer exports) are served only through views that check
permissions on every request (`/api/v1/tickets/{id}/attachments/{id}/download/`,
`/api/v1/exports/{id}/download`). A URL pattern under MEDIA_URL, or MEDIA_ROOT inside a folder
that WhiteNoise or staticfiles publish, would hand the same files to anyone with the path.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core import checks
from django.urls import Resolver404, resolve


def _inside(child: Path, parent: Path) -> bool:
    child, parent = child.resolve(), parent.resolve()
    return child == parent or parent in child.parents or child in parent.parents


@checks.register(checks.Tags.security, deploy=False)
def media_is_not_public(app_configs=None, **kwargs):
    errors = []
    media = Path(settings.MEDIA_ROOT)
    published = [Path(settings.STATIC_ROOT), *(Path(p if isinstance(p, (str, Path)) else p[1]) for p in settings.STATICFILES_DIRS)]
    if getattr(settings, "WHITENOISE_ROOT", None):
        published.append(Path(settings.WHITENOISE_ROOT))
    for folder in published:
        if _inside(media, folder):
            errors.append(checks.Error(
                f"MEDIA_ROOT ({media}) overlaps {folder}, which is served to anyone as static files.",
                hint="Keep MEDIA_ROOT outside STATIC_ROOT, STATICFILES_DIRS and WHITENOISE_ROOT.",
                id="core.E101",
            ))
    probe = "/" + settings.MEDIA_URL.strip("/") + "/tickets/1/1/probe.txt"
    try:
        match = resolve(probe)
    except Resolver404:
        match = None
    if match is not None:
        errors.append(checks.Error(
            f"{probe} resolves to {match.view_name or match.func!r}: uploaded files would be served without permission checks.",
            hint="Remove static()/serve() for MEDIA_URL from the URLconf; files go out through the download views.",
            id="core.E102",
        ))
    return errors
