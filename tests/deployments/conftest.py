"""Peers for the deployments tests: the loopback sshd of the targets tests (reused)."""

from tests.targets.conftest import http_server, sshd  # noqa: F401
