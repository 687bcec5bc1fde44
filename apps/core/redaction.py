"""Secrets out of the log: `redact_text()` and the logging filter `RedactSecrets` that
settings.LOGGING puts on every handler (and config/celery.py on the worker's), so records of every
library — Apprise naming a rejected token, urllib3 a URL, a traceback quoting a channel URL — are
scrubbed before they are written.

What is redacted: the whole address of a non-web URL (Apprise's `slack://…`, `tgram://…`,
`mailto://user:pass@…`: the secret is the address), the password of any URL's user part, the path
of known webhook hosts, `Bearer`/`Basic` credentials, values of secret-named keys (`token=`,
`api_key:`, `secret=`, `Token (…)`, query strings alike), Slack `xox?-` and Telegram bot tokens.
"""

from __future__ import annotations

import logging
import re

MASK = "[redacted]"
# URL schemes whose address is not itself a secret: only their user password and secret query
# values are masked. Any other scheme is an Apprise-style URL and masked whole.
PLAIN_SCHEMES = frozenset({"http", "https", "ws", "wss", "postgres", "postgresql", "redis", "rediss", "amqp", "amqps",
                           "smtp", "smtps", "sqlite", "file", "ftp", "sftp", "ssh"})
# Web hosts whose path carries the secret (incoming-webhook URLs).
WEBHOOK_PATHS = re.compile(
    r"^(hooks\.slack\.com|(?:\w+\.)?discord(?:app)?\.com/api/webhooks|outlook\.office(?:365)?\.com/webhook|"
    r"[\w.-]*webhook\.office\.com|api\.telegram\.org/bot|[\w.-]+\.logic\.azure\.com)",
    re.IGNORECASE,
)
URL = re.compile(r"\b(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]{1,30})://(?P<rest>[^\s'\"<>]+)")
USERINFO = re.compile(r"^(?P<user>[^/@:]*):(?P<password>[^/@]*)@")
AUTH_SCHEME = re.compile(r"\b(Bearer|Basic|Token)(\s+)[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE)
SECRET_KEYS = (r"access[_-]?token|refresh[_-]?token|token|secret|client[_-]?secret|password|passwd|pwd|"
               r"api[_-]?key|apikey|auth[_-]?token|signature|sig")
KEY_VALUE = re.compile(rf"\b({SECRET_KEYS})\b(\s*[=:]\s*|\s*\(\s*)(?!{re.escape(MASK)})([^\s)&,;'\"]+)", re.IGNORECASE)
QUERY_KEY = re.compile(r"([?&](?:key|code)=)([^&\s#'\"]+)", re.IGNORECASE)
TOKENS = re.compile(r"\bxox[a-z]-[A-Za-z0-9-]{8,}|\b\d{6,}:[A-Za-z0-9_-]{20,}")


def _url(match: re.Match) -> str:
    scheme, rest = match.group("scheme"), match.group("rest")
    if scheme.lower() not in PLAIN_SCHEMES:
        return f"{scheme}://{MASK}"
    rest = USERINFO.sub(lambda m: f"{m.group('user')}:{MASK}@", rest)
    if WEBHOOK_PATHS.match(rest):
        host = rest.split("/", 1)[0]
        return f"{scheme}://{host}/{MASK}"
    return f"{scheme}://{rest}"


def redact_text(text: str) -> str:
    """`text` with channel URLs, credentials and tokens replaced by `[redacted]`."""
    if not text:
        return text
    text = URL.sub(_url, text)
    text = QUERY_KEY.sub(lambda m: f"{m.group(1)}{MASK}", text)
    text = AUTH_SCHEME.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    text = KEY_VALUE.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    return TOKENS.sub(MASK, text)


_formatter = logging.Formatter()


class RedactSecrets(logging.Filter):
    """Scrub a record's message, traceback and stack before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is the logging module's to report
            return True
        clean = redact_text(message)
        if clean != message:
            record.msg, record.args = clean, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = _formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        return True


def install(logger: logging.Logger) -> None:
    """Put the filter on every handler of `logger` (for handlers set up outside settings.LOGGING)."""
    for handler in logger.handlers:
        if not any(isinstance(f, RedactSecrets) for f in handler.filters):
            handler.addFilter(RedactSecrets())
