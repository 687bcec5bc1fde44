"""Parameter templating: `{{ name }}` rendered in a Jinja2 sandbox with StrictUndefined, and every
expression's value escaped for where it lands, so a parameter cannot inject commands.

- POSIX sh: `shlex.quote` (one single-quoted word).
- PowerShell: a single-quoted literal with `'` (and the typographic quotes PowerShell also treats
  as quotes) doubled — no `$()` expansion inside single quotes.
- cmd.exe: there is no escaping that survives every cmd parsing phase (`%VAR%` expands even
  inside quotes), so a value is double-quoted and values holding `"`, `%`, `!`, `^`, or line
  breaks are refused with a clear error rather than passed on.
- URLs: percent-encoded; header values: refused with line breaks; HTTP bodies: inserted as is
  (they reach no shell).
Only expression output is escaped; the literal text of the step is the job author's own.
"""

from __future__ import annotations

import json
import shlex
import urllib.parse
from functools import lru_cache

from jinja2 import StrictUndefined, TemplateError, meta
from jinja2.sandbox import SandboxedEnvironment

from .choices import Shell

PS_QUOTES = "'\u2018\u2019\u201a\u201b"
CMD_FORBIDDEN = set('"%!^\r\n\x00')


class UnsafeValue(ValueError):
    """A parameter value that cannot be passed safely to the target shell."""


def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return "" if value is None else str(value)


def quote_sh(value) -> str:
    if isinstance(value, list):
        return " ".join(quote_sh(v) for v in value) if value else "''"
    text = _text(value)
    if "\x00" in text:
        raise UnsafeValue("a value holds a NUL byte")
    return shlex.quote(text)


def quote_powershell(value) -> str:
    if isinstance(value, list):
        return ",".join(quote_powershell(v) for v in value) if value else "@()"
    text = _text(value)
    if "\x00" in text:
        raise UnsafeValue("a value holds a NUL byte")
    for q in PS_QUOTES:
        text = text.replace(q, q + q)
    return f"'{text}'"


def quote_cmd(value) -> str:
    text = _text(value)
    bad = sorted(CMD_FORBIDDEN.intersection(text))
    if bad:
        raise UnsafeValue(f"cmd.exe cannot safely receive a value containing {', '.join(repr(c) for c in bad)}; use PowerShell")
    return f'"{text}"'


def quote_url(value) -> str:
    return urllib.parse.quote(_text(value), safe="")


def quote_header(value) -> str:
    text = _text(value)
    if any(c in text for c in "\r\n\x00"):
        raise UnsafeValue("a header value may not contain line breaks")
    return text


def raw(value) -> str:
    return _text(value)


ESCAPERS = {
    Shell.SH: quote_sh,
    Shell.POWERSHELL: quote_powershell,
    Shell.CMD: quote_cmd,
    "url": quote_url,
    "header": quote_header,
    "raw": raw,
}


@lru_cache(maxsize=8)
def environment(escape: str) -> SandboxedEnvironment:
    return SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, finalize=ESCAPERS[escape], keep_trailing_newline=True)


def render(template: str, context: dict, *, escape: str) -> str:
    """Render one step field; raises TemplateError / UnsafeValue with a readable message."""
    return environment(escape).from_string(template).render(**context)


def variables(template: str) -> set[str]:
    """Top-level names a template refers to (raises TemplateSyntaxError on bad syntax)."""
    return meta.find_undeclared_variables(environment("raw").parse(template))


__all__ = ["render", "variables", "UnsafeValue", "TemplateError", "quote_sh", "quote_powershell", "quote_cmd"]
