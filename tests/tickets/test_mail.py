"""Email → ticket and ticket → email, against real peers on loopback: a Dovecot IMAP server
polled with imap-tools, and an aiosmtpd SMTP server that receives what the portal sends."""

from __future__ import annotations

import logging
from email.message import EmailMessage
from email.utils import make_msgid

import pytest
from django.core.management import call_command

from apps.core.crypto import decrypt
from apps.tickets.choices import ActorType, TicketStatus
from apps.tickets.mail.choices import Direction, MailboxKind, Outcome, UnknownSenders
from apps.tickets.mail.models import Mailbox, MailMessage
from apps.tickets.mail.services import mail_ingest, mailbox_poll, mailbox_save
from apps.tickets.models import Ticket, TicketAttachment, TicketMessage
from apps.tickets.services import ticket_change_status, ticket_reply

pytestmark = pytest.mark.django_db


def mail(
    sender="a-customer@example.test",
    to="support@a.test",
    subject="Printer on fire",
    body="It is on fire.",
    *,
    headers=None,
    attachments=(),
    msgid=None,
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = msgid or make_msgid(domain="customer.test")
    for key, value in (headers or {}).items():
        msg[key] = value
    msg.set_content(body)
    for name, data, ctype in attachments:
        maintype, subtype = ctype.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return bytes(msg)


def msgid_of(raw: bytes) -> str:
    import email

    return email.message_from_bytes(raw)["Message-ID"].strip("<>")


@pytest.fixture
def box(world):
    return mailbox_save(actor=world.user("a", "admin"), name="Support A", address="Support@A.test", kind=MailboxKind.SMTP)


# -- inbound: new tickets ------------------------------------------------------------------
def test_mail_from_known_customer_opens_routed_ticket_with_sla(world, box):
    row = mail_ingest(mailbox=box, raw=mail(attachments=[("log.txt", b"smoke\n", "text/plain")]))
    assert row.outcome == Outcome.CREATED and box.address == "support@a.test"
    ticket = row.ticket
    assert ticket.tenant == world.tenant("a") and ticket.customer == world.tenant("a-customer")
    assert (ticket.origin_type, ticket.target_type) == (ActorType.CUSTOMER, ActorType.TENANT)
    assert ticket.created_by == world.user("a", "customer")
    assert ticket.sla_started_at is not None and ticket.subject == "Printer on fire"
    assert ticket.messages.get().body == "It is on fire."
    att = TicketAttachment.objects.get(ticket=ticket)
    assert (att.filename, att.size, att.file.read()) == ("log.txt", 6, b"smoke\n")
    assert ticket.metadata["email"]["from"] == "a-customer@example.test"


def test_attachments_outside_the_limits_are_left_out_and_noted(world, box, settings):
    settings.TICKETS_ATTACHMENT_MAX_BYTES = 100
    raw = mail(
        attachments=[
            ("big.txt", b"x" * 500, "text/plain"),
            ("run.exe", b"MZ", "application/octet-stream"),
            ("ok.txt", b"fine", "text/plain"),
        ]
    )
    row = mail_ingest(mailbox=box, raw=raw)
    assert row.outcome == Outcome.CREATED
    assert list(TicketAttachment.objects.filter(ticket=row.ticket).values_list("filename", flat=True)) == ["ok.txt"]
    body = row.ticket.messages.get().body
    assert "big.txt is 500 bytes; the limit is 100 bytes" in body and "run.exe" in body
    assert "big.txt" in row.reason


def test_unknown_sender_refused_or_opened_unverified_per_mailbox(world, box, caplog):
    with caplog.at_level(logging.WARNING, logger="apps.tickets.mail"):
        row = mail_ingest(mailbox=box, raw=mail(sender="stranger@else.test"))
    assert row.outcome == Outcome.REFUSED and "refuses unknown senders" in row.reason
    assert "stranger@else.test" in caplog.text and not Ticket.objects.exists()

    box.unknown_senders = UnknownSenders.UNVERIFIED
    box.save()
    row = mail_ingest(mailbox=box, raw=mail(sender="Stranger <stranger@else.test>"))
    ticket = row.ticket
    assert row.outcome == Outcome.CREATED and ticket.customer is None and ticket.created_by is None
    assert ticket.tags == ["email-unverified"] and ticket.metadata["email"]["verified"] is False
    # the same stranger's reply threads in, on the customer side (no first response recorded)
    reply = mail_ingest(
        mailbox=box, raw=mail(sender="stranger@else.test", subject="Re: x", headers={"In-Reply-To": f"<{row.message_id}>"})
    )
    assert reply.outcome == Outcome.THREADED and reply.ticket == ticket
    assert reply.ticket_message.author_type == ActorType.CUSTOMER
    ticket.refresh_from_db()
    assert ticket.first_responded_at is None


def test_another_tenants_customer_is_refused_even_when_strangers_are_welcome(world, box):
    box.unknown_senders = UnknownSenders.UNVERIFIED
    box.save()
    row = mail_ingest(mailbox=box, raw=mail(sender="b-customer@example.test"))
    assert row.outcome == Outcome.REFUSED and "another tenant" in row.reason
    assert not Ticket.objects.exists() and not TicketMessage.objects.exists()


def test_same_message_id_is_taken_once(world, box):
    raw = mail()
    first = mail_ingest(mailbox=box, raw=raw)
    again = mail_ingest(mailbox=box, raw=raw)
    assert again.pk == first.pk and Ticket.objects.count() == 1


# -- inbound: replies ----------------------------------------------------------------------
def test_reply_threads_by_in_reply_to_references_or_number_in_subject(world, box):
    opened = mail_ingest(mailbox=box, raw=mail())
    ticket = opened.ticket
    by_header = mail_ingest(
        mailbox=box, raw=mail(subject="Re: fire", body="still burning", headers={"In-Reply-To": f"<{opened.message_id}>"})
    )
    by_refs = mail_ingest(
        mailbox=box, raw=mail(subject="other", body="and now smoke", headers={"References": f"<nothing@x> <{opened.message_id}>"})
    )
    by_number = mail_ingest(mailbox=box, raw=mail(subject=f"About [{ticket.number}]", body="photo attached"))
    assert {r.outcome for r in (by_header, by_refs, by_number)} == {Outcome.THREADED}
    assert {r.ticket_id for r in (by_header, by_refs, by_number)} == {ticket.pk}
    assert list(ticket.messages.values_list("body", flat=True)) == [
        "It is on fire.",
        "still burning",
        "and now smoke",
        "photo attached",
    ]
    assert Ticket.objects.count() == 1


def test_customer_reply_reopens_resolved_ticket_and_closed_one_opens_a_follow_up(world, box):
    ticket = mail_ingest(mailbox=box, raw=mail()).ticket
    agent = world.user("a", "support_agent")
    ticket_change_status(ticket, actor=agent, status=TicketStatus.RESOLVED)
    mail_ingest(mailbox=box, raw=mail(subject=f"Re: [{ticket.number}] fire", body="not fixed"))
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.OPEN
    ticket_change_status(ticket, actor=agent, status=TicketStatus.CLOSED)
    row = mail_ingest(mailbox=box, raw=mail(subject=f"Re: [{ticket.number}] fire", body="again"))
    assert row.outcome == Outcome.CREATED and row.ticket != ticket
    assert row.ticket.metadata["email"]["follow_up_of"] == ticket.number


def test_stranger_cannot_write_into_a_ticket_by_its_number(world, box):
    ticket = mail_ingest(mailbox=box, raw=mail()).ticket
    row = mail_ingest(mailbox=box, raw=mail(sender="a-viewer@example.test", subject=f"[{ticket.number}]"))
    assert row.outcome == Outcome.REFUSED
    other = mail_ingest(mailbox=box, raw=mail(sender="b-customer@example.test", subject=f"Re: [{ticket.number}]"))
    assert other.outcome == Outcome.REFUSED and "not a party" in other.reason
    assert ticket.messages.count() == 1


AUTO = [
    {"Auto-Submitted": "auto-replied"},
    {"Precedence": "bulk"},
    {"X-Loop": "support@a.test"},
    {"X-Autoreply": "yes"},
    {"Return-Path": "<>"},
]


@pytest.mark.parametrize("headers", AUTO, ids=lambda h: next(iter(h)))
def test_auto_replies_and_loops_never_open_or_reopen(world, box, headers):
    ticket = mail_ingest(mailbox=box, raw=mail()).ticket
    ticket_change_status(ticket, actor=world.user("a", "support_agent"), status=TicketStatus.RESOLVED)
    new = mail_ingest(mailbox=box, raw=mail(subject="Out of office", headers=headers))
    reply = mail_ingest(mailbox=box, raw=mail(subject=f"Re: [{ticket.number}] Out of office", headers=headers))
    assert new.outcome == reply.outcome == Outcome.IGNORED and new.reason
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.RESOLVED and ticket.messages.count() == 1 and Ticket.objects.count() == 1


def test_bounces_and_our_own_mail_are_ignored(world, box, settings):
    bounce = mail(sender="MAILER-DAEMON@mx.customer.test", subject="Undelivered Mail Returned to Sender")
    ours = mail(msgid=f"<opsportal.x.1@{settings.TICKETS_MAIL_DOMAIN}>")
    from_us = mail(sender="support@a.test")
    report = EmailMessage()
    report["From"], report["To"], report["Subject"] = "a-customer@example.test", "support@a.test", "Delivery Status Notification"
    report.set_content("failed")
    report.make_mixed()
    report.replace_header("Content-Type", 'multipart/report; report-type=delivery-status; boundary="b"')
    rows = [mail_ingest(mailbox=box, raw=r) for r in (bounce, ours, from_us, bytes(report))]
    assert [r.outcome for r in rows] == [Outcome.IGNORED] * 4, [r.reason for r in rows]
    assert not Ticket.objects.exists()


# -- bad input -----------------------------------------------------------------------------
def _refused(box, raw, expect: str, caplog):
    with caplog.at_level(logging.WARNING, logger="apps.tickets.mail"):
        row = mail_ingest(mailbox=box, raw=raw)
    assert row.outcome == Outcome.REFUSED, row.reason
    assert expect in row.reason and expect in caplog.text
    assert not Ticket.objects.exists() and not TicketMessage.objects.exists() and not TicketAttachment.objects.exists()
    return row


def test_oversized_mail_is_refused(world, box, settings, caplog):
    settings.TICKETS_MAIL_MAX_BYTES = 2000
    _refused(box, mail(body="x" * 5000), "the limit is 2000 bytes", caplog)


def test_mail_with_500_recipients_is_refused(world, box, caplog):
    to = ", ".join(f"user{i}@customer.test" for i in range(500))
    _refused(box, mail(to=to), "500 recipients", caplog)


def test_nul_bytes_are_refused(world, box, caplog):
    raw = mail().replace(b"It is on fire.", b"It is\x00 on fire.")
    _refused(box, raw, "NUL bytes", caplog)


@pytest.mark.parametrize(
    "raw",
    [
        b"this is not a mail at all",
        b"From: \r\nSubject: nobody\r\n\r\nbody\r\n",
        b"From: <<<@@@>>>\r\nSubject: broken\r\n\r\nbody\r\n",
        b"\xff\xfe\x00garbage",
        b"   \r\n",
    ],
    ids=["no-headers", "empty-from", "bad-from", "binary", "blank"],
)
def test_malformed_mail_is_refused(world, box, caplog, raw):
    row = mail_ingest(mailbox=box, raw=raw)
    assert row.outcome == Outcome.REFUSED and row.reason
    assert not Ticket.objects.exists()


# -- IMAP polling against Dovecot ------------------------------------------------------------
@pytest.fixture
def imap_box(world, dovecot):
    return mailbox_save(
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


def test_imap_password_is_sealed(imap_box, dovecot):
    stored = Mailbox.objects.values_list("imap_password", flat=True).get(pk=imap_box.pk)
    assert stored.startswith("v") and dovecot.password not in stored and decrypt(stored) == dovecot.password


def test_poll_turns_new_imap_mail_into_tickets_and_replies_once(world, imap_box, dovecot):
    first = mail(subject="VPN down", body="Cannot connect.", attachments=[("trace.txt", b"timeout\n", "text/plain")])
    dovecot.append(first, mail(sender="stranger@else.test"), mail(headers={"Auto-Submitted": "auto-replied"}))
    counts = mailbox_poll(mailbox_id=imap_box.pk)
    assert (counts["created"], counts["refused"], counts["ignored"], counts["polled"]) == (1, 1, 1, 3)
    assert dovecot.unseen() == 0
    ticket = Ticket.objects.get()
    assert ticket.subject == "VPN down" and ticket.attachments.get().filename == "trace.txt"
    dovecot.append(mail(subject="Re: VPN down", body="Works again.", headers={"In-Reply-To": f"<{msgid_of(first)}>"}))
    call_command("poll_mailboxes", "--mailbox", str(imap_box.pk))
    assert list(ticket.messages.values_list("body", flat=True)) == ["Cannot connect.", "Works again."]
    assert mailbox_poll(mailbox_id=imap_box.pk)["polled"] == 0
    imap_box.refresh_from_db()
    assert imap_box.last_polled_at and imap_box.last_error == ""


def test_poll_with_wrong_password_is_stored_on_the_mailbox(world, imap_box, dovecot):
    mailbox_save(imap_box, actor=world.user("a", "admin"), imap_password="wrong")
    from imap_tools import MailboxLoginError

    with pytest.raises(MailboxLoginError):
        mailbox_poll(mailbox_id=imap_box.pk)
    imap_box.refresh_from_db()
    assert "Login" in imap_box.last_error or "AUTHENTICATIONFAILED" in imap_box.last_error
    assert not Ticket.objects.exists()


def test_beat_task_polls_every_active_imap_mailbox(world, imap_box, dovecot):
    from apps.tickets.tasks import mail_poll_all_task

    dovecot.append(mail())
    assert mail_poll_all_task.delay().get() == 1
    assert Ticket.objects.count() == 1


# -- outbound: public replies by email -------------------------------------------------------
def test_public_reply_goes_out_threaded_and_internal_note_never(world, box, smtp_capture, django_capture_on_commit_callbacks):
    inbound = mail_ingest(mailbox=box, raw=mail())
    ticket = inbound.ticket
    agent = world.user("a", "support_agent")
    with django_capture_on_commit_callbacks(execute=True):
        ticket_reply(ticket, actor=agent, body="Only staff see this.", is_internal=True)
    with django_capture_on_commit_callbacks(execute=True):
        ticket_reply(ticket, actor=agent, body="Please switch it off and on again.")
    # (the notifications app may mail its own "new reply" notice; the ticket mail is the one with our header)
    [sent] = [m for m in smtp_capture.messages() if m["X-Opsportal-Ticket"]]
    assert sent["To"] == "a-customer@example.test" and "support@a.test" in sent["From"]
    assert sent["In-Reply-To"] == f"<{inbound.message_id}>" and f"<{inbound.message_id}>" in sent["References"]
    assert sent["X-Loop"] == "support@a.test" and ticket.number in sent["Subject"]
    assert "Please switch it off" in sent.get_content() and "Only staff" not in sent.get_content()
    out = MailMessage.objects.get(direction=Direction.OUTBOUND)
    assert f"<{out.message_id}>" == sent["Message-ID"].strip() and out.outcome == Outcome.SENT

    # the customer's client answers the sent mail: it threads by our Message-ID, quote cut off
    answer = mail(
        subject=f"Re: {sent['Subject']}",
        body=f"Done, thanks.\n\n> {sent.get_content()}",
        headers={"In-Reply-To": sent["Message-ID"], "References": f"{sent['References']} {sent['Message-ID']}"},
    )
    row = mail_ingest(mailbox=box, raw=answer)
    assert row.outcome == Outcome.THREADED and row.ticket == ticket and row.ticket_message.body == "Done, thanks."
    # an auto-reply to our mail (it carries our X-Loop back) opens nothing
    echo = mail(subject=f"Re: {sent['Subject']}", headers={"X-Loop": "support@a.test", "In-Reply-To": sent["Message-ID"]})
    assert mail_ingest(mailbox=box, raw=echo).outcome == Outcome.IGNORED


def test_reply_on_a_portal_ticket_sends_no_mail(world, smtp_capture, django_capture_on_commit_callbacks):
    from apps.tickets.services import ticket_create

    ticket = ticket_create(actor=world.user("a", "customer"), subject="portal", message="made in the portal")
    with django_capture_on_commit_callbacks(execute=True):
        ticket_reply(ticket, actor=world.user("a", "support_agent"), body="answer")
    assert [m for m in smtp_capture.messages() if m["X-Opsportal-Ticket"]] == [] and not MailMessage.objects.exists()


def _mails_to(capture, address: str) -> list:
    return [m for m in capture.messages() if address in m["To"].lower()]


def test_staff_reply_on_an_emailed_ticket_reaches_the_requester_once(world, box, smtp_capture, django_capture_on_commit_callbacks):
    """The threaded reply is the requester's "new reply" email: the notifications app's own notice
    to them stays in the app (it would be a second email about the same reply)."""
    from apps.notifications.models import Notification

    customer = world.user("a", "customer")
    ticket = mail_ingest(mailbox=box, raw=mail(sender=customer.email.upper())).ticket
    assert ticket.created_by == customer
    with django_capture_on_commit_callbacks(execute=True):
        ticket_reply(ticket, actor=world.user("a", "support_agent"), body="Please switch it off and on again.")
    [sent] = _mails_to(smtp_capture, customer.email.lower())
    assert sent["X-Opsportal-Ticket"] == ticket.number and "switch it off" in sent.get_content()
    told = Notification.objects.get(recipient=customer, notification_type="ticket_reply")
    assert not told.deliveries.filter(kind="email").exists()


def test_staff_reply_on_a_portal_ticket_is_one_notification_email(world, smtp_capture, django_capture_on_commit_callbacks):
    from apps.tickets.services import ticket_create

    customer = world.user("a", "customer")
    ticket = ticket_create(actor=customer, subject="portal", message="made in the portal")
    with django_capture_on_commit_callbacks(execute=True):
        ticket_reply(ticket, actor=world.user("a", "support_agent"), body="answer")
    [sent] = _mails_to(smtp_capture, customer.email.lower())
    assert not sent["X-Opsportal-Ticket"] and ticket.number in sent["Subject"]


# -- admin -----------------------------------------------------------------------------------
def test_admin_mailbox_password_is_write_only_and_sealed(world, client):
    admin_user = world.user("a", "admin")
    client.force_login(admin_user)
    form = {
        "name": "Support",
        "address": "help@a.test",
        "kind": "imap",
        "unknown_senders": "refuse",
        "is_active": "on",
        "imap_host": "127.0.0.1",
        "imap_port": "993",
        "imap_security": "ssl",
        "imap_username": "help",
        "imap_password": "s3cret-imap",
        "imap_folder": "INBOX",
    }
    r = client.post("/admin/tickets/mailbox/add/", form)
    assert r.status_code == 302, r.content[:2000]
    box = Mailbox.objects.get(address="help@a.test")
    assert box.tenant == world.tenant("a") and box.get_secret() == "s3cret-imap" and "s3cret" not in box.imap_password
    page = client.get(f"/admin/tickets/mailbox/{box.pk}/change/").content.decode()
    assert "s3cret-imap" not in page and box.imap_password not in page
    r = client.post(f"/admin/tickets/mailbox/{box.pk}/change/", {**form, "name": "Renamed", "imap_password": "********"})
    assert r.status_code == 302
    box.refresh_from_db()
    assert box.name == "Renamed" and box.get_secret() == "s3cret-imap"
    # an IMAP mailbox without a host is refused with the field named, nothing saved
    r = client.post("/admin/tickets/mailbox/add/", {**form, "address": "x@a.test", "imap_host": ""})
    assert r.status_code == 200 and "needs the server" in r.content.decode()
    assert not Mailbox.objects.filter(address="x@a.test").exists()


def test_support_agent_cannot_configure_mailboxes(world):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        mailbox_save(actor=world.user("a", "support_agent"), name="x", address="x@a.test", kind=MailboxKind.SMTP)
    assert not Mailbox.objects.exists()


def test_staff_reply_by_email_is_a_first_response_mailed_to_the_customer(
    world, box, smtp_capture, django_capture_on_commit_callbacks
):
    inbound = mail_ingest(mailbox=box, raw=mail())
    with django_capture_on_commit_callbacks(execute=True):
        row = mail_ingest(
            mailbox=box,
            raw=mail(sender="a-support_agent@example.test", subject=f"Re: [{inbound.ticket.number}]", body="On my way."),
        )
    assert row.outcome == Outcome.THREADED and row.ticket_message.author_type == ActorType.TENANT
    ticket = Ticket.objects.get()
    assert ticket.first_responded_at is not None
    [sent] = [m for m in smtp_capture.messages() if m["X-Opsportal-Ticket"]]
    assert sent["To"] == "a-customer@example.test" and "On my way." in sent.get_content()


def test_suspended_tenants_mailboxes_are_not_polled(world, imap_box):
    from apps.tickets.mail.services import mailboxes_due

    assert mailboxes_due() == [imap_box.pk]
    world.tenant("a").__class__.objects.filter(pk=world.tenant("a").pk).update(status="suspended")
    assert mailboxes_due() == []


# -- API -------------------------------------------------------------------------------------
def test_api_mailbox_password_is_write_only_and_poll_runs_against_dovecot(world, api, dovecot):
    client = api.as_user(world.user("a", "admin"))
    body = {
        "name": "IMAP",
        "address": "api@a.test",
        "kind": "imap",
        "imap_host": "127.0.0.1",
        "imap_port": dovecot.port,
        "imap_security": "plain",
        "imap_username": dovecot.user,
        "imap_password": dovecot.password,
    }
    r = client.post("/api/v1/mailboxes", body, format="json")
    assert r.status_code == 201, r.json()
    assert r.json()["imap_password"] == "********" and r.json()["tenant"] == "tenant-a"
    box = Mailbox.objects.get(pk=r.json()["id"])
    assert box.get_secret() == dovecot.password and dovecot.password not in box.imap_password
    r = client.patch(f"/api/v1/mailboxes/{box.pk}/", {"name": "Renamed", "imap_password": "********"}, format="json")
    assert r.status_code == 200 and Mailbox.objects.get(pk=box.pk).get_secret() == dovecot.password
    dovecot.append(mail())
    r = client.post(f"/api/v1/mailboxes/{box.pk}/poll")
    assert r.status_code == 200 and r.json()["created"] == 1
    client.patch(f"/api/v1/mailboxes/{box.pk}", {"imap_password": "wrong"}, format="json")
    r = client.post(f"/api/v1/mailboxes/{box.pk}/poll/")
    assert r.status_code == 502 and "failed" in r.json()["detail"]


def test_api_mailbox_bad_input_is_a_400(world, api):
    client = api.as_user(world.user("a", "admin"))
    r = client.post("/api/v1/mailboxes", {"name": "x", "address": "imap@a.test", "kind": "imap"}, format="json")
    assert r.status_code == 400 and "imap_host" in r.json()["errors"]
    r = client.post("/api/v1/mailboxes", {"name": "x\x00", "address": "not-an-address", "kind": "smtp"}, format="json")
    assert r.status_code == 400
    assert not Mailbox.objects.exists()
    r = api.as_user(world.user("a", "support_agent")).post(
        "/api/v1/mailboxes", {"name": "x", "address": "s@a.test", "kind": "smtp"}, format="json"
    )
    assert r.status_code == 403 and not Mailbox.objects.exists()


def test_a_poison_mail_does_not_stall_the_mailbox(world, imap_box, dovecot, monkeypatch, caplog):
    """Fault injection (no real mail makes the service crash): the sender lookup fails for one
    address; that mail is recorded as refused and flagged seen, the next one still opens a ticket."""
    from apps.tickets.mail import services

    real = services._resolve_sender

    def failing(tenant_id, address):
        if address == "poison@customer.test":
            raise RuntimeError("injected fault")
        return real(tenant_id, address)

    monkeypatch.setattr(services, "_resolve_sender", failing)
    dovecot.append(mail(sender="poison@customer.test"), mail(subject="After the poison"))
    counts = mailbox_poll(mailbox_id=imap_box.pk)
    assert (counts["refused"], counts["created"]) == (1, 1) and dovecot.unseen() == 0
    assert "could not be processed" in MailMessage.objects.get(outcome=Outcome.REFUSED).reason
    assert "injected fault" in caplog.text and Ticket.objects.get().subject == "After the poison"
