"""Slack, Microsoft Teams (Power Automate `workflow://` URLs), Telegram, SMS providers and any
other service Apprise knows, through an Apprise URL. We never talk to those APIs ourselves."""

from __future__ import annotations

import apprise

from .base import Message, Transport, TransportError

# Which URL schemes each kind accepts (anything Apprise accepts for `apprise`).
SCHEMES = {
    "slack": ("slack://", "https://hooks.slack.com/"),
    "teams": ("workflow://", "workflows://"),
    "telegram": ("tgram://",),
}
NOTIFY_TYPE = {"low": apprise.NotifyType.INFO, "medium": apprise.NotifyType.INFO, "high": apprise.NotifyType.WARNING, "urgent": apprise.NotifyType.FAILURE}


def check_url(kind: str, url: str) -> str | None:
    """None if Apprise accepts `url` for this kind, else a message a person can act on."""
    prefixes = SCHEMES.get(kind)
    if prefixes and not url.startswith(prefixes):
        hint = " (Teams takes Power Automate Workflows URLs; old msteams:// connector URLs no longer work)" if kind == "teams" else ""
        return f"A {kind} channel URL must start with {' or '.join(prefixes)}{hint}."
    if not apprise.Apprise().add(url):
        return "Apprise does not understand this URL; see the Apprise wiki for the URL format of your service."
    return None


class AppriseTransport(Transport):
    def send(self, message: Message) -> str:
        client = apprise.Apprise()
        if not client.add(message.url):
            raise TransportError("Apprise does not understand this channel URL.", permanent=True)
        with apprise.LogCapture(level=apprise.logging.WARNING) as logs:
            ok = client.notify(
                title=message.subject, body=message.text, body_format=apprise.NotifyFormat.TEXT,
                notify_type=NOTIFY_TYPE.get(message.priority, apprise.NotifyType.INFO),
            )
            detail = logs.getvalue().strip()[-500:]
        if not ok:
            raise TransportError(f"Apprise could not deliver: {detail or 'no detail'}")
        return "sent"
