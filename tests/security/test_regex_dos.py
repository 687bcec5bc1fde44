"""Issue 17.6: user-supplied regular expressions (job parameter schemas' `pattern` and
`patternProperties`, silence and inhibition `=~`/`!~` matchers) run on a linear-time engine;
what that engine cannot run (backreferences, lookaround) is a 400 at save time naming it."""

from __future__ import annotations

import os
import pickle
import signal
import time

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from apps.alerts.matching import matcher_matches
from apps.targets.definition import validate_params

EVIL = "^(a+)+$"
HOSTILE = "a" * 30 + "!"
DEADLINE = 5.0


def within_deadline(fn, *args):
    """Run fn(*args) in a forked child and kill it after DEADLINE seconds: a backtracking regex
    holds the GIL, so a thread could not be abandoned, and a hung test must not hold the suite.
    The child only computes, writes its answer to a pipe and leaves with os._exit (no
    multiprocessing feeder threads or finalizers, which can wait on locks other tests' threads
    held at the fork)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read_end)
        try:
            try:
                answer = ("ok", fn(*args))
            except ValidationError as exc:
                answer = ("invalid", exc.messages)
            os.write(write_end, pickle.dumps(answer))
        finally:
            os._exit(0)
    os.close(write_end)
    deadline = time.monotonic() + DEADLINE
    try:
        while time.monotonic() < deadline:
            done, _status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.02)
        else:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail(f"{fn.__name__} still running after {DEADLINE} s: the regex backtracks")
        with os.fdopen(read_end, "rb") as pipe:
            read_end = None
            return pickle.loads(pipe.read())
    finally:
        if read_end is not None:
            os.close(read_end)


def test_param_pattern_runs_in_linear_time():
    schema = {"type": "object", "properties": {"p": {"type": "string", "pattern": EVIL}}}
    kind, messages = within_deadline(validate_params, schema, {"p": HOSTILE})
    assert kind == "invalid" and any("does not match" in m for m in messages), messages


def test_param_pattern_properties_run_in_linear_time():
    schema = {"type": "object", "patternProperties": {EVIL: {"type": "integer"}}}
    assert within_deadline(validate_params, schema, {HOSTILE: "x"}) == ("ok", {HOSTILE: "x"})
    assert within_deadline(validate_params, schema, {"aaa": "x"})[0] == "invalid"


def test_param_patterns_keep_their_meaning():
    schema = {"type": "object", "properties": {"p": {"type": "string", "pattern": "^[a-z]+-[0-9]{2}$"}},
              "patternProperties": {"^x_": {"type": "integer"}}}
    assert validate_params(schema, {"p": "web-01", "x_n": 3}) == {"p": "web-01", "x_n": 3}
    with pytest.raises(ValidationError):
        validate_params(schema, {"p": "WEB-01"})
    with pytest.raises(ValidationError):
        validate_params(schema, {"x_n": "three"})
    # unanchored, as JSON Schema says: a match anywhere is enough
    assert validate_params({"properties": {"p": {"type": "string", "pattern": "[0-9]"}}}, {"p": "ab1c"})


def test_silence_matcher_runs_in_linear_time():
    matcher = {"name": "instance", "op": "=~", "value": "(a+)+"}
    assert within_deadline(matcher_matches, matcher, {"instance": HOSTILE}) == ("ok", False)
    negated = {"name": "instance", "op": "!~", "value": "(a+)+"}
    assert within_deadline(matcher_matches, negated, {"instance": HOSTILE}) == ("ok", True)
    assert matcher_matches(matcher, {"instance": "aaaa"}) is True


@pytest.mark.parametrize(("pattern", "construct"), [
    (r"^(a)\1$", "backreference"),
    (r"^(?P<x>a)(?P=x)$", "backreference"),
    (r"^a(?=b)", "lookahead"),
    (r"^a(?!b)", "lookahead"),
    (r"(?<=a)b", "lookbehind"),
    (r"(?<!a)b", "lookbehind"),
])
def test_job_save_refuses_patterns_the_linear_engine_cannot_run(world, api, pattern, construct):
    c = api.as_user(world.user("a", "admin"))
    steps = [{"type": "ssh.exec", "command": "echo {{ p }}"}]
    for schema in ({"type": "object", "properties": {"p": {"type": "string", "pattern": pattern}}},
                   {"type": "object", "properties": {"p": {"type": "string"}}, "patternProperties": {pattern: {}}}):
        r = c.post(reverse("job-list"), {"name": "j", "steps": steps, "parameters_schema": schema}, format="json")
        assert r.status_code == 400, r.content
        assert construct in r.json()["errors"]["parameters_schema"][0], r.json()


def test_job_save_accepts_ordinary_patterns(world, api):
    c = api.as_user(world.user("a", "admin"))
    schema = {"type": "object", "properties": {"p": {"type": "string", "pattern": r"^[\w.-]+$"}}}
    r = c.post(reverse("job-list"), {"name": "j", "steps": [{"type": "ssh.exec", "command": "echo {{ p }}"}],
                                     "parameters_schema": schema}, format="json")
    assert r.status_code == 201, r.content


@pytest.mark.parametrize(("pattern", "construct"), [(r"(a)\1", "backreference"), (r"a(?=b)", "lookahead")])
def test_silence_and_inhibit_rule_refuse_patterns_the_linear_engine_cannot_run(world, api, pattern, construct):
    c = api.as_user(world.user("a", "admin"))
    bad = [{"name": "instance", "op": "=~", "value": pattern}]
    ok = [{"name": "alertname", "op": "=", "value": "Down"}]
    r = c.post("/api/v1/alerts/silences", {"matchers": bad, "ends_at": "2099-01-01T00:00:00Z"}, format="json")
    assert r.status_code == 400 and construct in r.json()["detail"], r.content
    r = c.post("/api/v1/alerts/inhibit-rules", {"name": "i", "source_matchers": ok, "target_matchers": bad}, format="json")
    assert r.status_code == 400 and construct in r.json()["detail"], r.content
