"""Parameter templating: `{{ name }}` rendered in a Jinja2 sandbox with StrictUndefined.

Scripts (ssh.exec commands, winrm.exec scripts) never receive a value as script text: every
`{{ … }}` becomes a reference to an environment variable (`OPS_1`, `OPS_2`, …) holding the value,
and the value travels beside the script as data (see `Script`; the executors deliver it). Which
reference depends on where the placeholder stands, found by a small lexer of the shell's quoting:
- POSIX sh/bash: `"${OPS_1}"` unquoted, `${OPS_1}` inside double quotes or a here-document,
  `'"${OPS_1}"'` inside single quotes; refused inside `$'…'`, a quoted here-document, a
  here-document delimiter, after a backslash; inside arithmetic only integers.
- PowerShell: `${env:OPS_1}`; a single-quoted string or here-string holding one becomes the
  equivalent double-quoted one (its literal text escaped).
- cmd.exe: `!OPS_1!` under delayed expansion (`cmd /v:on`), whose result cmd never parses again.
Whatever the lexer decides, a value only ever reaches the shell as a variable expansion, which
no shell evaluates as code; the lexer only decides that it arrives byte-exact.

Other fields: URLs percent-encoded; header values refused with line breaks; HTTP bodies and copy
content/paths as is (they reach no shell; WinRM copy paths are quoted by the executor).
"""

from __future__ import annotations

import base64
import json
import re
import shlex
import urllib.parse
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import lru_cache

from jinja2 import StrictUndefined, TemplateError, meta, pass_eval_context
from jinja2.sandbox import SandboxedEnvironment

from .choices import Shell

PS_QUOTES = "'\u2018\u2019\u201a\u201b"
PS_DQUOTES = '"\u201c\u201d\u201e'
MARK = "\ue000"  # private-use character around a placeholder's number in the rendered text


class UnsafeValue(ValueError):
    """A parameter value that cannot be passed safely to the target shell."""


def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return "" if value is None else str(value)


def quote_powershell(value) -> str:
    if isinstance(value, list):
        return ",".join(quote_powershell(v) for v in value) if value else "@()"
    text = _text(value)
    if "\x00" in text:
        raise UnsafeValue("a value holds a NUL byte")
    for q in PS_QUOTES:
        text = text.replace(q, q + q)
    return f"'{text}'"


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
    "url": quote_url,
    "header": quote_header,
    "raw": raw,
}


_collected: ContextVar[list | None] = ContextVar("templating_collected", default=None)


@pass_eval_context  # with a context argument Jinja never folds constants at compile time
def _collect(eval_ctx, value) -> str:
    values = _collected.get()
    values.append(value)
    return f"{MARK}{len(values)}{MARK}"


@lru_cache(maxsize=8)
def environment(escape: str) -> SandboxedEnvironment:
    finalize = _collect if escape == "script" else ESCAPERS[escape]
    return SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, finalize=finalize, keep_trailing_newline=True)


def render(template: str, context: dict, *, escape: str) -> str:
    """Render one non-script step field; raises TemplateError / UnsafeValue with a readable message."""
    return environment(escape).from_string(template).render(**context)


@dataclass(frozen=True)
class Script:
    """A rendered script: `text` refers to its values only as variables; `env` holds them."""

    text: str
    env: dict[str, str] = field(default_factory=dict)

    def shown(self, shell: str) -> str:
        """What the run's step shows: the values as readable assignments, then the script."""
        if shell == Shell.POWERSHELL:
            head = "".join(f"$env:{k} = {quote_powershell(v)}\n" for k, v in self.env.items())
        elif shell == Shell.CMD:
            head = "".join(f"rem {k}={v}\n" for k, v in self.env.items())
        else:
            head = sh_prelude(self.env)
        return head + self.text


