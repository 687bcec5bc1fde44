"""The incident tests reuse the real loopback sshd of the targets tests."""

from tests.targets.conftest import sshd  # noqa: F401
