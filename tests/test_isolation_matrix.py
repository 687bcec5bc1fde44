"""Tenant isolation, for every registered endpoint and admin changelist (see tests/isolation.py)."""

from __future__ import annotations

import pytest
from django.contrib.admin.sites import site
from django.forms import ModelChoiceField
from django.forms.models import model_to_dict
from django.urls import reverse

from tests.isolation import collect_admin_views, collect_cases, collect_tenant_pages

CASES = collect_cases()
PAGES = collect_tenant_pages()
API_CASES = [c for c in CASES if c.api_list]
# Actors from tenant A's side (plus a partner that serves A only); the target is tenant B's row.
ACTORS = [("a", r) for r in ("owner", "admin", "operator", "support_agent", "viewer", "customer")] + [
    ("partner", "admin"),
    ("partner", "support_agent"),
]


def _ids(payload, lookup):
    rows = payload.get("results", payload) if isinstance(payload, dict) else payload
    key = "slug" if lookup == "slug" else "id"
    return {str(r.get(key)) for r in rows if isinstance(r, dict)}


def _snapshot(row):
    row.refresh_from_db()
    return {k: v for k, v in model_to_dict(row).items() if k not in ("updated_at",)}


@pytest.mark.parametrize("case", API_CASES, ids=str)
@pytest.mark.parametrize("actor", ACTORS, ids=lambda a: f"{a[0]}-{a[1]}")
def test_api_never_crosses_tenants(case, actor, world, api):
    _never_crosses(case, world, api.as_user(world.user(*actor)))


# API tokens are a second way in (issue 19.1): the same checks for tokens of a few of A's actors.
TOKEN_ACTORS = [("a", "owner"), ("a", "viewer"), ("a", "customer"), ("partner", "admin")]


@pytest.mark.parametrize("case", API_CASES, ids=str)
@pytest.mark.parametrize("actor", TOKEN_ACTORS, ids=lambda a: f"{a[0]}-{a[1]}")
def test_api_token_never_crosses_tenants(case, actor, world, api):
    _never_crosses(case, world, api.as_token(world.user(*actor)))


def _never_crosses(case, world, client):
    foreign = case.make(world, "b")
    key = str(getattr(foreign, case.lookup))

    listed = client.get(reverse(case.api_list))
    assert listed.status_code in (200, 403), listed.content
    if listed.status_code == 200:
        assert key not in _ids(listed.json(), case.lookup)

    if case.api_detail:
        url = reverse(case.api_detail, kwargs={case.lookup if case.lookup != "pk" else "pk": key})
        assert client.get(url).status_code in (403, 404)
        before = _snapshot(foreign)
        assert client.patch(url, case.patch_payload, format="json").status_code in (403, 404, 405)
        assert client.delete(url).status_code in (403, 404, 405)
        assert _snapshot(foreign) == before

    if case.create_payload:
        model = type(foreign)
        count = model._base_manager.count()
        created = client.post(reverse(case.api_list), case.create_payload(world, foreign), format="json")
        assert created.status_code in (400, 403, 404), created.content
        assert model._base_manager.count() == count


@pytest.mark.parametrize("case", API_CASES, ids=str)
def test_api_owner_sees_own_rows(case, world, api):
    """Positive control: the matrix would pass vacuously if every endpoint refused everyone."""
    own = case.make(world, "a")
    client = api.as_user(world.user("a", "owner"))
    listed = client.get(reverse(case.api_list), {"page_size": 500})
    assert listed.status_code == 200, listed.content
    assert str(getattr(own, case.lookup)) in _ids(listed.json(), case.lookup)
    if case.api_detail:
        url = reverse(case.api_detail, kwargs={case.lookup if case.lookup != "pk" else "pk": getattr(own, case.lookup)})
        assert client.get(url).status_code == 200


STAFF = [a for a in ACTORS if a[1] != "customer"]


