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


@pytest.fixture
def dovecot():
    """A real Dovecot IMAP server on loopback (skips naming dovecot-imapd when it is missing)."""
    import shutil
    import tempfile
    from pathlib import Path

    from tests.tickets.mailpeers import Dovecot

    # not under pytest's tmp dir: as root, the mail user (nobody) must be able to reach the Maildir
    directory = Path(tempfile.mkdtemp(prefix="opsportal-dovecot-"))
    directory.chmod(0o755)
    server = Dovecot(directory)
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def smtp_capture(settings):
    """An aiosmtpd SMTP server on loopback that Django's SMTP backend sends to; `.messages()`."""
    from aiosmtpd.controller import Controller

    from tests.tickets.mailpeers import Capture, free_port

    capture = Capture()
    controller = Controller(capture, hostname="127.0.0.1", port=free_port(18600, 18699))
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    yield capture
    controller.stop()
