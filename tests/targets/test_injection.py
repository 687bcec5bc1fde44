"""Issue 17.1: a parameter reaches the target as data, never as script text — whatever quotes the
job author put around its placeholder. Every hostile value in every position, on the real
loopback sshd for sh and bash and on the WS-Man test server for PowerShell and cmd."""

from __future__ import annotations

import base64
import re

import pytest
from django.urls import reverse

from apps.targets.choices import RunStatus, StepStatus
from tests.factories.targets import make_job
from tests.targets.test_runs import fleet, run_now  # noqa: F401  (fixture)
from tests.targets.test_winrm import winrm_target

HOSTILE = [
    "$(touch {m})",
    "`touch {m}`",
    '"; touch {m}; "',
    "'; touch {m}; '",
    "a\ntouch {m}\n",
    "x'\"$(touch {m})\"'`touch {m}`\\",
    "EOF\ntouch {m}\nEOF",
    "$HOME ${{IFS}} * ? ~ | > < & ; \\ %PATH% !PATH! ^& \u2019 \u201c",
]
SH_POSITIONS = {  # the step's command, and what printf/cat must print
    "unquoted": ("printf '%s' {{ p }}", "{v}"),
    "double-quoted": ("printf '%s' \"{{ p }}\"", "{v}"),
    "single-quoted": ("printf '%s' 'x {{ p }}'", "x {v}"),
    "heredoc": ("cat <<EOF\n{{ p }}\nEOF", "{v}\n"),
    "mixed": ("printf '%s|' x{{ p }}y \"a'{{ p }}'b\" 'c\"{{ p }}\"d'", "x{v}y|a'{v}'b|c\"{v}\"d|"),
}
PARAMS = {"type": "object", "properties": {"p": {"type": "string"}, "n": {"type": "integer"}}}


@pytest.mark.parametrize("template", HOSTILE)
def test_hostile_value_in_every_position_arrives_as_data_on_real_sshd(fleet, world, tmp_path, template):  # noqa: F811
    tenant, _, targets = fleet
    marker = tmp_path / "pwned"
    value = template.format(m=marker)
    steps = [{"name": f"{shell} {where}", "type": "ssh.exec", "shell": shell, "command": command}
             for shell in ("sh", "bash") for where, (command, _) in SH_POSITIONS.items()]
    job = make_job(tenant, parameters_schema=PARAMS, steps=steps, on_failure="continue")
    run = run_now(job, world.user("a", "operator"), params={"p": value}, targets=targets[:1])
    results = {s.step_name: s for s in run.steps.all()}
    for shell in ("sh", "bash"):
        for where, (_, expected) in SH_POSITIONS.items():
            step = results[f"{shell} {where}"]
            assert (step.status, step.stdout) == (StepStatus.SUCCEEDED, expected.format(v=value)), (shell, where, step.error, step.stderr)
    assert not marker.exists()
    assert run.status == RunStatus.SUCCEEDED


def test_arithmetic_takes_integers_only(fleet, world):  # noqa: F811
    tenant, _, targets = fleet
    job = make_job(tenant, parameters_schema=PARAMS, steps=[{"type": "ssh.exec", "command": "echo $(( {{ n }} + 1 ))"}])
    run = run_now(job, world.user("a", "operator"), params={"n": 41}, targets=targets[:1])
    assert run.steps.get().stdout == "42\n"
    job = make_job(tenant, name="str", parameters_schema=PARAMS, steps=[{"type": "ssh.exec", "command": "echo $(( {{ p }} + 1 ))"}])
    run = run_now(job, world.user("a", "operator"), params={"p": "a[$(id)]"}, targets=targets[:1])
    step = run.steps.get()
    assert step.status == StepStatus.FAILED and "arithmetic" in step.error


def test_login_shell_default_and_list_values(fleet, world):  # noqa: F811
    tenant, _, targets = fleet
    schema = {"type": "object", "properties": {"files": {"type": "array", "items": {"type": "string"}}}}
    job = make_job(tenant, parameters_schema=schema, steps=[{"type": "ssh.exec", "command": "printf '<%s>' {{ files }}; echo \" {{ files }}\""}])
    run = run_now(job, world.user("a", "operator"), params={"files": ["a b", "$(id)", "'"]}, targets=targets[:1])
    assert run.steps.get().stdout == "<a b><$(id)><'> a b $(id) '\n"


