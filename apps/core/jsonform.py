"""Structured editors for JSON fields that have a JSON schema (django-jsonform's React form).

`StructuredJSONWidget(schema)` renders the form django-jsonform builds from an *editor schema*
(`editor_schema()` translates our Draft 2020-12 schemas into the subset django-jsonform draws),
plus a "Raw JSON" fold-out for power users: its textarea holds the same value, and ticking
"save the raw JSON" (done by `core/structured-json.js` when one types there) saves it instead.
The widget falls back to the plain JSON textarea when the schema has something the form cannot
draw, or the stored value does not fit the editor schema (so no key or type is ever lost by
the form), or the submitted text is not JSON. Validation stays where it was: the model's
`clean()` / the service, whose errors Django shows on the field.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import jsonschema
from django import forms
from django.forms.widgets import Textarea
from django.utils.html import format_html
from django_jsonform.widgets import JSONFormWidget

# keywords django-jsonform draws or checks; anything else in a schema → fall back to the textarea
_KEEP = {"title", "description", "default", "minLength", "maxLength", "minimum", "maximum", "minItems", "maxItems",
         "uniqueItems", "pattern", "required", "enum", "help_text"}
_DROPPED = {"$schema", "$comment", "examples"}
RAW_SUFFIX, USE_RAW_SUFFIX = "__raw", "__use_raw"


class Unsupported(Exception):
    """The schema uses something django-jsonform cannot draw."""


def _infer_type(values: list) -> str:
    if all(isinstance(v, bool) for v in values):
        return "boolean"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "integer"
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return "number"
    if all(isinstance(v, str) for v in values):
        return "string"
    raise Unsupported("enum of mixed types")


def _translate(node: dict) -> dict:
    if not isinstance(node, dict):
        raise Unsupported("schema node is not an object")
    node = {k: v for k, v in node.items() if k not in _DROPPED}
    if "anyOf" in node and all(set(s) <= {"required"} for s in node["anyOf"]):
        node.pop("anyOf")  # "one of these keys is required": checked by the model, nothing to draw
    if "const" in node:
        value = node.pop("const")
        node.update(type=_infer_type([value]), enum=[value], default=value)
    if "oneOf" in node or "anyOf" in node:
        key = "oneOf" if "oneOf" in node else "anyOf"
        options = []
        for i, sub in enumerate(node.pop(key)):
            option = _translate(sub)
            const = (sub.get("properties", {}).get("type") or {}).get("const")
            option.setdefault("title", str(const) if const is not None else f"Option {i + 1}")
            options.append(option)
        out = {k: v for k, v in node.items() if k in _KEEP}
        out[key] = options
        return out
    kind = node.get("type")
    if kind is None and "enum" in node:
        kind = _infer_type(node["enum"])
    if isinstance(kind, list) and "string" in kind:
        kind = "string"  # drawn as text; a stored number or boolean does not `fit`, so it keeps the textarea
    if not isinstance(kind, str):
        raise Unsupported(f"type {kind!r}")
    out = {k: v for k, v in node.items() if k in _KEEP}
    out["type"] = kind
    if kind == "array":
        out["items"] = _translate(node.get("items") or {})
    elif kind == "object":
        props = node.get("properties")
        extra = node.get("additionalProperties")
        out["properties"] = {k: _translate(v) for k, v in (props or {}).items()}  # django-jsonform needs the key
        if isinstance(extra, dict):
            out["additionalProperties"] = _translate(extra)
        elif not props:
            out["additionalProperties"] = {"type": "string"}  # any object: drawn as text values (others do not `fit`)
    leftovers = set(node) - _KEEP - {"type", "items", "properties", "additionalProperties", "$defs"}
    if leftovers:
        raise Unsupported(f"keywords {sorted(leftovers)}")
    return out


def editor_schema(schema: dict | None) -> dict | None:
    """The schema django-jsonform draws for `schema`, or None when it cannot draw it."""
    if not schema:
        return None
    try:
        return _translate(schema)
    except Unsupported:
        return None


def _as_jsonschema(node):
    """Our editor schema back in standard keywords as plain jsonschema, to check a value fits."""
    if isinstance(node, list):
        return [_as_jsonschema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for k, v in node.items():
        if k == "properties":
            out["properties"] = {name: _as_jsonschema(s) for name, s in v.items()}
            if "additionalProperties" not in node:
                out["additionalProperties"] = False
        elif k in ("items", "additionalProperties"):
            out[k] = _as_jsonschema(v)
        elif k in ("oneOf", "anyOf"):
            out["anyOf"] = _as_jsonschema(v)  # the form's job is to draw it; the model decides validity
        elif k in ("title", "description", "default", "help_text", "required", "minLength", "maxLength", "minimum",
                   "maximum", "minItems", "maxItems", "uniqueItems", "pattern"):
            continue  # shape only: a value that breaks a limit is still drawn, and refused on save
        else:
            out[k] = v
    return out


def fits(value, schema: dict) -> bool:
    """Whether the form can show `value` without losing a key or changing a type."""
    return jsonschema.Draft202012Validator(_as_jsonschema(schema)).is_valid(value)


def prune(value, schema: dict | None):
    """Drop what the form adds for fields left empty ("", null or {} for an optional key)."""
    if not isinstance(schema, dict):
        return value
    if isinstance(value, list):
        item = schema.get("items")
        return [prune(v, item) for v in value]
    if not isinstance(value, dict):
        return value
    options = schema.get("oneOf") or schema.get("anyOf") or [schema]
    required = {r for o in options for r in o.get("required", [])}
    keys = {}
    for o in options:
        keys.update(o.get("properties") or {})
    return {k: prune(v, keys.get(k) or (schema.get("additionalProperties") if isinstance(schema.get("additionalProperties"), dict) else None))
            for k, v in value.items() if k in required or v not in ("", None, {})}


SchemaSource = dict | Callable[[forms.BaseForm], dict | None] | None


class StructuredJSONWidget(forms.Widget):
    """A django-jsonform editor with a raw-JSON fold-out, or the JSON textarea when the form
    cannot describe the field (see the module docstring)."""


    def __init__(self, schema: SchemaSource, *, form=None, attrs=None):
        super().__init__(attrs)
        self.schema, self.form = schema, form
        self.fallback = Textarea(attrs={"class": "vLargeTextField", "rows": 8, "cols": 80})

    def editor(self) -> dict | None:
        schema = self.schema(self.form) if callable(self.schema) else self.schema
        return editor_schema(schema)

    @property
    def media(self):
        return JSONFormWidget(schema={}).media + forms.Media(js=["core/structured-json.js"], css={"all": ["core/structured-json.css"]})

    def value_from_datadict(self, data, files, name):
        if data.get(name + USE_RAW_SUFFIX):
            return data.get(name + RAW_SUFFIX)
        value = data.get(name)
        schema = self.editor()
        if value is None or schema is None or name + RAW_SUFFIX not in data:
            return value  # the plain textarea was shown: what was typed is what is saved
        try:
            return json.dumps(prune(json.loads(value), schema))
        except ValueError:
            return value

    def render(self, name, value, attrs=None, renderer=None):
        schema = self.editor()
        try:
            parsed = json.loads(value) if isinstance(value, str) else value
        except ValueError:
            parsed = schema = None  # not JSON (a refused raw edit): show it as typed
        if schema is None or (parsed not in (None, "") and not fits(parsed, schema)):
            textarea = self.fallback.render(name, value, attrs, renderer)
            note = "Shown as JSON: the form cannot describe this value." if schema is None and self.schema else ""
            return format_html('{}<p class="help structured-json-note">{}</p>', textarea, note) if note else textarea
        text = json.dumps(parsed, indent=2) if parsed not in (None, "") else ""
        form = JSONFormWidget(schema=schema).render(name, text or None, attrs, renderer)
        return format_html(
            '<div class="structured-json">{}'
            '<details class="structured-json-raw"><summary>Raw JSON</summary>'
            '<textarea name="{}" id="{}" class="vLargeTextField" rows="10" cols="80" spellcheck="false">{}</textarea>'
            '<label class="structured-json-use"><input type="checkbox" name="{}" value="1"> Save the raw JSON above instead of the form</label>'
            "</details></div>",
            form, name + RAW_SUFFIX, (attrs or {}).get("id", "id_" + name) + RAW_SUFFIX, text, name + USE_RAW_SUFFIX,
        )


def structured(form, field: str, schema: SchemaSource, *, help_text: str | None = None) -> None:
    """Swap `form.fields[field]`'s widget for a structured editor over `schema` (or a callable
    taking the form, for a schema that depends on another field)."""
    if field not in form.fields:
        return
    form.fields[field].widget = StructuredJSONWidget(schema, form=form)
    if help_text is not None:
        form.fields[field].help_text = help_text
