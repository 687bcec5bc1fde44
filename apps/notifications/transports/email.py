"""Email through Django's configured email backend (SMTP in production), text + HTML."""

from __future__ import annotations

import smtplib

from django.conf import settings
from django.core.mail import EmailMultiAlternatives

from .base import Message, Transport, TransportError


class EmailTransport(Transport):
    def send(self, message: Message) -> str:
        if not message.to_email:
            raise TransportError("The recipient has no email address.", permanent=True)
        mail = EmailMultiAlternatives(
            subject=message.subject.replace("\n", " ")[:250],
            body=message.text,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[message.to_email],
            headers={"X-Opsportal-Priority": message.priority},
        )
        if message.html:
            mail.attach_alternative(message.html, "text/html")
        try:
            mail.send(fail_silently=False)
        except smtplib.SMTPRecipientsRefused as exc:
            # A 4xx at RCPT (mailbox busy, relay's spool full) is "try again later"; only 5xx is final.
            codes = [code for code, _text in exc.recipients.values()]
            permanent = bool(codes) and all(500 <= code < 600 for code in codes)
            raise TransportError(f"The mail server refused {message.to_email}: {exc.recipients}", permanent=permanent) from exc
        except smtplib.SMTPResponseException as exc:
            # 5xx is a final answer, 4xx means "try again later".
            raise TransportError(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}", permanent=500 <= exc.smtp_code < 600) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise TransportError(f"Email not sent: {exc!r}") from exc
        return "sent"