@pytest.mark.parametrize(("command", "construct"), [
    ("cat <<'EOF'\n{{ p }}\nEOF", "quoted here-document"),
    ("cat <<\"EOF\"\n{{ p }}\nEOF", "quoted here-document"),
    ("echo $'x {{ p }}'", "$'"),
    ("echo \\{{ p }}", "backslash"),
    ("cat <<{{ p }}\nx\n{{ p }}", "here-document delimiter"),
])
def test_save_refuses_placeholders_the_shell_cannot_expand(world, api, command, construct):
    c = api.as_user(world.user("a", "admin"))
    r = c.post(reverse("job-list"), {"name": "j", "parameters_schema": PARAMS, "steps": [{"type": "ssh.exec", "command": command}]}, format="json")
    assert r.status_code == 400, r.content
    assert any(construct in m for m in r.json()["errors"]["steps"]), r.json()


def test_save_accepts_ssh_shell_choice(world, api):
    c = api.as_user(world.user("a", "admin"))
    step = {"type": "ssh.exec", "shell": "bash", "command": "echo \"{{ p }}\" '{{ p }}'"}
    assert c.post(reverse("job-list"), {"name": "j", "parameters_schema": PARAMS, "steps": [step]}, format="json").status_code == 201
    step["shell"] = "zsh"
    assert c.post(reverse("job-list"), {"name": "k", "parameters_schema": PARAMS, "steps": [step]}, format="json").status_code == 400


PS_POSITIONS = {  # the step's script, and the script PowerShell must receive after the prelude
    "unquoted": ("Write-Output {{ p }}", "Write-Output ${env:OPS_1}"),
    "double-quoted": ('Write-Output "{{ p }}"', 'Write-Output "${env:OPS_1}"'),
    "single-quoted": ("Write-Output 'it''s $x `{{ p }}'", 'Write-Output "it\'s `$x ``${env:OPS_1}"'),
    "here-string": ('@"\n{{ p }}\n"@', '@"\n${env:OPS_1}\n"@'),
    "literal here-string": ("@'\n$a {{ p }}\n'@", '@"\n`$a ${env:OPS_1}\n"@'),
}
PRELUDE = re.compile(r"^\$env:(OPS_\d+) = \[Text\.Encoding\]::UTF8\.GetString\(\[Convert\]::FromBase64String\('([A-Za-z0-9+/=]*)'\)\)\n")


def split_prelude(script: str) -> tuple[dict[str, str], str]:
    env = {}
    while m := PRELUDE.match(script):
        env[m.group(1)] = base64.b64decode(m.group(2)).decode()
        script = script[m.end():]
    return env, script


@pytest.mark.parametrize("template", HOSTILE)
def test_hostile_value_reaches_powershell_and_cmd_as_data(world, fake_winrm, tmp_path, template):
    marker = tmp_path / "pwned"
    value = template.format(m=marker)
    steps = [{"name": f"ps {where}", "type": "winrm.exec", "shell": "powershell", "script": script}
             for where, (script, _) in PS_POSITIONS.items()]
    steps += [{"name": "cmd unquoted", "type": "winrm.exec", "shell": "cmd", "script": "echo {{ p }}"},
              {"name": "cmd quoted", "type": "winrm.exec", "shell": "cmd", "script": 'echo "x {{ p }}" & echo done'}]
    job = make_job(world.tenant("a"), parameters_schema=PARAMS, steps=steps, on_failure="continue")
    run = run_now(job, world.user("a", "operator"), params={"p": value}, targets=[winrm_target(world, fake_winrm)])
    assert {s.step_name: s.status for s in run.steps.all()} == {s["name"]: StepStatus.SUCCEEDED for s in steps}, run.steps.values("step_name", "error")
    for script, (_, expected) in zip(fake_winrm.scripts, PS_POSITIONS.values(), strict=True):
        env, body = split_prelude(script)
        assert env == {"OPS_1": value} and body == expected  # the value is only ever base64 in the prelude
    cmd_calls = [(args, env) for (command, args), env in zip(fake_winrm.commands, fake_winrm.environments, strict=True) if command == "cmd"]
    assert cmd_calls == [("/v:on /c echo !OPS_1!", {"OPS_1": value}), ('/v:on /c echo "x !OPS_1!" & echo done', {"OPS_1": value})]
    assert not marker.exists()


