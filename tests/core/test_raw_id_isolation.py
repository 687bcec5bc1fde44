"""A raw-id field in any portal admin form names only rows within the user's reach: Django's
stock widget prints the label (and change link) of whatever id it is given, looked up with the
default manager, which told a tenant's staff the username behind any user id and the title of
another tenant's rows (found with issue 17.2)."""

from __future__ import annotations

import pytest
from django.contrib.admin.sites import site
from django.contrib.admin.widgets import ForeignKeyRawIdWidget
from django.contrib.auth import get_user_model
from django.test import RequestFactory

from apps.core.admin import TenantScopedAdmin
from tests.isolation import collect_cases


def _raw_id_fields():
    for model, model_admin in site._registry.items():
        if isinstance(model_admin, TenantScopedAdmin):
            for name in model_admin.raw_id_fields:
                yield pytest.param(model, name, id=f"{model._meta.label}.{name}")


def _row(world, related, key):
    if related is get_user_model():
        return world.user(key, "viewer")
    for case in collect_cases():
        row = case.make(world, key)
        if type(row)._meta.concrete_model is related._meta.concrete_model:
            return related._default_manager.get(pk=row.pk)
    return None


@pytest.mark.parametrize("model, name", list(_raw_id_fields()))
def test_raw_id_widget_never_names_another_tenants_row(model, name, world):
    model_admin = site._registry[model]
    request = RequestFactory().get("/admin/")
    request.user = world.user("a", "owner")
    form = model_admin.get_form(request)
    if name not in form.base_fields:
        pytest.skip("not on the add form")
    widget = form.base_fields[name].widget
    assert isinstance(widget, ForeignKeyRawIdWidget)
    related = model._meta.get_field(name).related_model
    foreign = _row(world, related, "b")
    if foreign is None:
        pytest.skip(f"no isolation case makes a {related._meta.label}")
    label, url = widget.label_and_url_for_value(foreign.pk)
    assert (label, url) == ("", ""), f"{model._meta.label}.{name} names {label!r}"
    assert widget.label_and_url_for_value("not-an-id") == ("", "")
    own = _row(world, related, "a")  # positive control: a row within reach keeps its label
    assert widget.label_and_url_for_value(own.pk)[0]
