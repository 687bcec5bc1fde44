"""Real peers for the targets tests: an OpenSSH server on a loopback high port (own config, host
key and throw-away client key in a temp dir; key-only login), a loopback HTTP server, and the
FAKE WinRM server (tests/targets/fake_winrm_server.py) since no Windows host exists here."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.peers import program
from tests.targets.sshd import SSHD, SSHServer, free_port  # noqa: F401  (free_port used by tests)


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    program("sshd"), program("ssh-keygen")  # skip naming the package when missing (`make test` installs it)
    server = SSHServer(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()


class Recorder(BaseHTTPRequestHandler):
    seen: list = []

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        type(self).seen.append({"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body})
        status = 200
        if self.path.startswith("/status/"):
            status = int(self.path.split("/")[2])
        if self.path.startswith("/slow"):
            time.sleep(3)
        payload = json.dumps({"path": self.path, "body": body}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def http_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.seen = Recorder.seen
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield server
    server.shutdown()


@pytest.fixture
def fake_winrm():
    from tests.targets.fake_winrm_server import FakeWinRMServer

    server = FakeWinRMServer(username="Administrator", password="Fake-Pass-1")
    server.start()
    yield server
    server.stop()
