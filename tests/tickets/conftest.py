import contextlib
from datetime import datetime
from unittest import mock

import pytest


@contextlib.contextmanager
def frozen(at: datetime):
    """Freeze `django.utils.timezone.now` (what services and the clock read)."""
    with mock.patch("django.utils.timezone.now", return_value=at):
        yield


@pytest.fixture
def actors(world):
    return {
        "customer": world.user("a", "customer"),
        "tenant": world.user("a", "support_agent"),
        "partner": world.user("partner", "support_agent"),
        "platform": world.user("platform", "admin"),
    }
