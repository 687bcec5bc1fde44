"""Turning a notification (or a digest) into a subject, text and HTML for one channel kind.

Templates are looked up most specific first: (type, channel), (type, any channel),
(`*`, channel), (`*`, any channel) among the tenant's NotificationTemplate rows, then the
built-in defaults below. They are Django templates (autoescaped in HTML only)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.template import Context, Template
from django.utils.html import escape, linebreaks

from .choices import ALL_TYPES, ChannelKind

DEFAULT_SUBJECT = "[{{ notification.get_priority_display }}] {{ notification.title }}"
DEFAULT_TEXT = """{{ notification.title }}
{% if notification.message %}
{{ notification.message }}
{% endif %}{% if action_link %}
{{ notification.action_label|default:"Open" }}: {{ action_link }}
{% endif %}"""
DEFAULT_HTML = """<!doctype html><html><body style="font-family:sans-serif">
<h2 style="margin:0 0 8px">{{ notification.title }}</h2>
<p style="color:#555">Priority: {{ notification.get_priority_display }}</p>
{% if notification.message %}<div>{{ notification.message|linebreaks }}</div>{% endif %}
{% if action_link %}<p><a href="{{ action_link }}">{{ notification.action_label|default:"Open" }}</a></p>{% endif %}
</body></html>"""
DIGEST_SUBJECT = "{{ items|length }} notification{{ items|length|pluralize }} for {{ recipient_name }}"
DIGEST_TEXT = """{% for n in items %}- [{{ n.get_priority_display }}] {{ n.title }}{% if n.message %}: {{ n.message|truncatechars:200 }}{% endif %}
{% endfor %}"""
DIGEST_HTML = """<!doctype html><html><body style="font-family:sans-serif"><h2>{{ items|length }} notification{{ items|length|pluralize }}</h2>
<ul>{% for n in items %}<li><b>{{ n.title }}</b> ({{ n.get_priority_display }}){% if n.message %}<br>{{ n.message|truncatechars:200 }}{% endif %}</li>{% endfor %}</ul>
</body></html>"""


@lru_cache(maxsize=512)
def compiled(source: str) -> Template:
    """Templates are compiled once per process (sources are the cache key, so edits apply)."""
    return Template(source)


@dataclass
class Rendered:
    subject: str
    text: str
    html: str


def absolute(url: str) -> str:
    if not url or url.startswith(("http://", "https://")):
        return url
    return settings.PORTAL_BASE_URL.rstrip("/") + "/" + url.lstrip("/")


def find_template(tenant_id: int, notification_type: str, kind: str, cache: dict | None = None):
    """The tenant's most specific template row for this type and channel, or None."""
    from .models import NotificationTemplate

    key = (tenant_id, notification_type, kind)
    if cache is not None and key in cache:
        return cache[key]
    rows = {
        (t.notification_type, t.channel): t
        for t in NotificationTemplate.objects.filter(
            tenant_id=tenant_id, notification_type__in=[notification_type, ALL_TYPES], channel__in=[kind, ""]
        )
    }
    found = None
    for candidate in ((notification_type, kind), (notification_type, ""), (ALL_TYPES, kind), (ALL_TYPES, "")):
        if candidate in rows:
            found = rows[candidate]
            break
    if cache is not None:
        cache[key] = found
    return found


def render(notification, kind: str, *, template=None, items=None, recipient=None) -> Rendered:
    """Render one notification (or, with `items`, a digest of several) for channel `kind`."""
    digest = items is not None
    context = Context(
        {
            "notification": notification,
            "items": items or [],
            "recipient": recipient,
            "recipient_name": getattr(recipient, "get_full_name", lambda: "")() or getattr(recipient, "username", "you"),
            "action_link": absolute(getattr(notification, "action_url", "") or ""),
            "base_url": settings.PORTAL_BASE_URL,
        },
        autoescape=False,
    )
    if template is not None and not digest:
        subject_src, text_src, html_src = template.subject, template.body_text, template.body_html
    elif digest:
        subject_src, text_src, html_src = DIGEST_SUBJECT, DIGEST_TEXT, DIGEST_HTML
    else:
        subject_src, text_src, html_src = DEFAULT_SUBJECT, DEFAULT_TEXT, DEFAULT_HTML
    subject = " ".join(compiled(subject_src).render(context).split())
    text = compiled(text_src).render(context).strip() + "\n"
    html = ""
    if kind == ChannelKind.EMAIL:
        if html_src:
            context.autoescape = True
            html = compiled(html_src).render(context)
        else:
            html = linebreaks(escape(text))
    return Rendered(subject=subject, text=text, html=html)