def test_cmd_refuses_values_ws_man_cannot_carry(world, fake_winrm):
    job = make_job(world.tenant("a"), parameters_schema=PARAMS, steps=[{"type": "winrm.exec", "shell": "cmd", "script": "echo {{ p }}"}])
    run = run_now(job, world.user("a", "operator"), params={"p": "a\r\nb"}, targets=[winrm_target(world, fake_winrm)])
    step = run.steps.get()
    assert step.status == StepStatus.FAILED and "carriage return" in step.error
    assert not [c for c in fake_winrm.commands if c[0] == "cmd"]


@pytest.mark.parametrize(("shell", "template"), [
    *(("sh", command) for command, _ in SH_POSITIONS.values()),
    ("sh", "cat <<< {{ p }}; echo $(echo '{{ p }}' \"$(printf %s {{ p }})\") `echo {{ p }}` # it's {{ p }}"),
    *(("powershell", script) for script, _ in PS_POSITIONS.values()),
    ("powershell", "<# it's #> Write-Output $(\"{{ p }}\" + '{{ p }}') # it's {{ p }}"),
    ("cmd", 'echo "{{ p }}" ^& {{ p }} %PATH%'),
])
def test_script_text_never_depends_on_the_values(shell, template):
    from apps.targets.templating import render_script

    texts = {render_script(template, {"p": v.format(m="/tmp/m")}, shell=shell).text for v in [*HOSTILE, "plain"]}
    assert len(texts) == 1, texts  # values travel only in Script.env
    assert "\ue000" not in texts.pop()  # every placeholder became a reference


@pytest.mark.parametrize("value", ["a\x00b", "\ud800"])
def test_values_no_shell_can_hold_are_refused(value):
    from apps.targets.templating import UnsafeValue, render_script

    for shell in ("sh", "powershell", "cmd"):
        with pytest.raises(UnsafeValue):
            render_script("echo {{ p }}", {"p": value}, shell=shell)


FRAGMENTS = ["echo ", "printf '%s' ", "x", " ", ";", "\n", '"', "'", "$(", ")", "`", "${v:-", "}", "#", "\\", "$'",
             "cat <<EOF\n", "\nEOF\n", "cat <<'Q'\n", "\nQ\n", "$((", "))", "((", "{{ p }}", "{{ p }}", "{{ p }}", "<<<"]


@pytest.mark.parametrize("shell", ["sh", "bash"])
def test_no_template_lets_a_value_run_as_code(shell, tmp_path):
    """Random scripts of quoting fragments around placeholders, run by a real local sh/bash
    the way the SSH executor sends them: whatever the lexer makes of them, no value runs."""
    import subprocess

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from apps.targets.templating import TemplateError, UnsafeValue, render_script, sh_prelude

    marker = tmp_path / "pwned"
    values = [v.format(m=marker) for v in HOSTILE]

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=14), st.sampled_from(values))
    def check(fragments, value):
        try:
            script = render_script("".join(fragments), {"p": value}, shell=shell)
        except (UnsafeValue, TemplateError):
            return
        subprocess.run([shell, "-c", sh_prelude(script.env) + script.text], stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=10, cwd=tmp_path)
        assert not marker.exists(), "".join(fragments)

    check()


PS_FRAGMENTS = ["Write-Output ", "x", " ", ";", "\n", '"', "'", "\u2019", "$(", ")", "`", "#", "<#", "#>", "@'\n", "\n'@",
                '@"\n', '\n"@', "$x", "{{ p }}", "{{ p }}", "{{ p }}"]


@pytest.mark.parametrize(("shell", "fragments"), [("sh", FRAGMENTS), ("powershell", PS_FRAGMENTS), ("cmd", PS_FRAGMENTS)])
def test_no_template_puts_a_value_into_the_script_text(shell, fragments):
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from apps.targets.templating import MARK, TemplateError, UnsafeValue, render_script

    @settings(max_examples=300, deadline=None)
    @given(st.lists(st.sampled_from(fragments), min_size=1, max_size=16))
    def check(parts):
        texts = set()
        for value in ("$(touch /tmp/m)\n'\"`", "plain"):
            try:
                texts.add(render_script("".join(parts), {"p": value}, shell=shell).text)
            except (UnsafeValue, TemplateError):
                texts.add(None)
        assert len(texts) == 1 and MARK not in (texts.pop() or "")

    check()
