"""The incident tests reuse the real loopback sshd of the targets tests, and the watched web
service of the acceptance test (tests/incident/loop.py)."""

from tests.incident.loop import web_service  # noqa: F401
from tests.targets.conftest import sshd  # noqa: F401
