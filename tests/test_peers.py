"""The suite's real peers: one list (.ci/peers.txt) that `make test` installs from, and a test
whose program is missing skips naming the package (fails under TEST_PEERS_REQUIRED=1, as in CI)."""

import re
import subprocess
from pathlib import Path

import pytest

from tests import peers

ROOT = Path(__file__).resolve().parents[1]


def test_missing_program_skips_naming_its_package(tmp_path, monkeypatch):
    listing = tmp_path / "peers.txt"
    listing.write_text("# comment\nno-such-package  /nonexistent/*/bin/no-such-program\n")
    monkeypatch.setattr(peers, "PEERS_FILE", listing)
    monkeypatch.delenv("TEST_PEERS_REQUIRED", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y no-such-package"):
        peers.program("no-such-program")
    monkeypatch.setenv("TEST_PEERS_REQUIRED", "1")
    with pytest.raises(pytest.fail.Exception, match="no-such-package"):
        peers.program("no-such-program")


def test_every_program_the_tests_start_is_listed():
    """A test that starts a program calls `program(name)`; each name is in .ci/peers.txt."""
    names = set()
    for path in (ROOT / "tests").rglob("*.py"):
        names |= set(re.findall(r'program\("([^"]+)"\)', path.read_text()))
    names.discard("no-such-program")
    assert {"sshd", "ssh-keygen", "chromium", "prometheus-alertmanager", "redis-server", "initdb"} <= names
    for name in names:
        peers.locate(name)  # KeyError when a test uses a program the list does not install


def test_make_test_installs_the_peers_first():
    dry = subprocess.run(["make", "-n", "test-peers"], cwd=ROOT, capture_output=True, text=True)
    assert ".ci/install-peers" in dry.stdout
    make = (ROOT / "Makefile").read_text()
    assert re.search(r"^test: .*\btest-peers\b", make, re.M)
    done = subprocess.run([str(ROOT / ".ci" / "install-peers")], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
