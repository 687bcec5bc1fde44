"""Regular expressions that users write (job parameter schemas, alert matchers) run on RE2, whose
matching time is linear in the input: no pattern can hold a worker by backtracking. RE2 has no
backreferences or lookaround; such patterns are refused with a message naming the construct.

`iter_user_schema_errors` validates with Draft 2020-12, every keyword that evaluates a pattern on RE2;
`check_user_schema` also checks the schema's own patterns (the metaschema's `format: regex`) with RE2."""

from __future__ import annotations

from functools import lru_cache

import re2
from jsonschema import Draft202012Validator, FormatChecker, validators
from jsonschema.exceptions import SchemaError
from jsonschema.exceptions import ValidationError as SchemaValidationError

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # RE2 would print every refused pattern to stderr

# RE2's parse error -> what a person calls the construct (order: longest prefix first)
_CONSTRUCTS = (
    ("invalid perl operator: (?<=", "a lookbehind (?<=…)"),
    ("invalid perl operator: (?<!", "a lookbehind (?<!…)"),
    ("invalid perl operator: (?=", "a lookahead (?=…)"),
    ("invalid perl operator: (?!", "a lookahead (?!…)"),
    ("invalid perl operator: (?>", "an atomic group (?>…)"),
    ("invalid repetition size", "a repetition count over 1000"),
    ("pattern too large", "a pattern too large to compile"),
)


class UnsupportedRegex(ValueError):
    """The pattern is not a regular expression the linear-time engine can run; the message says why."""


def _explain(pattern: str, error: str) -> str:
    construct = next((name for prefix, name in _CONSTRUCTS if error.startswith(prefix)), None)
    if construct is None and error.startswith("invalid escape sequence: \\") and error[-1:].isdigit():
        construct = f"a backreference {error.rsplit(': ', 1)[1]}"
    if construct is None and error.startswith("invalid perl operator: (?P") and "(?P=" in pattern:
        construct = "a backreference (?P=name)"
    if construct is None:
        return f"{pattern!r} is not a valid regular expression ({error})."
    return (f"{pattern!r} uses {construct}, which is not supported: patterns run on a linear-time engine "
            "(RE2) without backreferences or lookaround.")


@lru_cache(maxsize=4096)
def compile_user_regex(pattern: str, *, full: bool = False) -> re2._Regexp:
    """The compiled pattern (`full`: anchored at both ends, as Alertmanager's matchers are);
    UnsupportedRegex with a message a person can act on otherwise."""
    try:
        return re2.compile(f"^(?:{pattern})$" if full else pattern, options=_OPTIONS)
    except re2.error as exc:
        message = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise UnsupportedRegex(_explain(pattern, message)) from None
    except TypeError:
        raise UnsupportedRegex(f"{pattern!r} is not a string.") from None


def _pattern(validator, patrn, instance, schema):
    if not validator.is_type(instance, "string"):
        return
    try:
        found = compile_user_regex(patrn).search(instance)
    except UnsupportedRegex as exc:
        yield SchemaValidationError(str(exc))
        return
    if found is None:
        yield SchemaValidationError(f"{instance!r} does not match {patrn!r}")


def _pattern_properties(validator, pattern_properties, instance, schema):
    if not validator.is_type(instance, "object"):
        return
    for patrn, subschema in pattern_properties.items():
        try:
            regex = compile_user_regex(patrn)
        except UnsupportedRegex as exc:
            yield SchemaValidationError(str(exc))
            continue
        for k, v in instance.items():
            if regex.search(k):
                yield from validator.descend(v, subschema, path=k, schema_path=patrn)


def _additional_properties(validator, extra_schema, instance, schema):
    if not validator.is_type(instance, "object"):
        return
    try:
        patterns = [compile_user_regex(p) for p in schema.get("patternProperties", {})]
    except UnsupportedRegex as exc:
        yield SchemaValidationError(str(exc))
        return
    named = schema.get("properties", {})
    extras = sorted(k for k in instance if k not in named and not any(r.search(k) for r in patterns))
    if validator.is_type(extra_schema, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], extra_schema, path=extra)
    elif not extra_schema and extras:
        yield SchemaValidationError(f"Additional properties are not allowed ({', '.join(map(repr, extras))} unexpected)")


UNEVALUATED_WITH_PATTERNS = ("unevaluatedProperties cannot be combined with patternProperties here; "
                             "use additionalProperties next to patternProperties instead.")


def _uses(schema, keyword: str) -> bool:
    if isinstance(schema, dict):
        return keyword in schema or any(_uses(v, keyword) for v in schema.values())
    if isinstance(schema, list):
        return any(_uses(v, keyword) for v in schema)
    return False


_SCHEMA_FORMATS = FormatChecker(formats=())


@_SCHEMA_FORMATS.checks("regex", raises=UnsupportedRegex)
def _is_regex(instance) -> bool:
    if isinstance(instance, str):
        compile_user_regex(instance)
    return True


def check_user_schema(schema: dict) -> None:
    """Raise jsonschema's SchemaError for a schema that is not valid Draft 2020-12, or whose
    patterns RE2 cannot run (the message names the construct)."""
    try:
        Draft202012Validator.check_schema(schema, format_checker=_SCHEMA_FORMATS)
    except SchemaError as exc:
        if isinstance(exc.cause, UnsupportedRegex):
            where = "/".join(str(p) for p in exc.absolute_path)
            raise SchemaError(f"{where}: {exc.cause}" if where else str(exc.cause)) from None
        raise
    if _uses(schema, "unevaluatedProperties") and _uses(schema, "patternProperties"):
        raise SchemaError(UNEVALUATED_WITH_PATTERNS)


_ParamsValidator = validators.extend(Draft202012Validator, {
    "pattern": _pattern,
    "patternProperties": _pattern_properties,
    "additionalProperties": _additional_properties,
})


def iter_user_schema_errors(schema: dict, instance):
    """jsonschema errors of `instance` against a user's schema, every pattern evaluated on RE2
    (jsonschema's unevaluatedProperties would run patternProperties on Python's re: refused)."""
    if _uses(schema, "unevaluatedProperties") and _uses(schema, "patternProperties"):
        yield SchemaValidationError(UNEVALUATED_WITH_PATTERNS)
        return
    yield from _ParamsValidator(schema).iter_errors(instance)