def render_script(template: str, context: dict, *, shell: str) -> Script:
    """Render a script for `shell` (sh, bash, powershell, cmd): placeholders become variable
    references by position (module docstring); raises TemplateError / UnsafeValue."""
    if MARK in template:
        raise UnsafeValue("the script contains the reserved character U+E000")
    values: list = []
    token = _collected.set(values)
    try:
        text = environment("script").from_string(template).render(**context)
    finally:
        _collected.reset(token)
    lexer = {Shell.POWERSHELL: _PowerShell, Shell.CMD: _Cmd}.get(shell, _Sh)
    return lexer(text, values).run()


def check_script(template: str, *, shell: str) -> None:
    """Save-time check: raise UnsafeValue when a placeholder stands where the shell cannot
    expand a variable (the message names the construct). `{% … %}` tags are ignored here."""
    probe = re.sub(r"\{%.*?%\}|\{#.*?#\}", "", template, flags=re.S)
    probe = re.sub(r"\{\{.*?\}\}", "{{ 0 }}", probe, flags=re.S)  # integers pass arithmetic
    render_script(probe, {}, shell=shell)


def sh_prelude(env: dict[str, str]) -> str:
    """`export NAME='value' …` for a POSIX shell; shlex.quote at a place we control."""
    return f"export {' '.join(f'{k}={shlex.quote(v)}' for k, v in env.items())}\n" if env else ""


def powershell_prelude(env: dict[str, str]) -> str:
    """`$env:NAME = <base64 decoded>` lines: the base64 alphabet cannot end the quoted literal."""
    return "".join(
        f"$env:{k} = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String('{base64.b64encode(v.encode()).decode()}'))\n"
        for k, v in env.items()
    )


class _Lexer:
    """Walks the rendered text once; `out` collects the script, `env` the values by name."""

    def __init__(self, text: str, values: list):
        self.text, self.values = text, values
        self.out: list[str] = []
        self.env: dict[str, str] = {}
        self.i = 0

    def run(self) -> Script:
        raise NotImplementedError

    def at(self, k: int = 0) -> str:
        return self.text[self.i + k] if self.i + k < len(self.text) else ""

    def copy(self, n: int = 1) -> None:
        if MARK in self.text[self.i + 1:self.i + n]:  # only an escape copies two characters at once
            raise UnsafeValue("a placeholder right after a backslash or backtick escape cannot be expanded; remove the escape")
        self.out.append(self.text[self.i:self.i + n])
        self.i += n

    def take_mark(self) -> int:
        end = self.text.index(MARK, self.i + 1)
        number = int(self.text[self.i + 1:end])
        self.i = end + 1
        return number

    def store(self, number: int, value, suffix: str = "") -> str:
        text = " ".join(_text(v) for v in value) if isinstance(value, list) else _text(value)
        if "\x00" in text:
            raise UnsafeValue("a value holds a NUL byte")
        try:
            text.encode()
        except UnicodeEncodeError:
            raise UnsafeValue("a value is not valid Unicode text (a lone surrogate)") from None
        name = f"OPS_{number}{suffix}"
        self.env[name] = text
        return name

    def escaped_mark(self) -> None:
        if self.at(1) == MARK:
            raise UnsafeValue("a placeholder right after a backslash or backtick escape cannot be expanded; remove the escape")


_SH_WORD_START = " \t\n;&|()"


