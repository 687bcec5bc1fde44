"""Every model the admin shows names its object: the admin's "The ticket “…” was added/changed"
messages, history and delete pages print `str(obj)`. For one saved row of every admin model (the
isolation cases' rows, else any existing row) `str()` must be non-empty, trimmed, free of "None"
and blank numbers, and not Django's "Model object (1)" fallback."""

from __future__ import annotations

import re

import pytest
from django.contrib.admin.sites import site

from tests.isolation import collect_cases


def _problem(text: str, model) -> str | None:
    if not text.strip():
        return "is blank"
    if text != text.strip() or "  " in text:
        return "has stray spaces (a blank part?)"
    if re.search(r"\bNone\b", text):
        return "shows None"
    if re.fullmatch(rf"{model.__name__} object \(.*\)", text):
        return "is Django's fallback"
    if re.search(r"^[·:—]|[·:—]$|[·:—]\s*[·:—]|“\s|\s”|\(\s*\)", text):
        return "has an empty part around a separator or in quotes"
    return None


@pytest.mark.django_db
def test_every_admin_model_names_its_saved_rows(world):
    rows = {}
    for case in collect_cases():
        if case.admin_model and case.admin_model in site._registry and case.admin_model not in rows:
            rows[case.admin_model] = case.make(world, "a")
    for model in site._registry:
        if model not in rows:
            rows[model] = model._default_manager.order_by("pk").first()
    named = [m for m, row in rows.items() if row is not None]
    assert len(named) > 30, "too few rows to judge"
    bad = [f"{model._meta.label}: {str(row)!r} {problem}" for model, row in rows.items()
           if row is not None and (problem := _problem(str(row), model))]
    assert not bad, "\n".join(bad)