@pytest.mark.parametrize("case", [c for c in CASES if c.admin_model], ids=str)
@pytest.mark.parametrize("actor", STAFF, ids=lambda a: f"{a[0]}-{a[1]}")
def test_admin_never_crosses_tenants(case, actor, world, client):
    foreign = case.make(world, "b")
    model = case.admin_model
    client.force_login(world.user(*actor))
    info = (model._meta.app_label, model._meta.model_name)

    changelist = client.get(reverse("admin:{}_{}_changelist".format(*info)))
    assert changelist.status_code in (200, 302, 403)
    if changelist.status_code == 200:
        shown = {obj.pk for obj in changelist.context["cl"].result_list}
        assert foreign.pk not in shown

    change = client.get(reverse("admin:{}_{}_change".format(*info), args=[foreign.pk]))
    assert change.status_code in (302, 403, 404)
    if change.status_code == 302:
        assert "/login/" in change["Location"] or change["Location"].rstrip("/").endswith("/admin")

    add = client.get(reverse("admin:{}_{}_add".format(*info)))
    if add.status_code == 200:
        form = add.context["adminform"].form
        for name, field in form.fields.items():
            if not isinstance(field, ModelChoiceField):
                continue
            qs = field.queryset
            if any(f.name == "tenant" for f in qs.model._meta.fields):
                assert not qs.filter(tenant=world.tenant("b")).exists(), f"{name} offers tenant B's rows"
            if qs.model._meta.label == "tenants.Organization":
                assert not qs.filter(pk=world.tenant("b").pk).exists(), f"{name} offers tenant B"


@pytest.mark.parametrize("case", [c for c in CASES if c.admin_model], ids=str)
def test_admin_owner_sees_own_rows(case, world, client):
    own = case.make(world, "a")
    model = case.admin_model
    client.force_login(world.user("a", "owner"))
    info = (model._meta.app_label, model._meta.model_name)
    changelist = client.get(reverse("admin:{}_{}_changelist".format(*info)))
    assert changelist.status_code == 200
    assert own.pk in {obj.pk for obj in changelist.context["cl"].result_list}
    assert client.get(reverse("admin:{}_{}_change".format(*info), args=[own.pk])).status_code == 200


def test_every_portal_admin_is_in_the_matrix():
    """A new admin changelist for a tenant-owned model must be added to the matrix."""
    covered = {c.admin_model for c in CASES if c.admin_model}
    missing = [
        m._meta.label
        for m in site._registry
        if m.__module__.startswith("apps.") and hasattr(m, "scope_queryset") and m not in covered
    ]
    assert not missing, f"add these to an isolation_cases.py: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=str)
@pytest.mark.parametrize("actor", ACTORS, ids=lambda a: f"{a[0]}-{a[1]}")
def test_tenant_pages_never_cross_tenants(page, actor, world, api, client):
    """Pages addressed by a tenant's slug (the timeline): tenant B's answer to A's people is a refusal."""
    url = reverse(page.url_name, args=[world.tenant("b").slug])
    user = world.user(*actor)
    if page.admin:
        client.force_login(user)
        answer = client.get(url)
        assert answer.status_code in (302, 403, 404)
        if answer.status_code == 302:
            assert "/login/" in answer["Location"]
    else:
        answer = api.as_user(user).get(url)
        assert answer.status_code in (403, 404), answer.content
    assert world.tenant("b").name not in answer.content.decode(errors="replace")


@pytest.mark.parametrize("page", PAGES, ids=str)
def test_tenant_pages_open_for_their_own_tenant(page, world, api, client):
    """Positive control: A's owner gets A's page."""
    url = reverse(page.url_name, args=[world.tenant("a").slug])
    owner = world.user("a", "owner")
    if page.admin:
        client.force_login(owner)
        answer = client.get(url)
    else:
        answer = api.as_user(owner).get(url)
    assert answer.status_code == 200, answer.content


VIEWS = collect_admin_views()


