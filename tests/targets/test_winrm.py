"""WinRM executor end to end: the real pywinrm client against the FAKE WinRM test server."""

from __future__ import annotations

import base64
import re

from apps.targets import services
from apps.targets.choices import CredentialKind, Protocol, RunStatus, StepStatus
from tests.factories.targets import make_credential, make_job, make_target


def winrm_target(world, fake):
    tenant = world.tenant("a")
    cred = make_credential(tenant, name="win", kind=CredentialKind.WINRM_BASIC, username="Administrator", secret="Fake-Pass-1")
    return make_target(tenant, name="win1", port=fake.port, credential=cred, protocol=Protocol.WINRM, winrm_scheme="http", os="windows")


def test_winrm_steps_run_through_pywinrm_with_powershell_quoting(world, fake_winrm):
    target = winrm_target(world, fake_winrm)
    hostile = "x'; Remove-Item -Recurse C:\\ ; '$(whoami)"
    job = make_job(world.tenant("a"), parameters_schema={"type": "object", "properties": {"p": {"type": "string"}}}, steps=[
        {"type": "winrm.exec", "shell": "cmd", "script": "echo hello-cmd && exit 4"},
        {"type": "winrm.exec", "shell": "powershell", "script": "Write-Output {{ p }}"},
        {"type": "winrm.copy", "content": "a" * 3000, "path": "C:\\Temp\\{{ p }}.txt"},
    ], on_failure="continue")
    run = services.job_run_create(job, actor=world.user("a", "operator"), params={"p": hostile}, targets=[target])
    services.run_execute(run_id=run.pk)
    run.refresh_from_db()
    cmd, ps, copy = run.steps.order_by("step_index")
    assert cmd.stdout.strip() == "hello-cmd" and cmd.exit_code == 4 and cmd.status == StepStatus.FAILED
    assert ps.status == StepStatus.SUCCEEDED and copy.status == StepStatus.SUCCEEDED, (ps.error, copy.error)
    assert fake_winrm.scripts[0].endswith("\nWrite-Output ${env:OPS_1}") and hostile not in fake_winrm.scripts[0]
    chunks = [base64.b64decode(m) for s in fake_winrm.scripts[1:] for m in re.findall(r"FromBase64String\('([^']*)'\)", s)]
    assert b"".join(chunks) == b"a" * 3000 and len(chunks) == 3
    assert "Move-Item" in fake_winrm.scripts[-1]
    assert run.status == RunStatus.FAILED


def test_winrm_connection_test_and_bad_password(world, fake_winrm):
    target = winrm_target(world, fake_winrm)
    assert services.target_test_connection(target, actor=world.user("a", "admin")).last_test_result == "ok"
    target.credential.secret = __import__("apps.core.crypto", fromlist=["encrypt"]).encrypt("wrong")
    target.credential.save()
    tested = services.target_test_connection(target, actor=world.user("a", "admin"))
    assert tested.last_test_result == "failed" and "Fake-Pass-1" not in tested.last_test_message
