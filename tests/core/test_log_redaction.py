"""Secrets never reach the log: the redaction filter of the configured handlers (settings.LOGGING)
scrubs channel URLs and tokens from every library's records — here Apprise itself, driven with a
Slack URL it rejects, and the records of the portal's own loggers."""

from __future__ import annotations

import io
import logging

import pytest

TOKEN = "TIiajkdnl!azkcOXrIdevi7FQ"


@pytest.fixture
def console(settings):
    """What the console handler of settings.LOGGING writes (configured afresh, as at start-up:
    an in-process worker of another test may have replaced the root handlers), into a buffer."""
    import logging.config

    logging.config.dictConfig(settings.LOGGING)
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler) and getattr(h, "name", "") == "console"]
    assert handlers, "settings.LOGGING configures a 'console' handler on the root logger"
    buffers = []
    previous = []
    for handler in handlers:
        buffer = io.StringIO()
        previous.append(handler.setStream(buffer))
        buffers.append(buffer)
    yield lambda: "".join(b.getvalue() for b in buffers)
    for handler, stream in zip(handlers, previous, strict=True):
        handler.setStream(stream)


def test_apprise_rejecting_a_slack_url_logs_no_token(console):
    from apps.notifications.transports.apprise import AppriseTransport, check_url
    from apps.notifications.transports.base import Message, TransportError

    url = f"slack://T1JJ3T3L2/A1BRTD4JD/{TOKEN}/#general"
    assert check_url("slack", url)  # refused, and Apprise logged why
    with pytest.raises(TransportError):
        AppriseTransport().send(Message(subject="s", text="t", url=url))
    out = console()
    assert "Slack" in out, out  # Apprise's own records did reach the handler
    assert TOKEN not in out, out
    assert "[redacted]" in out


@pytest.mark.parametrize("secret_text, secret", [
    ("posting to https://hooks.slack.com/services/T000/B000/XXXXsecretXXXX failed", "XXXXsecretXXXX"),
    ("channel slack://xoxb-1234-1234-4ddbc191d40ee098cbaae6f3523ada2d/#ops rejected", "4ddbc191d40ee098cbaae6f3523ada2d"),
    ("channel tgram://123456789:AAHsecretbottoken/-100 rejected", "AAHsecretbottoken"),
    ("GET https://api.example.com/v1/x?team=ops&token=abc123secret&page=2", "abc123secret"),
    ("GET https://api.example.com/v1/x?api_key=k3y-s3cret", "k3y-s3cret"),
    ("connect to https://admin:hunter2pass@smtp.example.com:465", "hunter2pass"),
    ("header Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig", "eyJhbGciOiJIUzI1NiJ9.payload.sig"),
    ("webhook secret=whsec_5up3rs3cret signature ok", "whsec_5up3rs3cret"),
    ("json://hooks.example.com/a?-X-Token=hdrsecret", "hdrsecret"),
])
def test_every_library_record_is_redacted(console, secret_text, secret):
    logging.getLogger("urllib3.connectionpool").warning("%s", secret_text)
    logging.getLogger("apps.notifications.services").error(secret_text)
    try:
        raise RuntimeError(secret_text)
    except RuntimeError:
        logging.getLogger("celery.app.trace").exception("task failed")
    out = console()
    assert out.count("[redacted]") >= 3, out
    assert secret not in out, out


def test_ordinary_text_is_left_alone(console):
    logging.getLogger("apps.targets").warning("run 12 on https://status.example.com/page?x=1 took 3 s; token count 4")
    assert "run 12 on https://status.example.com/page?x=1 took 3 s" in console()
