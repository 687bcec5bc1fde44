"""The programs behind the suite's real peers (sshd, chromium, Alertmanager, redis-server,
PostgreSQL's binaries), found through `.ci/peers.txt` — the list `make test` installs from.

`program("sshd")` returns the program's path; when it is missing the test skips, naming the
Debian package to install (with `TEST_PEERS_REQUIRED=1`, as `.ci/run` sets, it fails instead).
"""

from __future__ import annotations

import glob
import os
import shutil
from pathlib import Path

import pytest

PEERS_FILE = Path(__file__).resolve().parents[1] / ".ci" / "peers.txt"


def _entries() -> list[tuple[str, list[str]]]:
    rows = []
    for line in PEERS_FILE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            package, *programs = line.split()
            rows.append((package, programs))
    return rows


def _find(spec: str) -> str | None:
    if spec.startswith("/"):
        found = sorted(glob.glob(spec))
        return found[-1] if found else None  # the newest version directory
    return shutil.which(spec) or (f"/usr/sbin/{spec}" if os.access(f"/usr/sbin/{spec}", os.X_OK) else None)


def locate(name: str) -> tuple[str | None, str]:
    """(path or None, Debian package) of a program listed in .ci/peers.txt by name."""
    for package, programs in _entries():
        for spec in programs:
            if os.path.basename(spec) == name:
                return _find(spec), package
    raise KeyError(f"{name} is not listed in {PEERS_FILE}")


def program(name: str) -> str:
    """The path of `name`, or skip (fail under TEST_PEERS_REQUIRED=1) naming its package."""
    path, package = locate(name)
    if path is None:
        message = (f"needs {name} from the Debian package {package}: apt-get install -y {package} "
                   "(`make test` installs it when run as root)")
        if os.environ.get("TEST_PEERS_REQUIRED") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path