class _Sh(_Lexer):
    """POSIX sh (and bash's `$'…'`, `((…))`) quoting, enough to place each reference."""

    def run(self) -> Script:
        self.stack: list[list] = [["plain", 0]]
        self.heredocs: list[tuple[str, bool, bool]] = []
        while self.i < len(self.text):
            state = self.stack[-1][0]
            if self.at() == MARK:
                self.out.append(self.ref(self.take_mark(), state))
            elif state == "sq":
                self.pop_if("'")
            elif state == "ansi":
                if self.at() == "\\":
                    self.copy(2)
                else:
                    self.pop_if("'")
            elif state in ("dq", "dqbrace"):
                self.double_quoted(state)
            else:
                self.unquoted(state)
        return Script("".join(self.out), self.env)

    def pop_if(self, closing: str) -> None:
        if self.at() == closing:
            self.stack.pop()
        self.copy()

    def ref(self, number: int, state: str) -> str:
        value = self.values[number - 1]
        if state == "ansi":
            raise UnsafeValue("a placeholder inside $'…' cannot be expanded; use double quotes")
        if state == "arith":
            if isinstance(value, bool) or not isinstance(value, int):
                raise UnsafeValue("a placeholder inside shell arithmetic takes an integer only (declare the parameter as an integer)")
            return f"${{{self.store(number, value)}}}"
        if state in ("dq", "dqbrace", "heredoc"):
            return f"${{{self.store(number, value)}}}"
        if state == "sq":
            return f"'\"${{{self.store(number, value)}}}\"'"
        if isinstance(value, list):  # unquoted: one word per item, as before
            return " ".join(f'"${{{self.store(number, item, f"_{k}")}}}"' for k, item in enumerate(value, 1)) or "''"
        return f'"${{{self.store(number, value)}}}"'

    def open_dollar(self) -> bool:
        """`$'`, `$((`, `$(`, `${`: push the state they open; False for a plain `$`."""
        ahead = self.text[self.i:self.i + 3]
        for prefix, state in (("$'", "ansi"), ("$((", "arith"), ("$(", "cmd"), ("${", "brace")):
            if ahead.startswith(prefix) and (state != "ansi" or self.stack[-1][0] not in ("dq", "dqbrace")):
                if state == "brace" and self.stack[-1][0] in ("dq", "dqbrace"):
                    state = "dqbrace"
                self.stack.append([state, 0])
                self.copy(len(prefix))
                return True
        return False

    def double_quoted(self, state: str) -> None:
        c = self.at()
        if c == "\\":
            self.escaped_mark()
            self.copy(2)
        elif (c == '"' and state == "dq") or (c == "}" and state == "dqbrace"):
            self.stack.pop()
            self.copy()
        elif c == '"':
            self.stack.append(["dq", 0])
            self.copy()
        elif c == "`":
            self.stack.append(["bt", 0])
            self.copy()
        elif not (c == "$" and self.open_dollar()):
            self.copy()

    def unquoted(self, state: str) -> None:
        c, entry = self.at(), self.stack[-1]
        prev = self.text[self.i - 1] if self.i else "\n"
        if c == "\\":
            self.escaped_mark()
            self.copy(2)
        elif c == "$" and self.open_dollar():
            pass
        elif c == "`":
            if state == "bt":
                self.stack.pop()
            else:
                self.stack.append(["bt", 0])
            self.copy()
        elif c in "'\"" and state != "arith":  # inside arithmetic a quoted placeholder is arithmetic too
            self.stack.append(["sq" if c == "'" else "dq", 0])
            self.copy()
        elif c == "}" and state == "brace":
            self.stack.pop()
            self.copy()
        elif c == "(" and state != "brace":
            if self.at(1) == "(" and prev in _SH_WORD_START and state != "arith":
                self.stack.append(["arith", 0])
                self.copy(2)
                return
            entry[1] += 1
            self.copy()
        elif c == ")" and state in ("cmd", "arith") and entry[1] == 0:
            self.stack.pop()
            self.copy(2 if state == "arith" and self.at(1) == ")" else 1)
        elif c == ")":
            entry[1] = max(0, entry[1] - 1)
            self.copy()
        elif c == "<" and self.at(1) == "<" and "<" not in (self.at(2), prev) and state != "arith":  # not <<<
            self.heredoc_operator()
        elif c == "#" and prev in _SH_WORD_START and state != "arith":
            while self.i < len(self.text) and self.at() != "\n":
                if self.at() == MARK:
                    self.out.append(self.ref(self.take_mark(), "plain"))
                else:
                    self.copy()
        elif c == "\n" and self.heredocs:
            self.copy()
            self.heredoc_bodies()
        else:
            self.copy()

    def heredoc_operator(self) -> None:
        self.copy(2)
        strip = self.at() == "-"
        if strip:
            self.copy()
        while self.at() in (" ", "\t"):
            self.copy()
        start = self.i
        quote = ""
        while self.i < len(self.text):
            c = self.at()
            if c == MARK:
                raise UnsafeValue("a placeholder cannot be a here-document delimiter")
            if quote:
                quote = "" if c == quote else quote
            elif c in "'\"":
                quote = c
            elif c == "\\":
                self.i += 1
            elif c in " \t\n;&|<>()":
                break
            self.i += 1
        word = self.text[start:self.i]
        self.out.append(word)
        quoted = any(q in word for q in "'\"\\")
        delimiter = word.replace("'", "").replace('"', "").replace("\\", "")
        self.heredocs.append((delimiter, strip, quoted))

    def heredoc_bodies(self) -> None:
        for delimiter, strip, quoted in self.heredocs:
            while self.i < len(self.text):
                end = self.text.find("\n", self.i)
                end = len(self.text) if end < 0 else end
                line = self.text[self.i:end]
                if (line.lstrip("\t") if strip else line) == delimiter:
                    self.copy(end - self.i + 1)
                    break
                if quoted and MARK in line:
                    raise UnsafeValue("a placeholder inside a quoted here-document (<<'EOF') is not expanded; use <<EOF")
                while self.i < end + 1 and self.i < len(self.text):
                    if self.at() == "\\":
                        self.escaped_mark()
                        self.copy(2)
                    elif self.at() == MARK and not quoted:
                        self.out.append(self.ref(self.take_mark(), "heredoc"))
                    else:
                        self.copy()
        self.heredocs = []


