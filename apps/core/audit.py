"""Audited configuration changes as events: `config.created`, `config.updated`, `config.deleted`.

Services that write configuration (alert rules and policies, jobs and schedules, SLA policies,
endpoints, trend rules, …) wrap their save in `config_change` and call `config_deleted` before a
delete, in the same transaction, so who changed what reaches the events outbox (and from there
the tenant timeline) without any reader joining the history tables:

    with transaction.atomic(), config_change(rule, actor=actor):
        rule.full_clean()
        rule.save()

Payload (docs/events.md conventions): `id`, `object_type`, `title` ("alice changed SLA policy
'Gold': resolution minutes 240 → 120"), `url`, `action` (created/updated/deleted), `model`
(verbose name), `name` (the row as text), `by` (username or "the system") and `changes` — a list
of `{"field", "from", "to"}`; values are given only for plain scalar fields (numbers, booleans,
dates, choices, short names, foreign-key ids), never for text, JSON or anything that may hold a
secret: those are listed by name only. An update that changes nothing publishes nothing.
"""

from __future__ import annotations

import contextlib
from typing import Any

from django.db import models

from .events import publish

SKIPPED = {"created_at", "updated_at", "last_evaluated_at"}
SENSITIVE = ("secret", "password", "passphrase", "token", "hash", "key", "url", "credential")
SCALARS = (models.BooleanField, models.IntegerField, models.FloatField, models.DecimalField, models.DateField,
           models.TimeField, models.DurationField, models.ForeignKey)


def _fields(obj) -> list:
    return [f for f in obj._meta.concrete_fields if not f.primary_key and not f.generated and f.name not in SKIPPED]


def _stored(obj) -> dict[str, Any]:
    names = [f.attname for f in _fields(obj)]
    row = type(obj)._base_manager.filter(pk=obj.pk).values(*names).first()
    return row or {}


def _shows_value(field) -> bool:
    if any(s in field.name for s in SENSITIVE):
        return False
    if isinstance(field, SCALARS):
        return True
    return isinstance(field, models.CharField) and (bool(field.choices) or field.max_length <= 255) and not isinstance(field, models.TextField)


def _text(value) -> str:
    if value is None:
        return "—"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)[:120]


def _who(actor) -> str:
    return getattr(actor, "username", None) or "the system"


def _label(field) -> str:
    return str(field.verbose_name)


def changes_between(obj, before: dict | None, ignore=()) -> list[dict]:
    """The changed fields of `obj` against the stored values `before` (values only where safe)."""
    if before is None:
        return []
    out = []
    for field in _fields(obj):
        if field.name in ignore:
            continue
        old, new = before.get(field.attname), getattr(obj, field.attname, None)
        if old == new:
            continue
        entry = {"field": field.name, "label": _label(field)}
        if _shows_value(field):
            entry.update({"from": _text(old), "to": _text(new)})
        out.append(entry)
    return out


def _describe(changes: list[dict]) -> str:
    parts = [f"{c['label']} {c['from']} → {c['to']}" if "from" in c else c["label"] for c in changes]
    return "; ".join(parts)


def publish_config_change(obj, *, actor, action: str, changes: list[dict] | None = None, note: str = ""):
    """Publish one `config.<action>` event for a configuration row (see the module docstring)."""
    meta = obj._meta
    model = str(meta.verbose_name)
    changes = changes or []
    verb = {"created": "created", "updated": "changed", "deleted": "deleted"}[action]
    title = f"{_who(actor)} {verb} {model} '{obj}'"
    detail = "; ".join(p for p in (_describe(changes), note) if p)
    if detail:
        title += f": {detail}"
    payload = {
        "id": obj.pk, "object_type": f"{meta.app_label}.{meta.model_name}", "title": title[:300],
        "url": "" if action == "deleted" else f"/admin/{meta.app_label}/{meta.model_name}/{obj.pk}/change/",
        "action": action, "model": model, "name": str(obj)[:200], "by": _who(actor), "changes": changes[:50],
    }
    if note:
        payload["note"] = note[:500]
    tenant_id = getattr(obj, "tenant_id", None)
    return publish(f"config.{action}", tenant=tenant_id, payload=payload, actor=actor)


@contextlib.contextmanager
def config_change(obj, *, actor, ignore=()):
    """Around the save of a configuration row (inside the service's transaction): publishes
    `config.created` for a new row, `config.updated` with the changed fields for an existing
    one (compared with the stored row read on entry — the admin has already applied the form to
    `obj`). The block may put `note` (text) and `fields` (extra changed names, e.g. many-to-many
    sets) into the yielded dict. `ignore`: fields that are state, not configuration."""
    adding = obj._state.adding
    before = None if adding else _stored(obj)
    info: dict[str, Any] = {}
    yield info
    if adding:
        publish_config_change(obj, actor=actor, action="created", note=info.get("note", ""))
        return
    changes = changes_between(obj, before, ignore) + [{"field": f, "label": f.replace("_", " ")} for f in info.get("fields", [])]
    if changes or info.get("note"):
        publish_config_change(obj, actor=actor, action="updated", changes=changes, note=info.get("note", ""))


def config_deleted(obj, *, actor) -> None:
    """Publish `config.deleted` for a row about to be deleted (call inside the delete's transaction)."""
    publish_config_change(obj, actor=actor, action="deleted")
