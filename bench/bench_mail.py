#!/usr/bin/env python
"""Inbound mail: 1,000 messages in one IMAP mailbox (a Dovecot of our own on loopback) polled
into tickets by `mailbox_poll`, the service the beat task and `manage.py poll_mailboxes` call.

The mix is what a support address receives: 70 % new mail from 50 known customers (each opens a
ticket: routing, SLA clock, first message, outbox events), 20 % replies threaded by In-Reply-To
into those tickets, 5 % with a small text attachment, 5 % auto-replies (dropped). Events go to a
real Redis broker (nothing consumes them during the run; the DB is flushed afterwards), so the
figure is the poller's own cost: IMAP fetch, parsing, the ticket writes and the outbox rows.

Prints messages per second and queries per message (every SQL statement of the poll, counted
with Django's query capture). No peer: Zammad's and django-helpdesk's IMAP importers are not
installed here (say so rather than quote a number we did not measure).
"""

import os
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, line, setup_django

N = int(os.environ.get("BENCH_MAIL_MESSAGES", "1000"))
CUSTOMERS = 50
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/8")


def build(i: int, opened: list[str]) -> tuple[bytes, str]:
    msg = EmailMessage()
    msg["From"] = f"bench-customer-{i % CUSTOMERS}@mail-bench.test"
    msg["To"] = "support@mail-bench.test"
    msgid = f"<bench-{i}-{time.time_ns()}@customer.test>"
    msg["Message-ID"] = msgid
    kind = i % 20
    if kind in (3, 7, 11, 15) and opened:  # 20 %: a reply to an earlier mail of the same customer
        msg["Subject"] = "Re: bench"
        msg["In-Reply-To"] = opened[(i // 20) % len(opened)]
    else:
        msg["Subject"] = f"Bench mail {i}: the router blinks red"
    if kind == 19:  # 5 %: an out-of-office answer
        msg["Auto-Submitted"] = "auto-replied"
    msg.set_content(f"Hello,\n\nmessage {i}: the router in room {i % 40} blinks red since this morning.\n\nRegards\n")
    if kind == 5:  # 5 %: a small log file
        msg.add_attachment(b"line\n" * 200, maintype="text", subtype="plain", filename="router.log")
    return bytes(msg), msgid


def main() -> None:
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "false"
    os.environ["CELERY_BROKER_URL"] = REDIS
    os.environ.setdefault("MEDIA_ROOT", tempfile.mkdtemp(prefix="bench-mail-media-"))
    setup_django()
    import logging

    logging.getLogger("apps.tickets.mail").setLevel(logging.WARNING)  # one INFO line per ignored mail otherwise
    sys.path.insert(0, str(ROOT))
    from django.contrib.auth import get_user_model
    from django.db import connection

    from apps.core.choices import OrgKind, Role
    from apps.tenants.models import Membership, Organization
    from apps.tickets.mail.models import Mailbox
    from apps.tickets.mail.services import mailbox_poll
    from apps.tickets.models import Ticket
    from tests.tickets.mailpeers import Dovecot

    User = get_user_model()
    stamp = str(time.time_ns())[-8:]
    tenant = Organization.objects.create(kind=OrgKind.TENANT, name="Mail bench", slug=f"mail-bench-{stamp}")
    customer = Organization.objects.create(
        kind=OrgKind.CUSTOMER, name="Mail bench customer", slug=f"mail-bench-c-{stamp}", parent=tenant
    )
    users = [
        User.objects.create(username=f"mail-bench-{stamp}-{i}", email=f"bench-customer-{i}@mail-bench.test")
        for i in range(CUSTOMERS)
    ]
    Membership.objects.bulk_create([Membership(user=u, organization=customer, role=Role.CUSTOMER) for u in users])

    directory = Path(tempfile.mkdtemp(prefix="opsportal-dovecot-"))
    directory.chmod(0o755)
    server = Dovecot(directory).start()
    box = None
    try:
        from apps.core.crypto import encrypt

        box = Mailbox.objects.create(
            tenant=tenant,
            name="bench",
            address=f"support-{stamp}@mail-bench.test",
            kind="imap",
            imap_host="127.0.0.1",
            imap_port=server.port,
            imap_security="plain",
            imap_username=server.user,
            imap_password=encrypt(server.password),
        )
        opened, raws = [], []
        for i in range(N):
            raw, msgid = build(i, opened)
            raws.append(raw)
            if i % 20 not in (3, 7, 11, 15, 19):
                opened.append(msgid)
        started = time.perf_counter()
        server.append(*raws)
        append_s = time.perf_counter() - started

        import apps.tickets.mail.services as mail_services

        executed = [0]
        ingest_s = [0.0]
        real_ingest = mail_services.mail_ingest

        def timed_ingest(**kwargs):  # the share of the poll spent in our code, not in IMAP
            t0 = time.perf_counter()
            try:
                return real_ingest(**kwargs)
            finally:
                ingest_s[0] += time.perf_counter() - t0

        def count(execute, sql, params, many, context):
            executed[0] += 1
            return execute(sql, params, many, context)

        mail_services.mail_ingest = timed_ingest
        with connection.execute_wrapper(count):
            started = time.perf_counter()
            counts = mailbox_poll(mailbox_id=box.pk, batch=N)
            elapsed = time.perf_counter() - started
        mail_services.mail_ingest = real_ingest
        polled = counts["polled"]
        tickets = Ticket.objects.filter(tenant=tenant).count()
        assert polled == N, counts
        assert tickets == counts["created"], (tickets, counts)
        line(
            "mail",
            messages=polled,
            created=counts["created"],
            threaded=counts["threaded"],
            ignored=counts["ignored"],
            refused=counts["refused"],
            poll_s=round(elapsed, 2),
            messages_per_s=round(polled / elapsed, 1),
            ms_per_message=round(elapsed * 1000 / polled, 2),
            queries_per_message=round(executed[0] / polled, 1),
            ingest_ms_per_message=round(ingest_s[0] * 1000 / polled, 2),
            imap_append_s=round(append_s, 2),
            peer="none (no IMAP importer peer installed)",
        )
    finally:
        server.stop()
        import shutil

        shutil.rmtree(directory, ignore_errors=True)
        _clean(tenant, customer, users)
        import redis

        redis.Redis.from_url(REDIS).flushdb()


def _clean(tenant, customer, users) -> None:
    from apps.core.models import Event
    from apps.tenants.models import Membership
    from apps.tickets.mail.models import Mailbox, MailMessage
    from apps.tickets.models import Ticket

    MailMessage.objects.filter(tenant=tenant).delete()
    Ticket.objects.filter(tenant=tenant).delete()
    Mailbox.objects.filter(tenant=tenant).delete()
    Event.objects.filter(tenant_id=tenant.pk).delete()
    Membership.objects.filter(organization=customer).delete()
    for u in users:
        u.delete()
    try:
        customer.delete()
        tenant.delete()
    except Exception as exc:  # rows of other apps still point at the tenant: leave it, say so
        print(f"mail bench: tenant {tenant.slug} left in the bench database ({type(exc).__name__})", file=sys.stderr)


if __name__ == "__main__":
    main()