class _PowerShell(_Lexer):
    """PowerShell strings, here-strings, comments and `$(…)`, enough to place each reference."""

    def run(self) -> Script:
        self.stack: list[list] = [["plain", 0]]
        while self.i < len(self.text):
            c, state = self.at(), self.stack[-1]
            if c == MARK:
                self.out.append(self.ref(self.take_mark(), state[0]))
            elif c == "`":
                self.escaped_mark()
                self.copy(2)
            elif state[0] == "dq":
                if c in PS_DQUOTES and self.at(1) in PS_DQUOTES:
                    self.copy(2)
                elif c in PS_DQUOTES:
                    self.stack.pop()
                    self.copy()
                elif c == "$" and self.at(1) == "(":
                    self.stack.append(["sub", 0])
                    self.copy(2)
                else:
                    self.copy()
            else:
                self.code(c, state)
        return Script("".join(self.out), self.env)

    def ref(self, number: int, state: str) -> str:
        value = self.values[number - 1]
        if state != "dq" and isinstance(value, list):
            return "@(" + ",".join(f"${{env:{self.store(number, item, f'_{k}')}}}" for k, item in enumerate(value, 1)) + ")"
        return f"${{env:{self.store(number, value)}}}"

    def code(self, c: str, state: list) -> None:
        prev = self.text[self.i - 1] if self.i else "\n"
        rest = self.text[self.i:]
        if c == "@" and self.at(1) in PS_QUOTES + PS_DQUOTES and rest[2:].lstrip(" \t").startswith("\n"):
            self.here_string(self.at(1) in PS_QUOTES)
        elif c in PS_QUOTES:
            self.single_quoted()
        elif c in PS_DQUOTES:
            self.stack.append(["dq", 0])
            self.copy()
        elif (c == "<" and self.at(1) == "#") or (c == "#" and prev in " \t\n;({"):  # comment
            end = self.text.find("#>", self.i) + 2 if c == "<" else self.text.find("\n", self.i)
            end = len(self.text) if end < (2 if c == "<" else 0) else end
            self.out.append(self.refs_in(self.text[self.i:end]))
            self.i = end
        elif c == "$" and self.at(1) == "(":
            self.stack.append(["sub", 0])
            self.copy(2)
        elif c == "(":
            state[1] += 1
            self.copy()
        elif c == ")" and state[0] == "sub" and state[1] == 0:
            self.stack.pop()
            self.copy()
        elif c == ")":
            state[1] = max(0, state[1] - 1)
            self.copy()
        else:
            self.copy()

    def single_quoted(self) -> None:
        """A literal string; one holding a placeholder is rewritten as an expandable one."""
        start, j = self.i, self.i + 1
        while j < len(self.text):
            if self.text[j] in PS_QUOTES:
                if j + 1 < len(self.text) and self.text[j + 1] in PS_QUOTES:
                    j += 2
                    continue
                break
            j += 1
        body = self.text[start + 1:j]
        self.i = j + 1
        if MARK not in body:
            self.out.append(self.text[start:self.i])
            return
        literal = body
        for q in PS_QUOTES:
            literal = literal.replace(q + q, q)
        self.out.append('"' + self.expandable(literal) + '"')

    def here_string(self, literal: bool) -> None:
        """`@'…'@` / `@"…"@`; a literal one holding a placeholder becomes an expandable one."""
        head_end = self.text.index("\n", self.i) + 1
        closing = "\n" + self.text[self.i + 1] + "@"
        end = self.text.find(closing, head_end - 1)
        end = len(self.text) if end < 0 else end
        body = self.text[head_end:end]
        if literal and MARK not in body:
            self.copy(min(end + 3, len(self.text)) - self.i)
            return
        tail = '\n"@' if end < len(self.text) else ""
        self.i = min(end + 3, len(self.text))
        self.out.append('@"\n' + (self.expandable(body, here=True) if literal else self.refs_in(body)) + tail)

    def expandable(self, literal: str, *, here: bool = False) -> str:
        """Literal text as the inside of a double-quoted string, references for the marks."""
        parts = literal.split(MARK)
        out = []
        for k, part in enumerate(parts):
            if k % 2:
                out.append(self.ref(int(part), "dq"))
                continue
            part = part.replace("`", "``").replace("$", "`$")
            if not here:
                for q in PS_DQUOTES:
                    part = part.replace(q, "`" + q)
            out.append(part)
        return "".join(out)

    def refs_in(self, body: str) -> str:
        parts = body.split(MARK)
        for k in range(1, len(parts), 2):
            if parts[k - 1].endswith("`"):
                raise UnsafeValue("a placeholder right after a backslash or backtick escape cannot be expanded; remove the escape")
            parts[k] = self.ref(int(parts[k]), "dq")
        return "".join(parts)


_XML_UNSAFE = {chr(c) for c in range(32) if chr(c) not in "\t\n"}


class _Cmd(_Lexer):
    """cmd.exe: every placeholder is `!OPS_n!`, expanded after cmd has parsed the line (the
    executor turns delayed expansion on); the value travels in the WinRM shell's environment."""

    def run(self) -> Script:
        while self.i < len(self.text):
            if self.at() != MARK:
                self.copy()
                continue
            number = self.take_mark()
            name = self.store(number, self.values[number - 1])
            if "\r" in self.env[name] or _XML_UNSAFE.intersection(self.env[name]):
                raise UnsafeValue("cmd receives values through the WinRM shell environment, which cannot carry a carriage return "
                                  "or control character; use PowerShell")
            self.out.append(f"!{name}!")
        return Script("".join(self.out), self.env)


def variables(template: str) -> set[str]:
    """Top-level names a template refers to (raises TemplateSyntaxError on bad syntax)."""
    return meta.find_undeclared_variables(environment("raw").parse(template))


__all__ = ["render", "render_script", "check_script", "variables", "Script", "UnsafeValue", "TemplateError", "quote_powershell"]
