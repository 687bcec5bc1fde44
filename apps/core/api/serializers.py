"""Serializer base: related-object choices scoped to the user, model validation as in the admin."""

from __future__ import annotations

from collections.abc import Mapping

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from apps.core.api.errors import django_validation_to_drf
from apps.core.crypto import PLACEHOLDER

IGNORED_KEYS = frozenset({"csrfmiddlewaretoken"})  # sent by HTML forms, never a field


def reject_unknown_fields(serializer, data) -> None:
    """A 400 naming the writable fields when `data` carries a key `serializer` has no field for
    (seed 002's `is_enabled` for `enabled`), instead of DRF's silent drop. Read-only fields are
    known: a client may send back what it read."""
    if not isinstance(data, Mapping):
        return
    fields = serializer.fields
    unknown = [key for key in data if key not in fields and key not in IGNORED_KEYS]
    if unknown:
        writable = sorted(name for name, field in fields.items() if not field.read_only and not isinstance(field, serializers.HiddenField))
        message = f"Unknown field. The fields you can write here: {', '.join(writable)}."
        raise serializers.ValidationError({key: [message] for key in unknown})


class StrictFieldsMixin:
    """For a plain Serializer that takes a request body (`class X(StrictFieldsMixin, Serializer)`):
    unknown keys are a 400 (`reject_unknown_fields`). ScopedModelSerializer has it built in."""

    def to_internal_value(self, data):
        reject_unknown_fields(self, data)
        return super().to_internal_value(data)


class ScopedModelSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    """A ModelSerializer whose foreign keys accept only rows the requesting user can see, and
    whose `validate` runs the model's `clean()` so the API rejects what the admin rejects."""

    def get_fields(self):
        fields = super().get_fields()
        request = self.context.get("request")
        user = getattr(request, "user", None)
        for field in fields.values():
            target = field.child_relation if isinstance(field, serializers.ManyRelatedField) else field
            queryset = getattr(target, "queryset", None)
            if queryset is not None and hasattr(queryset, "visible_to"):
                target.queryset = queryset.visible_to(user)
        return fields

    def validate(self, attrs):
        attrs = super().validate(attrs)
        model = self.Meta.model
        concrete = {f.name for f in model._meta.concrete_fields}
        values = {k: v for k, v in attrs.items() if k in concrete}
        instance = self.instance or model()
        original = {k: getattr(instance, k) for k in values if hasattr(instance, k)} if self.instance else {}
        for key, value in values.items():
            setattr(instance, key, value)
        try:
            instance.clean()
        except DjangoValidationError as exc:
            raise django_validation_to_drf(exc) from exc
        finally:
            for key, value in original.items():
                setattr(instance, key, value)
        return attrs


class WriteOnlySecretField(serializers.CharField):
    """A secret accepted on write and shown as a placeholder on read; sending the placeholder
    back means "keep what is stored" (the field is then dropped from validated data)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_blank", True)
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_representation(self, value):
        return PLACEHOLDER if value else ""

    def validate_empty_values(self, data):
        if data == PLACEHOLDER:
            raise serializers.SkipField()
        return super().validate_empty_values(data)
