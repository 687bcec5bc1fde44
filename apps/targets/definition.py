"""Validation of job definitions: a JSON schema per step type, the parameters' JSON schema,
and the templates inside steps. Errors name the step and the field (`steps[2] "deploy": command: ...`)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from apps.core.regex import check_user_schema, iter_user_schema_errors

from .choices import Shell, StepType
from .templating import TemplateError, UnsafeValue, check_script, variables

_COMMON = {
    "name": {"type": "string", "minLength": 1, "maxLength": 200},
    "type": {"type": "string"},
    "timeout": {"type": "integer", "minimum": 1, "maximum": 86400},
}
_HTTP_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def _schema(required: list[str], props: dict) -> dict:
    return {
        "type": "object",
        "required": ["type", *required],
        "properties": {**_COMMON, **props},
        "additionalProperties": False,
    }


STEP_SCHEMAS: dict[str, dict] = {
    StepType.WINRM_EXEC: _schema(["script"], {
        "shell": {"enum": [Shell.POWERSHELL, Shell.CMD]},
        "script": {"type": "string", "minLength": 1, "maxLength": 100_000},
    }),
    StepType.WINRM_COPY: _schema(["content", "path"], {
        "content": {"type": "string", "maxLength": 5_000_000},
        "path": {"type": "string", "minLength": 1, "maxLength": 1000},
    }),
    StepType.SSH_EXEC: _schema(["command"], {
        "shell": {"enum": [Shell.SH, Shell.BASH]},  # absent: the login shell
        "command": {"type": "string", "minLength": 1, "maxLength": 100_000},
    }),
    StepType.SSH_COPY: _schema(["content", "path"], {
        "content": {"type": "string", "maxLength": 5_000_000},
        "path": {"type": "string", "minLength": 1, "maxLength": 1000},
        "mode": {"type": "string", "pattern": "^0?[0-7]{3}$"},
    }),
    StepType.HTTP_REQUEST: _schema(["url"], {
        "method": {"enum": _HTTP_METHODS},
        "url": {"type": "string", "pattern": "^https?://", "maxLength": 4000},
        "headers": {"type": "object", "additionalProperties": {"type": "string"}},
        "body": {"type": "string", "maxLength": 1_000_000},
        "expected_status": {"oneOf": [
            {"type": "integer", "minimum": 100, "maximum": 599},
            {"type": "array", "items": {"type": "integer", "minimum": 100, "maximum": 599}, "minItems": 1},
        ]},
        "verify_tls": {"type": "boolean"},
    }),
}
_VALIDATORS = {k: Draft202012Validator(v) for k, v in STEP_SCHEMAS.items()}
DEFAULT_STEP_TIMEOUT = 300

# Which fields of a step are templates, and how their values are escaped.
TEMPLATE_FIELDS: dict[str, dict[str, str]] = {
    StepType.WINRM_EXEC: {"script": "shell"},  # escape by the step's shell
    StepType.WINRM_COPY: {"content": "raw", "path": "raw"},
    StepType.SSH_EXEC: {"command": Shell.SH},
    StepType.SSH_COPY: {"content": "raw", "path": "raw"},
    StepType.HTTP_REQUEST: {"url": "url", "body": "raw"},
}


def step_label(index: int, step) -> str:
    name = step.get("name") if isinstance(step, dict) else None
    return f'steps[{index}]' + (f' "{name}"' if name else "")


def escape_for(step: dict, field: str) -> str:
    how = TEMPLATE_FIELDS[step["type"]][field]
    return step.get("shell", Shell.POWERSHELL) if how == "shell" else how


def validate_parameters_schema(schema) -> None:
    if not isinstance(schema, dict):
        raise ValidationError({"parameters_schema": "The parameters schema must be a JSON object."})
    try:
        check_user_schema(schema)  # patterns must run on RE2 (linear time)
    except SchemaError as exc:
        raise ValidationError({"parameters_schema": f"Not a valid JSON schema: {exc.message}"}) from exc


def validate_steps(steps, parameters_schema: dict | None = None) -> None:
    """Raise ValidationError({"steps": [...]}) listing every bad step and field."""
    if not isinstance(steps, list) or not steps:
        raise ValidationError({"steps": "A job needs a list of at least one step."})
    known = set((parameters_schema or {}).get("properties", {})) | {"target", "run"}
    errors: list[str] = []
    for index, step in enumerate(steps):
        label = step_label(index, step)
        if not isinstance(step, dict):
            errors.append(f"{label}: must be an object")
            continue
        kind = step.get("type")
        if kind not in _VALIDATORS:
            errors.append(f"{label}: type: must be one of {', '.join(sorted(_VALIDATORS))}")
            continue
        for err in sorted(_VALIDATORS[kind].iter_errors(step), key=lambda e: list(e.path)):
            field = ".".join(str(p) for p in err.path) or (err.validator == "required" and err.message.split("'")[1]) or "step"
            errors.append(f"{label}: {field}: {err.message}")
        for field in TEMPLATE_FIELDS[kind]:
            if isinstance(step.get(field), str):
                errors.extend(_check_template(label, field, step[field], known, shell=_script_shell(step, field)))
        for name, value in (step.get("headers") or {}).items() if isinstance(step.get("headers"), dict) else []:
            if isinstance(value, str):
                errors.extend(_check_template(label, f"headers.{name}", value, known))
    if errors:
        raise ValidationError({"steps": errors})


def _script_shell(step: dict, field: str) -> str | None:
    how = escape_for(step, field)
    return how if how in Shell.values else None


def _check_template(label, field, text, known, *, shell: str | None = None) -> list[str]:
    try:
        names = variables(text)
        if shell:
            check_script(text, shell=shell)  # a placeholder where the shell cannot expand a variable
    except (TemplateError, UnsafeValue) as exc:
        return [f"{label}: {field}: template error: {exc}"]
    unknown = sorted(names - known)
    if unknown:
        return [f"{label}: {field}: unknown parameter(s) {', '.join(unknown)} (declare them in the parameters schema)"]
    return []


def apply_defaults(schema: dict, params: dict) -> dict:
    out = dict(params or {})
    for name, prop in (schema or {}).get("properties", {}).items():
        if name not in out and isinstance(prop, dict) and "default" in prop:
            out[name] = prop["default"]
    return out


def validate_params(schema: dict, params) -> dict:
    """Parameters of a run, with defaults filled in, checked against the job's schema."""
    if not isinstance(params, dict):
        raise ValidationError({"params": "Parameters are a JSON object."})
    params = apply_defaults(schema, params)
    if schema:
        errs = sorted(iter_user_schema_errors(schema, params), key=lambda e: list(e.path))
        if errs:
            raise ValidationError({"params": [f"{'.'.join(map(str, e.path)) or 'params'}: {e.message}" for e in errs]})
    return params
