"""JSON schemas of rule conditions (one per rule type), alert config, actions and escalation
steps, and a validator that turns jsonschema errors into a ValidationError a person can act on."""

from __future__ import annotations

import jsonschema
from croniter import croniter
from django.core.exceptions import ValidationError

from .choices import AlertType, RuleType, Severity

_MATCHERS = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["name", "value"],
        "properties": {
            "name": {"type": "string", "minLength": 1},
            "op": {"enum": ["=", "!=", "=~", "!~"]},
            "value": {"type": "string"},
        },
        "additionalProperties": False,
    },
}
MATCHERS_SCHEMA = _MATCHERS
_PRIORITIES = {"type": "array", "items": {"enum": ["low", "normal", "high", "urgent", "critical"]}, "uniqueItems": True}

CONDITION_SCHEMAS: dict[str, dict] = {
    RuleType.SLA: {
        "type": "object",
        "required": ["on"],
        "properties": {
            "on": {"type": "array", "items": {"enum": ["at_risk", "breached"]}, "minItems": 1, "uniqueItems": True},
            "priorities": _PRIORITIES,
            "at_risk_minutes": {"type": "integer", "minimum": 1, "maximum": 10080},
        },
        "additionalProperties": False,
    },
    RuleType.THRESHOLD: {
        "type": "object",
        "required": ["metric", "operator", "value"],
        "properties": {
            "metric": {"enum": ["alert_count"]},
            "alert_type": {"enum": list(AlertType.values)},
            "severity": {"enum": list(Severity.values)},
            "label_matchers": _MATCHERS,
            "operator": {"enum": [">", ">=", "<", "<=", "=="]},
            "value": {"type": "number"},
            "window_minutes": {"type": "integer", "minimum": 1, "maximum": 10080},
        },
        "additionalProperties": False,
    },
    RuleType.EVENT: {
        "type": "object",
        "required": ["event"],
        "properties": {
            "event": {"type": "string", "pattern": r"^[a-z_]+\.[a-z_*]+$"},
            "match": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}},
        },
        "additionalProperties": False,
    },
    RuleType.ALERT: {
        "type": "object",
        "properties": {
            "alert_types": {"type": "array", "items": {"enum": list(AlertType.values)}, "uniqueItems": True},
            "min_severity": {"enum": list(Severity.values)},
            "label_matchers": _MATCHERS,
        },
        "additionalProperties": False,
    },
    RuleType.SCHEDULE: {
        "type": "object",
        "required": ["cron"],
        "properties": {"cron": {"type": "string"}, "timezone": {"type": "string"}},
        "additionalProperties": False,
    },
}

ALERT_TYPES_SCHEMA = {"type": "array", "items": {"enum": list(AlertType.values)}, "uniqueItems": True}

ALERT_CONFIG_SCHEMA = {
    "type": "object",
    "properties": {
        "alert_type": {"enum": list(AlertType.values)},
        "severity": {"enum": list(Severity.values)},
        "title": {"type": "string", "maxLength": 300},
        "message": {"type": "string", "maxLength": 4000},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "expires_minutes": {"type": "integer", "minimum": 1},
    },
    "additionalProperties": False,
}

_CHANNELS = {"type": "array", "items": {"enum": ["in_app", "email", "slack", "teams", "telegram", "sms", "webhook"]}, "uniqueItems": True}
_ROLES = {"type": "array", "items": {"enum": ["owner", "admin", "operator", "support_agent", "viewer"]}, "uniqueItems": True}
ACTIONS_SCHEMA = {
    "type": "array",
    "items": {
        "oneOf": [
            {
                "type": "object",
                "required": ["type"],
                "properties": {
                    "type": {"const": "notify"},
                    "user_ids": {"type": "array", "items": {"type": "integer"}, "uniqueItems": True},
                    "roles": _ROLES,
                    "broadcast": {"type": "boolean"},
                    "channels": _CHANNELS,
                },
                "additionalProperties": False,
            },
            {
                "type": "object",
                "required": ["type"],
                "properties": {
                    "type": {"const": "open_ticket"},
                    "priority": {"enum": ["low", "normal", "high", "urgent", "critical"]},
                    "subject": {"type": "string", "maxLength": 300},
                    "assignee_id": {"type": "integer"},
                    "dedup_labels": {"type": "array", "items": {"type": "string", "minLength": 1}, "uniqueItems": True},
                },
                "additionalProperties": False,
            },
            {
                "type": "object",
                "required": ["type", "job_id"],
                "properties": {
                    "type": {"const": "run_job"},
                    "job_id": {"type": "integer"},
                    "target_ids": {"type": "array", "items": {"type": "integer"}},
                    "parameters": {"type": "object"},
                    "parameter_labels": {"type": "object", "additionalProperties": {"type": "string", "minLength": 1}},
                    "target_label": {"type": "string", "minLength": 1},
                    "require_approval": {"type": "boolean"},
                },
                "additionalProperties": False,
            },
        ]
    },
}

STEPS_SCHEMA = {
    "type": "array",
    "minItems": 1,
    "maxItems": 20,
    "items": {
        "type": "object",
        "required": ["wait_minutes"],
        "properties": {
            "wait_minutes": {"type": "integer", "minimum": 0, "maximum": 10080},
            "user_ids": {"type": "array", "items": {"type": "integer"}, "uniqueItems": True},
            "roles": _ROLES,
            "channels": _CHANNELS,
            # who is on call now in these schedules (apps/oncall); with oncall_next_layer also
            # the person of the next layer down (the backup)
            "oncall_schedule_ids": {"type": "array", "items": {"type": "integer"}, "uniqueItems": True, "minItems": 1, "maxItems": 20},
            "oncall_next_layer": {"type": "boolean"},
            # run this step this many more times (every wait_minutes, at least 1) before the next
            "repeat": {"type": "integer", "minimum": 0, "maximum": 20},
        },
        "additionalProperties": False,
        "anyOf": [{"required": ["user_ids"]}, {"required": ["roles"]}, {"required": ["oncall_schedule_ids"]}],
    },
}


def _where(error: jsonschema.ValidationError) -> str:
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return path.lstrip(".") or "(top level)"


def validate_json(value, schema: dict, *, field: str) -> None:
    """Validate `value` against `schema`; the error names the place and the problem."""
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
    if errors:
        best = jsonschema.exceptions.best_match(errors)
        raise ValidationError({field: f"{_where(best)}: {best.message}"})


def validate_conditions(rule_type: str, conditions) -> None:
    schema = CONDITION_SCHEMAS.get(rule_type)
    if schema is None:
        raise ValidationError({"rule_type": f"Unknown rule type {rule_type!r}."})
    validate_json(conditions, schema, field="conditions")
    if rule_type == RuleType.SCHEDULE:
        if not croniter.is_valid(conditions["cron"]):
            raise ValidationError({"conditions": f"cron: {conditions['cron']!r} is not a valid cron expression (m h dom mon dow)."})
        tz = conditions.get("timezone")
        if tz:
            from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

            try:
                ZoneInfo(tz)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValidationError({"conditions": f"timezone: unknown time zone {tz!r}."}) from exc
    if rule_type in (RuleType.THRESHOLD, RuleType.ALERT) and conditions.get("label_matchers"):
        from .matching import validate_matchers

        validate_matchers(conditions["label_matchers"], field="conditions")
