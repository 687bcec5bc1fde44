"""Every admin page a role can reach answers 200, a redirect or a styled refusal — never a 500.

For every role of the test world (tenant A's staff and customer, the partner's and the platform's
people) the crawl opens the admin index, each app index, every changelist and add page, and for
one row of each model (tenant A's, made by the isolation cases) its change, history and delete
confirmation pages, plus every admin page that takes no argument. A refusal is the admin's own
page (templates/403.html), not Django's bare "403 Forbidden".
"""

from __future__ import annotations

import pytest
from django.contrib.admin.sites import site
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests.isolation import collect_cases

CRAWLERS = [("a", r) for r in ("owner", "admin", "operator", "support_agent", "viewer", "customer")] + [
    ("partner", "admin"),
    ("partner", "support_agent"),
    ("platform", "admin"),
    ("platform", "viewer"),
]


def _rows(world) -> dict:
    """One row per admin model: tenant A's from the isolation cases, else any existing row."""
    rows = {}
    for case in collect_cases():
        if case.admin_model and case.admin_model not in rows:
            rows[case.admin_model] = case.make(world, "a")
    for model in site._registry:
        if model not in rows:
            rows[model] = model._default_manager.order_by("pk").first()
    return rows


def _argless_admin_urls() -> list[str]:
    """Admin pages outside the ModelAdmins' own URL sets that take no argument."""
    urls = []

    def walk(patterns, prefix):
        for p in patterns:
            if isinstance(p, URLResolver):
                walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern) and not p.pattern.regex.groups:
                route = prefix + str(p.pattern)
                route = route.replace("^", "").replace("$", "").replace("\\Z", "")
                if route.startswith("admin/") and "<" not in route and "(" not in route:
                    urls.append("/" + route)

    walk(get_resolver().url_patterns, "")
    return sorted(set(urls) - {"/admin/logout/", "/admin/switch-organization/"})


def _pages(rows) -> list[str]:
    pages = _argless_admin_urls()
    for model, row in rows.items():
        info = (model._meta.app_label, model._meta.model_name)
        pages.append(reverse("admin:{}_{}_changelist".format(*info)))
        pages.append(reverse("admin:{}_{}_add".format(*info)))
        if row is not None:
            for view in ("change", "history", "delete"):
                pages.append(reverse(f"admin:{info[0]}_{info[1]}_{view}", args=[row.pk]))
    return pages


@pytest.mark.parametrize("who", CRAWLERS, ids=lambda w: f"{w[0]}-{w[1]}")
def test_admin_crawl_never_fails(who, world, client):
    rows = _rows(world)
    client.raise_request_exception = False  # a 500 is a finding, collected with the others
    client.force_login(world.user(*who))
    failures = []
    reached = 0
    index = client.get("/admin/")
    assert index.status_code in (200, 302)
    # the app indexes the role is offered (others are "not found" by Django's design)
    app_urls = [app["app_url"] for app in index.context["app_list"]] if index.status_code == 200 else []
    for url in [*app_urls, *_pages(rows)]:
        response = client.get(url)
        status = response.status_code
        if status == 200:
            reached += 1
        elif status == 302:
            continue
        elif status == 403:
            body = response.content.decode(errors="replace")
            if 'id="site-name"' not in body or "403" not in body and "not allowed" not in body.lower():
                failures.append(f"{url}: bare 403 page")
        else:
            failures.append(f"{url}: {status}")
    assert not failures, "\n".join(failures)
    if who[1] != "customer":
        assert reached > 1, "the crawl reached nothing: the test would pass vacuously"
