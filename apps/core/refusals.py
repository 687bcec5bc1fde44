"""The answer to a page someone may not see (Django's handler403): under /api/ the API's JSON
error; elsewhere the admin's own styled page saying who they are acting as and, for the pages
people most often reach by following a link, why and where to go instead."""

from __future__ import annotations

from django.http import JsonResponse
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse

from .tenancy import acting

# path prefix → (why, [(link text, URL name)]) for pages tenant staff reach and may not see
REASONS: list[tuple[str, str, list[tuple[str, str]]]] = [
    (
        "/admin/django_celery_beat/",
        "Celery beat's periodic tasks belong to the platform: they run every tenant's schedules. "
        "You change a schedule's timing, pause or resume it on the schedule's own page.",
        [
            ("Deployment schedules", "admin:deployments_deploymentschedule_changelist"),
            ("Job schedules", "admin:targets_jobschedule_changelist"),
        ],
    ),
    (
        "/admin/auth/",
        "Accounts are managed by the platform's administrators. The people of your organization are listed under People.",
        [("People", "admin:core_portaluser_changelist")],
    ),
    ("/admin/tenants/", "Organizations and memberships are managed by your organization's owners and administrators.", []),
]


def _hints(path: str) -> tuple[str, list[tuple[str, str]]]:
    for prefix, why, links in REASONS:
        if path.startswith(prefix):
            urls = []
            for text, name in links:
                try:
                    urls.append((text, reverse(name)))
                except NoReverseMatch:
                    continue
            return why, urls
    return "", []


def permission_denied(request, exception=None):
    message = str(exception or "") or "Your role in this organization does not allow this page."
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": message, "errors": {}}, status=403)
    context = {"exception": message, "title": "Not allowed", "request_path": request.path}
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        try:
            ctx = acting(user)
        except Exception:  # no usable membership: the page still answers, without the role line
            ctx = None
        if ctx is not None and ctx.role:
            from django.apps import apps  # tenants sits above core: looked up by name

            org = apps.get_model("tenants", "Organization")._default_manager.filter(pk=ctx.organization_id).only("name").first()
            context["acting_line"] = (
                f"{user.get_username()}, acting as {ctx.role.replace('_', ' ')} of {org.name if org else 'your organization'}"
            )
    context["why"], context["instead"] = _hints(request.path)
    response = TemplateResponse(request, "403.html", context, status=403)
    return response.render()