@pytest.mark.parametrize("view", VIEWS, ids=str)
@pytest.mark.parametrize("actor", ACTORS, ids=lambda a: f"{a[0]}-{a[1]}")
def test_admin_views_never_show_another_tenant(view, actor, world, client):
    """The index's panels and the styled refusal: nothing of tenant B for anyone of A's side."""
    view.make(world, "a")
    foreign = view.make(world, "b")
    client.force_login(world.user(*actor))
    answer = client.get(view.path)
    assert answer.status_code in (200, 302, 403)
    body = answer.content.decode(errors="replace")
    assert foreign not in body and world.tenant("b").name not in body


@pytest.mark.parametrize("view", VIEWS, ids=str)
def test_admin_views_show_their_own_tenant(view, world, client):
    """Positive control: the view's `sees` actor gets tenant A's text (the check above can fail)."""
    own = view.make(world, "a")
    client.force_login(world.user(*view.sees))
    answer = client.get(view.path)
    assert answer.status_code in view.statuses and own in answer.content.decode(errors="replace")


def test_every_tenant_addressed_url_is_in_the_matrix():
    """A new URL that names a tenant by slug must be a model case (detail by slug) or a TenantPage."""
    from django.urls import URLResolver, get_resolver

    def walk(patterns, prefix=""):
        for p in patterns:
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns, prefix + str(p.pattern))
            else:
                yield prefix + str(p.pattern), p.name

    covered = {c.api_detail for c in CASES if c.api_detail and c.lookup == "slug"} | {p.url_name for p in PAGES}
    missing = sorted({name for route, name in walk(get_resolver().url_patterns)
                      if ("<str:slug>" in route or "(?P<slug>" in route) and name and name not in covered})
    assert not missing, f"add these to an isolation_cases.py (IsolationCase with lookup='slug' or TENANT_PAGES): {missing}"


# -- exports: the "Export" of a changelist (CSV/XLSX, apps.core.admin.ScopedExportMixin) -------
EXPORT_CASES = [c for c in CASES if c.admin_model and hasattr(site._registry.get(c.admin_model), "export_action")]


def _exported_keys(client, model) -> set[str] | None:
    """The first column of the model's CSV export as the client gets it (None: refused)."""
    import csv
    import io

    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_export")
    page = client.get(url)
    if page.status_code != 200:
        assert page.status_code in (302, 403), page.status_code
        return None
    fields = {name: "on" for name in page.context["form"].fields if name not in ("format", "resource", "export_items")}
    answer = client.post(url, {"format": 0, "resource": 0, **fields})  # 0: CSV
    assert answer.status_code == 200 and answer["Content-Type"].startswith("text/csv"), answer.content[:300]
    return {row[0] for row in list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))[1:]}


def _key(row, model) -> str:
    admin_ = site._registry[model]
    resource = admin_.get_export_resource_classes(None)[0]()
    return str(resource.export_resource(row)[0])


@pytest.mark.parametrize("case", EXPORT_CASES, ids=str)
@pytest.mark.parametrize("actor", STAFF, ids=lambda a: f"{a[0]}-{a[1]}")
def test_admin_exports_never_cross_tenants(case, actor, world, client):
    foreign = case.make(world, "b")
    client.force_login(world.user(*actor))
    keys = _exported_keys(client, case.admin_model)
    assert keys is None or _key(foreign, case.admin_model) not in keys


@pytest.mark.parametrize("case", EXPORT_CASES, ids=str)
def test_admin_exports_hold_own_rows(case, world, client):
    own = case.make(world, "a")
    client.force_login(world.user("a", "owner"))
    assert _key(own, case.admin_model) in _exported_keys(client, case.admin_model)


def test_exports_are_in_the_matrix():
    assert {c.admin_model._meta.label for c in EXPORT_CASES} >= {"tickets.Ticket", "alerts.Alert", "targets.JobRun", "notifications.Delivery"}
