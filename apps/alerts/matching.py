"""Label matchers like Alertmanager's (`=`, `!=`, `=~`, `!~`; regexes are anchored), and the
fingerprint of an alert. Pure functions: used by silences, inhibition rules and rules."""

from __future__ import annotations

import hashlib
import json

from django.core.exceptions import ValidationError

from apps.core.regex import UnsupportedRegex, compile_user_regex

from .choices import MatchOp

OPS = {op.value for op in MatchOp}


def _compiled(pattern: str):
    # anchored like Alertmanager's; RE2 (as in Alertmanager) runs in linear time
    return compile_user_regex(pattern, full=True)


def validate_matchers(matchers, *, field: str = "matchers", allow_empty: bool = False) -> None:
    """Raise a ValidationError naming the bad matcher; regexes must compile."""
    if not isinstance(matchers, list) or (not matchers and not allow_empty):
        raise ValidationError({field: "Give a list of matchers like [{\"name\": \"alertname\", \"op\": \"=\", \"value\": \"HighLatency\"}]."})
    for i, m in enumerate(matchers):
        if not isinstance(m, dict) or not isinstance(m.get("name"), str) or not m.get("name"):
            raise ValidationError({field: f"Matcher {i + 1} needs a label name."})
        if m.get("op", "=") not in OPS:
            raise ValidationError({field: f"Matcher {i + 1}: operator {m.get('op')!r} is not one of =, !=, =~, !~."})
        if not isinstance(m.get("value", ""), str):
            raise ValidationError({field: f"Matcher {i + 1}: the value must be a string."})
        if m.get("op") in (MatchOp.RE, MatchOp.NRE):
            try:
                _compiled(m.get("value", ""))
            except UnsupportedRegex as exc:
                raise ValidationError({field: f"Matcher {i + 1}: {exc}"}) from exc


def matcher_matches(m: dict, labels: dict) -> bool:
    """One matcher against a label set; a missing label reads as the empty string (as in
    Alertmanager, so `name!=""` means "label present")."""
    value = str(labels.get(m["name"], ""))
    op = m.get("op", "=")
    expected = m.get("value", "")
    if op == MatchOp.EQ:
        return value == expected
    if op == MatchOp.NE:
        return value != expected
    try:
        regex = _compiled(expected)
    except UnsupportedRegex:
        return False  # stored before RE2 (lookaround, backreference): never matches, refused on save
    if op == MatchOp.RE:
        return regex.match(value) is not None
    return regex.match(value) is None


def matches_all(matchers: list[dict], labels: dict) -> bool:
    return all(matcher_matches(m, labels) for m in matchers)


def canonical_labels(labels: dict) -> str:
    return json.dumps({str(k): str(v) for k, v in labels.items()}, sort_keys=True, separators=(",", ":"))


def labels_fingerprint(tenant_id: int, labels: dict) -> str:
    """Stable hash of tenant + label set (128 bits as hex)."""
    return hashlib.sha256(f"{tenant_id}\x00{canonical_labels(labels)}".encode()).hexdigest()[:32]


def resource_fingerprint(tenant_id: int, alert_type: str, resource_type: str, resource_id: str) -> str:
    """Stable hash of tenant + alert type + resource (for alerts about one object)."""
    return hashlib.sha256(f"{tenant_id}\x00{alert_type}\x00{resource_type}\x00{resource_id}".encode()).hexdigest()[:32]
