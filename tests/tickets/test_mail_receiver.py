"""The SMTP/LMTP receiver (aiosmtpd) on loopback, spoken to with smtplib: what an MTA delivering
to the portal sees. The receiver works in its own threads, so these tests commit their rows."""

from __future__ import annotations

import smtplib

import pytest

from apps.tickets.mail.choices import MailboxKind, Outcome
from apps.tickets.mail.models import MailMessage
from apps.tickets.mail.receiver import ReceiverController
from apps.tickets.mail.services import mailbox_save
from apps.tickets.models import Ticket
from tests.tickets.mailpeers import free_port
from tests.tickets.test_mail import mail

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def receiver(world):
    mailbox_save(actor=world.user("a", "admin"), name="Support A", address="support@a.test", kind=MailboxKind.SMTP)
    started = []

    def start(lmtp=False):
        controller = ReceiverController(hostname="127.0.0.1", port=free_port(18800, 18899), lmtp=lmtp)
        controller.start()
        started.append(controller)
        return controller

    yield start
    for controller in started:
        controller.stop()


def test_smtp_delivery_opens_a_ticket(receiver):
    port = receiver().port
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as client:
        refused = client.sendmail("a-customer@example.test", ["support@a.test"], mail(subject="Mail server down"))
    assert refused == {}
    ticket = Ticket.objects.get()
    assert ticket.subject == "Mail server down" and ticket.customer.slug == "customer-a"
    assert MailMessage.objects.get().outcome == Outcome.CREATED


def test_lmtp_delivery_opens_a_ticket(receiver):
    port = receiver(lmtp=True).port
    client = smtplib.LMTP("127.0.0.1", port, timeout=20)
    try:
        assert client.sendmail("a-customer@example.test", ["support@a.test"], mail(subject="Over LMTP")) == {}
    finally:
        client.quit()
    assert Ticket.objects.get().subject == "Over LMTP"


def test_unknown_recipient_is_refused_at_rcpt(receiver):
    port = receiver().port
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as client, pytest.raises(smtplib.SMTPRecipientsRefused) as err:
        client.sendmail("a-customer@example.test", ["nobody@a.test"], mail(to="nobody@a.test"))
    assert err.value.recipients["nobody@a.test"][0] == 550
    assert not MailMessage.objects.exists()


def test_refused_mail_is_answered_550_with_the_reason(receiver):
    port = receiver().port
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as client, pytest.raises(smtplib.SMTPDataError) as err:
        client.sendmail("stranger@else.test", ["support@a.test"], mail(sender="stranger@else.test"))
    assert err.value.smtp_code == 550 and b"refuses unknown senders" in err.value.smtp_error
    assert not Ticket.objects.exists() and MailMessage.objects.get().outcome == Outcome.REFUSED


def test_oversized_mail_is_refused_by_the_protocol(receiver, settings):
    settings.TICKETS_MAIL_MAX_BYTES = 4000
    port = receiver().port
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as client, pytest.raises(smtplib.SMTPException) as err:
        client.sendmail("a-customer@example.test", ["support@a.test"], mail(body="x" * 20000))
    assert "552" in str(err.value) or getattr(err.value, "smtp_code", None) == 552
    assert not Ticket.objects.exists()


def test_auto_reply_is_accepted_and_dropped(receiver):
    port = receiver().port
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as client:
        client.sendmail("a-customer@example.test", ["support@a.test"], mail(headers={"Auto-Submitted": "auto-replied"}))
    assert not Ticket.objects.exists() and MailMessage.objects.get().outcome == Outcome.IGNORED


def test_real_worker_polls_imap_and_mails_the_reply_back(world, dovecot, smtp_capture, celery_worker):
    """The whole loop on real parts: Dovecot → beat's poll task on a Celery worker → ticket;
    a staff reply → the event's handler → the send task on the worker → aiosmtpd."""
    from apps.tickets.services import ticket_reply
    from apps.tickets.tasks import mail_poll_all_task
    from tests.conftest import wait_for

    mailbox_save(
        actor=world.user("a", "admin"),
        name="IMAP A",
        address="imap@a.test",
        kind=MailboxKind.IMAP,
        imap_host="127.0.0.1",
        imap_port=dovecot.port,
        imap_security="plain",
        imap_username=dovecot.user,
        imap_password=dovecot.password,
    )
    dovecot.append(mail(subject="Through the worker"))
    mail_poll_all_task.delay()
    ticket = wait_for(lambda: Ticket.objects.filter(subject="Through the worker").first(), timeout=60)
    ticket_reply(ticket, actor=world.user("a", "support_agent"), body="Answered by the worker.")
    sent = wait_for(lambda: [m for m in smtp_capture.messages() if m["X-Opsportal-Ticket"]], timeout=60)
    assert sent[0]["To"] == "a-customer@example.test" and ticket.number in sent[0]["Subject"]
    assert MailMessage.objects.filter(direction="out", outcome=Outcome.SENT, ticket=ticket).count() == 1
