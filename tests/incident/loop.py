"""The incident loop as a new user sets it up (shared by tests/incident/test_acceptance.py and the
browser walk-through): a real HTTP service on loopback run as its own process with a pidfile, and
the portal configured through its REST API — an SSH key, the host as a target, a "restart web"
job whose command really restarts the service over SSH, two HTTP checks of the service and an
alert rule that opens a ticket and runs the job.

The service takes `WARMUP_SECONDS` to come up after a restart (as real services do), so the
checks keep failing for a moment after the runbook finished — the order of the story stays
"runbook succeeded → endpoint up → alert resolved → ticket resolved"."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.targets.sshd import free_port

WARMUP_SECONDS = 3
CHECK_INTERVAL_SECONDS = 3
SERVER = '''"""web: a tiny HTTP service for the incident acceptance test."""
import os, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, pidfile, warmup = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
with open(pidfile + ".all", "a") as f:  # every process ever started, for the test's clean-up
    f.write(f"{os.getpid()}\\n")
time.sleep(warmup)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'{"status": "ok"}' if self.path == "/health" else b"<h1>web</h1>"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", port), Handler)  # fails if another copy holds the port
with open(pidfile, "w") as f:
    f.write(str(os.getpid()))
print(f"web up on {port} as pid {os.getpid()}", flush=True)
server.serve_forever()
'''


class WebService:
    """The watched service: `server.py <port> <pidfile> <warm-up>` in `root`."""

    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.script = root / "server.py"
        self.script.write_text(SERVER)
        self.pidfile = root / "web.pid"
        self.log = root / "web.log"
        self._child: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self._child = subprocess.Popen([sys.executable, str(self.script), str(self.port), str(self.pidfile), "0"], cwd=self.root,
                                           stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.wait(up=True)

    def is_up(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def wait(self, *, up: bool, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while self.is_up() != up:
            if time.monotonic() > deadline:
                raise AssertionError(f"web did not go {'up' if up else 'down'} within {timeout}s:\n{self.log.read_text()[-2000:]}")
            time.sleep(0.1)

    def pid(self) -> int:
        return int(self.pidfile.read_text())

    def kill(self) -> int:
        """Crash the service (SIGKILL; the stale pidfile stays, as after a real crash)."""
        pid = self.pid()
        os.kill(pid, signal.SIGKILL)
        if self._child is not None and self._child.pid == pid:
            self._child.wait(5)  # reap our own child, else `kill -0` in the runbook sees a zombie
        self.wait(up=False)
        return pid

    def restart_command(self) -> str:
        """The runbook's shell command: start the service unless it already runs."""
        d, py, script = (shlex.quote(str(p)) for p in (self.root, sys.executable, self.script))
        return (
            f"cd {d} && if [ -f web.pid ] && kill -0 \"$(cat web.pid)\" 2>/dev/null; "
            "then echo \"{{ service }} already runs as pid $(cat web.pid)\"; "
            "else echo \"restarting {{ service }} on {{ target.name }}\"; "
            f"setsid nohup {py} {script} {self.port} web.pid {WARMUP_SECONDS} >>web.log 2>&1 </dev/null & "
            "echo \"started pid $!\"; fi"
        )

    def stop_all(self) -> None:
        """Kill every copy ever started that still runs (ours only: checked by command line)."""
        listed = self.pidfile.with_name("web.pid.all")
        for line in (listed.read_text().split() if listed.exists() else []):
            pid = int(line)
            with contextlib.suppress(OSError):
                if str(self.script) in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                    os.kill(pid, signal.SIGKILL)
        if self._child is not None and self._child.poll() is None:
            self._child.kill()
            self._child.wait(5)


@pytest.fixture
def web_service(tmp_path):
    service = WebService(tmp_path / "web")
    service.start()
    yield service
    service.stop_all()


@dataclass
class Loop:
    credential: int
    target: int
    job: int
    rule: int
    endpoints: list[int] = field(default_factory=list)


def _created(response) -> dict:
    assert response.status_code == 201, response.content
    return response.json()


def configure_loop(client, *, sshd, service: WebService) -> Loop:
    """Everything through the REST API, as the tenant's admin would (`client` is authenticated)."""
    cred = _created(client.post("/api/v1/credentials/", {"name": "web deploy key", "kind": "ssh_key", "username": sshd.user,
                                                          "secret": sshd.key}, format="json"))
    target = _created(client.post("/api/v1/targets/", {"name": "web-1", "hostname": "127.0.0.1", "port": sshd.port, "protocol": "ssh",
                                                        "os": "linux", "credential": cred["id"]}, format="json"))
    job = _created(client.post("/api/v1/jobs/", {
        "name": "restart web", "description": "Start the web service again if it is not running.",
        "parameters_schema": {"type": "object", "properties": {"service": {"type": "string"}}, "required": ["service"]},
        "steps": [{"name": "restart", "type": "ssh.exec", "command": service.restart_command()}],
    }, format="json"))
    endpoints = [
        _created(client.post("/api/v1/monitoring/endpoints/", {
            "name": name, "kind": "http", "host": "127.0.0.1", "port": service.port, "path": path,
            "interval_seconds": CHECK_INTERVAL_SECONDS, "timeout_seconds": 1, "failure_threshold": 1,
            "labels": {"service": "web", "instance": "web-1"}, "linked_type": "targets.target", "linked_id": target["id"],
        }, format="json"))["id"]
        for name, path in (("web home", "/"), ("web health", "/health"))
    ]
    rule = _created(client.post("/api/v1/alerts/rules", {
        "name": "web down: ticket and restart", "rule_type": "alert",
        "conditions": {"alert_types": ["endpoint_down"], "label_matchers": [{"name": "service", "op": "=", "value": "web"}]},
        "actions": [{"type": "open_ticket", "dedup_labels": ["service"]},
                    {"type": "run_job", "job_id": job["id"], "parameter_labels": {"service": "service"}, "target_label": "instance"}],
    }, format="json"))
    return Loop(credential=cred["id"], target=target["id"], job=job["id"], rule=rule["id"], endpoints=endpoints)


def sla_policy_for_critical(tenant, client=None):
    """SLA targets for critical tickets, set by the tenant admin through the API when `client` is
    given (`POST /api/v1/sla-policies/`), else written directly."""
    from apps.tickets.models import SlaPolicy

    fields = {"name": "Critical incidents", "priority": "critical", "first_response_minutes": 15, "resolution_minutes": 120}
    if client is not None:
        r = client.post("/api/v1/sla-policies/", fields, format="json")
        assert r.status_code == 201, r.content
        return SlaPolicy.objects.get(pk=r.json()["id"], tenant=tenant)
    policy = SlaPolicy(tenant=tenant, **fields)
    policy.full_clean()
    policy.save()
    return policy
