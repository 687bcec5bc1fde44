"""Schemas the admin's structured editors draw for a job's definition (apps/core/jsonform.py).
Validation stays with `definition.py` and the job services; these only describe the shape."""

from __future__ import annotations

from .definition import STEP_SCHEMAS
from .services.definitions import NOTIFY_SCHEMA

# a list of steps, each one of the step types (its "type" picks the form)
STEPS = {
    "type": "array",
    "minItems": 1,
    "items": {"oneOf": [
        {**schema, "title": kind, "properties": {**schema["properties"], "type": {"const": kind}}}
        for kind, schema in STEP_SCHEMAS.items()
    ]},
}

# the parameter schemas the form can draw: named parameters of simple types. Anything richer
# (nested objects, $defs, formats...) does not fit and keeps the JSON textarea.
_PARAMETER = {
    "type": "object",
    "properties": {
        "type": {"enum": ["string", "integer", "number", "boolean"]},
        "title": {"type": "string"},
        "description": {"type": "string"},
        "default": {"type": "string"},
        "enum": {"type": "array", "items": {"type": "string"}},
        "pattern": {"type": "string"},
        "minLength": {"type": "integer", "minimum": 0},
        "maxLength": {"type": "integer", "minimum": 0},
        "minimum": {"type": "number"},
        "maximum": {"type": "number"},
    },
    "additionalProperties": False,
}
PARAMETERS_SCHEMA = {
    "type": "object",
    "properties": {
        "type": {"enum": ["object"]},
        "properties": {"type": "object", "additionalProperties": _PARAMETER},
        "required": {"type": "array", "items": {"type": "string", "minLength": 1}, "uniqueItems": True},
        "additionalProperties": {"type": "boolean"},
    },
    "additionalProperties": False,
}

NOTIFY = NOTIFY_SCHEMA.schema
