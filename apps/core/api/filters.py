"""The API's filter backend: django-filter, plus a 400 naming the allowed values when a filter
over a choice field (`?status=bogus`, `?status=open,bogus`) gets a value outside its choices.

django-filter says only "Select a valid choice" for a ChoiceFilter and nothing at all for a
CharFilter or an `in` filter over a choice field (the list comes back empty). The choices are
the filter's own, else the model field's the filter reads (`field_name`, through relations).
"""

from __future__ import annotations

from django.core.exceptions import FieldDoesNotExist
from django_filters import filters as df
from django_filters import utils
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.exceptions import ValidationError
from rest_framework.settings import api_settings

_EXACT_LOOKUPS = {"exact", "in"}  # iexact, contains… take other spellings


def _model_field_choices(model, field_name: str):
    field = None
    for part in field_name.split("__"):
        if model is None:
            return None
        try:
            field = model._meta.get_field(part)
        except FieldDoesNotExist:
            return None
        model = field.related_model
    return getattr(field, "choices", None)


def _allowed(filterset, name, filter_) -> list[str] | None:
    if getattr(filter_, "method", None) is not None and not isinstance(filter_, (df.ChoiceFilter, df.MultipleChoiceFilter)):
        return None
    choices = filter_.extra.get("choices")
    if choices is None:
        if filter_.lookup_expr not in _EXACT_LOOKUPS or not isinstance(filter_, (df.CharFilter, df.BaseInFilter, df.ChoiceFilter)):
            return None
        choices = _model_field_choices(filterset._meta.model, filter_.field_name)
    if callable(choices):
        choices = choices()
    if not choices:
        return None
    return [str(value) for value, _ in choices if value not in ("", None)]


def unknown_choice_errors(filterset, params) -> dict:
    errors = {}
    for name, filter_ in filterset.filters.items():
        if name not in params:
            continue
        allowed = _allowed(filterset, name, filter_)
        if allowed is None:
            continue
        if isinstance(filter_, df.MultipleChoiceFilter):
            values = params.getlist(name)
        elif isinstance(filter_, df.BaseInFilter):
            values = params.get(name, "").split(",")
        else:
            values = [params.get(name, "")]
        bad = [v for v in values if v != "" and v not in allowed]
        if bad:
            errors[name] = [f"{', '.join(repr(v) for v in bad)} is not one of the allowed values: {', '.join(allowed)}."]
    return errors


# query parameters that feed no filter: paging, ordering, search, format
NON_FILTER_PARAMS = frozenset({"page", "page_size", "cursor", "format", api_settings.ORDERING_PARAM, api_settings.SEARCH_PARAM})
_runs_when_empty: dict[type, bool] = {}


def runs_when_empty(filterset_class) -> bool:
    """Whether the filterset can change or refuse a list given none of its parameters: a required
    filter, or one named like a paging/ordering parameter. Otherwise every filter skips its empty
    value and the queryset comes back as it went in."""
    known = _runs_when_empty.get(filterset_class)
    if known is None:
        filters = filterset_class.base_filters
        known = _runs_when_empty[filterset_class] = any(f.extra.get("required") for f in filters.values()) or bool(
            NON_FILTER_PARAMS & filters.keys()
        )
    return known


class PortalFilterBackend(DjangoFilterBackend):
    """REST_FRAMEWORK's filter backend (settings.py): DjangoFilterBackend's steps, choices first.
    A request without any filter parameter skips building the filterset and its form (deep copies
    of every filter and form field: ~20 % of a 25-row ticket list's CPU, docs/api-performance.md)."""

    def filter_queryset(self, request, queryset, view):
        if NON_FILTER_PARAMS.issuperset(request.query_params.keys()):
            filterset_class = self.get_filterset_class(view, queryset)
            if filterset_class is None or not runs_when_empty(filterset_class):
                return queryset
        filterset = self.get_filterset(request, queryset, view)
        if filterset is None:
            return queryset
        errors = unknown_choice_errors(filterset, request.query_params)
        if errors:
            raise ValidationError(errors)
        if not filterset.is_valid() and self.raise_exception:
            raise utils.translate_validation(filterset.errors)
        return filterset.qs
