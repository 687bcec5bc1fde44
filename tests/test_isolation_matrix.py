"""Tenant isolation, for every registered endpoint and admin changelist (see tests/isolation.py)."""

from __future__ import annotations

import pytest
from django.contrib.admin.sites import site
from django.forms import ModelChoiceField
from django.forms.models import model_to_dict
from django.urls import reverse

from tests.isolation import collect_cases

CASES = collect_cases()
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
    foreign = case.make(world, "b")
    key = str(getattr(foreign, case.lookup))
    client = api.as_user(world.user(*actor))

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
