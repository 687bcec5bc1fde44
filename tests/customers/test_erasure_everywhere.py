"""Issue 17 item 7: a customer's erasure leaves none of their name, e-mail or phone in any table
of the database (historical and through tables included) nor in any stored file, and the data
export holds a section per app that stores personal data."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import timezone

from apps.alerts.services import alert_raise
from apps.core.choices import Role
from apps.notifications.choices import ChannelKind
from apps.notifications.services import notify_team
from apps.targets import services as targets
from apps.tenants.customers import deletion, exports
from apps.tenants.customers.choices import CustomerState, DeletionStatus, ExportStatus
from apps.tenants.customers.services import (
    customer_activate,
    customer_reactivate,
    customer_register,
    customer_service_provision,
    customer_suspend,
    customer_transition,
)
from apps.tenants.models import DataExport, DeletionRequest
from apps.tickets.services import ticket_create, ticket_reply
from tests.factories.deployments import make_instance
from tests.factories.maintenance import MaintenanceWindowFactory
from tests.factories.monitoring import EndpointFactory
from tests.factories.notifications import DeliveryFactory, NotificationFactory
from tests.factories.targets import make_credential, make_job, make_target
from tests.targets.conftest import sshd  # noqa: F401  (the real loopback sshd)

NAME = "Quentin Blakesley-Hart"
EMAIL = "q.blakesley@example.net"
PHONE = "555-1234"
TERMS = (NAME, EMAIL, PHONE)
APP_SECTIONS = {"tickets", "ticket_messages", "ticket_attachments", "notifications", "notification_deliveries", "alerts", "job_runs"}


def _customer_with_data_everywhere(world, sshd):  # noqa: F811
    tenant, admin, agent = world.tenant("a"), world.user("a", "admin"), world.user("a", "support_agent")
    customer = customer_register(actor=admin, name=NAME, contact_email=EMAIL, contact_phone=PHONE, username="qbh-login")
    login = customer.organization.memberships.get().user
    login.first_name, login.last_name = "Quentin", "Blakesley-Hart"
    login.save()
    from django_otp.plugins.otp_totp.models import TOTPDevice

    TOTPDevice.objects.create(user=login, name=f"{EMAIL} phone", confirmed=True)
    customer_transition(customer, actor=admin, to_state=CustomerState.VERIFIED, reason="checked on the phone")
    customer_service_provision(actor=admin, customer=customer, plan="fiber-100", parameters={"contact": NAME, "phone": PHONE})
    customer_activate(customer, actor=admin)
    customer_suspend(customer, actor=admin, reason=f"{NAME} asked to pause by phone {PHONE}")

    # tickets: one the customer opened (message, attachment), replies both ways, an internal note,
    # and a ticket staff opened about the customer
    upload = SimpleUploadedFile("id-card.txt", f"{NAME} {PHONE}".encode(), content_type="text/plain")
    customer_reactivate(customer, actor=admin)
    ticket = ticket_create(actor=login, subject=f"Call me back on {PHONE}", message=f"I am {NAME}, my phone is {PHONE}, mail {EMAIL}",
                           attachments=[upload], metadata={"callback": PHONE})
    ticket_reply(ticket, actor=agent, body=f"Dear {NAME}, we will call {PHONE}.")
    ticket_reply(ticket, actor=agent, body=f"Internal: {NAME} sounds upset", is_internal=True)
    ticket_reply(ticket, actor=login, body=f"Thanks, write to {EMAIL}")
    ticket_create(actor=agent, subject=f"Line check for {NAME}", message=f"Customer {EMAIL} reports noise", target_type="platform")
    # their mail to the tenant's support address, a reply threaded by the number (the mail log keeps sender and subject)
    from email.message import EmailMessage

    from apps.tickets.mail.services import mail_ingest, mailbox_save

    box = mailbox_save(actor=admin, name="Support", address="support@erasure.test", kind="smtp")
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = f"{NAME} <{login.email or EMAIL}>", box.address, f"Re: [{ticket.number}] Noise on the line, {NAME}"
    msg["Message-ID"] = "<erasure-1@customer.test>"
    msg.set_content(f"Call me on {PHONE}")
    mail_ingest(mailbox=box, raw=bytes(msg))

    # notifications and deliveries: about the customer to staff, and to the customer's login
    notes = notify_team(tenant=tenant, role_filter=Role.SUPPORT_AGENT, title=f"Call {NAME} back", message=f"Phone {PHONE}",
                        metadata={"email": EMAIL})
    DeliveryFactory(notification=notes[0], kind=ChannelKind.SMS, last_error=f"550 mailbox {EMAIL} unknown")
    mine = NotificationFactory(tenant=tenant, recipient=login, title=f"Hello {NAME}", message=f"We have {EMAIL} on file")
    DeliveryFactory(notification=mine, kind=ChannelKind.SMS, last_error=f"number {PHONE} unreachable")

    # alerts with the customer in labels, annotations and metadata
    alert_raise(tenant=tenant, alert_type="custom", title=f"Line down for {NAME}", message=f"call {PHONE}",
                labels={"customer": NAME, "contact": EMAIL}, metadata={"phone": PHONE})

    # a job run on the real sshd whose parameter names the customer (and whose output echoes it)
    cred = make_credential(tenant, username=sshd.user, secret=sshd.key)
    cpe = make_target(tenant, name="cpe-42", port=sshd.port, credential=cred)
    job = make_job(tenant, name="greet", steps=[{"name": "greet", "type": "ssh.exec", "command": "echo Hello {{ customer }}"}],
                   parameters_schema={"type": "object", "properties": {"customer": {"type": "string"}}})
    run = targets.job_run_create(job, actor=admin, params={"customer": NAME}, targets=[cpe])
    targets.run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert NAME in "".join(run.steps.values_list("stdout", flat=True)), run.error

    targets.schedule_create(actor=admin, job=job, name=f"Weekly greeting for {NAME}", cron="0 3 * * 1", params={"customer": NAME},
                            targets=[cpe])
    # django-admin's own log of a change to the customer (what the admin writes on save)
    from django.contrib.admin.models import CHANGE, LogEntry

    LogEntry.objects.log_actions(admin.pk, [customer], CHANGE, change_message=f"Changed contact_phone to {PHONE}", single_object=True)

    # other apps' free text naming the customer (history rows of targets included)
    make_target(tenant, name=f"router of {NAME}", hostname="192.0.2.7", tags=[EMAIL])
    make_instance(tenant, name="cust-app", config={"owner": EMAIL})
    EndpointFactory(tenant=tenant, name="cust-line", labels={"customer": NAME})
    MaintenanceWindowFactory(tenant=tenant, description=f"Rewire {NAME}'s line")
    return customer, login, ticket


def _tables_mentioning(terms) -> dict[str, int]:
    """Every table of the database (historical, through and library tables alike), each row cast
    to text, searched for each term case-insensitively."""
    patterns = [f"%{t}%" for t in terms]
    found = {}
    with connection.cursor() as cur:
        cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'")
        tables = [r[0] for r in cur.fetchall()]
        assert len(tables) > 50 and "simple_history" not in tables
        for table in tables:
            quoted = connection.ops.quote_name(table)
            cur.execute(f"SELECT count(*) FROM {quoted} AS r WHERE r::text ILIKE ANY(%s)", [patterns])
            if n := cur.fetchone()[0]:
                found[table] = n
    return found


def _files_mentioning(terms) -> list[str]:
    root = Path(settings.MEDIA_ROOT)
    hits = []
    for path in root.rglob("*") if root.exists() else ():
        if not path.is_file():
            continue
        data = path.read_bytes()
        blobs = [data]
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                blobs += [z.read(n) for n in z.namelist()]
        if any(t.lower().encode() in b.lower() for b in blobs for t in terms):
            hits.append(str(path.relative_to(root)))
    return hits


@pytest.mark.django_db
def test_erasure_leaves_no_personal_data_in_any_table_or_file(world, sshd, django_capture_on_commit_callbacks):  # noqa: F811
    with django_capture_on_commit_callbacks(execute=True):
        customer, login, ticket = _customer_with_data_everywhere(world, sshd)
        exports.data_export_request(actor=world.user("a", "admin"), customer=customer)  # a file holding their data
        exports.data_export_request(actor=world.user("a", "admin"))  # the whole tenant's
        req = deletion.deletion_request_create(actor=world.user("a", "admin"), customer=customer, reason=f"{NAME} wrote from {EMAIL}")
    before = _tables_mentioning(TERMS)
    # the scenario reached every app that stores personal data, history tables included
    for table in ("tickets_ticket", "tickets_ticketmessage", "notifications_notification", "notifications_delivery", "alerts_alert",
                  "targets_jobrun", "targets_jobrunstep", "core_event", "tickets_mailmessage", "tenants_historicalorganization",
                  "tenants_historicalcustomerservice", "tenants_historicaldeletionrequest", "targets_historicaltarget", "auth_user",
                  "django_admin_log", "django_celery_beat_periodictask", "targets_jobschedule", "otp_totp_totpdevice"):
        assert table in before, (table, before)
    assert _files_mentioning(TERMS)

    DeletionRequest.objects.filter(pk=req.pk).update(due_at=timezone.now() - timedelta(minutes=1))
    from apps.tenants.tasks import execute_due_deletions_task

    with django_capture_on_commit_callbacks(execute=True):
        assert execute_due_deletions_task.delay().get() == 1
    req.refresh_from_db()
    assert req.status == DeletionStatus.COMPLETED, req.error
    left = _tables_mentioning(TERMS)
    assert left == {}, left
    assert _files_mentioning(TERMS) == []

    # rows that operational counts need stay: the tickets and their messages, the run, the alert
    ticket.refresh_from_db()
    assert ticket.messages.count() == 5 and ticket.subject and ticket.status  # 4 in the portal, 1 by mail
    report = req.report["erasers"]
    assert {"tickets", "notifications", "alerts", "targets", "tenants"} <= set(report)
    assert report["tickets"]["messages_erased"] >= 2 and report["tickets"]["attachment_files_deleted"] == 1

    # idempotent: erasing again finds nothing more and fails nothing
    from apps.tenants.customers.erasure import PersonalData
    from apps.tenants.customers.registry import erasers

    customer.refresh_from_db()
    subject = PersonalData.of(customer, extra_terms=TERMS)
    for eraser in erasers().values():
        eraser(customer, request=req, personal=subject)
    assert _tables_mentioning(TERMS) == {}


@pytest.mark.django_db
def test_export_has_a_section_per_app_with_the_customers_data(world, sshd, django_capture_on_commit_callbacks):  # noqa: F811
    with django_capture_on_commit_callbacks(execute=True):
        customer, login, ticket = _customer_with_data_everywhere(world, sshd)
        export = exports.data_export_request(actor=world.user("a", "admin"), customer=customer)
    export = DataExport.objects.get(pk=export.pk)
    assert export.status == ExportStatus.SUCCEEDED, export.error
    with zipfile.ZipFile(Path(settings.MEDIA_ROOT) / export.file) as z:
        names = {n.rsplit(".", 1)[0] for n in z.namelist()}
        assert names >= APP_SECTIONS, names
        sections = {n: json.load(io.TextIOWrapper(z.open(f"{n}.json"), encoding="utf-8")) for n in APP_SECTIONS}
    assert {t["number"] for t in sections["tickets"]} == {ticket.number}  # the staff ticket is not the customer's own
    assert any(PHONE in m["body"] for m in sections["ticket_messages"])
    assert not any("Internal" in m["body"] for m in sections["ticket_messages"])  # staff notes are not in it (docs/customers.md)
    assert sections["ticket_attachments"][0]["filename"] == "id-card.txt"
    assert any(NAME in n["title"] for n in sections["notifications"])
    assert sections["notification_deliveries"]
    assert any(a["labels"].get("customer") == NAME for a in sections["alerts"])
    assert any(r["params"].get("customer") == NAME for r in sections["job_runs"])
    # another customer's export of the same tenant holds none of this customer's rows
    from tests.factories.customers import customer_of

    with django_capture_on_commit_callbacks(execute=True):
        other = exports.data_export_request(actor=world.user("a", "admin"), customer=customer_of(world, "a"))
    other = DataExport.objects.get(pk=other.pk)
    with zipfile.ZipFile(Path(settings.MEDIA_ROOT) / other.file) as z:
        for n in APP_SECTIONS:
            assert not any(t.encode() in z.read(f"{n}.json") for t in TERMS), n


def test_erasure_by_the_beat_task_on_a_real_worker(celery_worker):
    """The production path: events dispatched and the due deletion executed by a real worker
    (committed data only); afterwards no table holds the customer's identifiers."""
    from apps.notifications.models import Notification
    from apps.tenants.tasks import execute_due_deletions_task
    from tests.conftest import wait_for
    from tests.world import build_world

    world = build_world()
    admin = world.user("a", "admin")
    customer = customer_register(actor=admin, name=NAME, contact_email=EMAIL, contact_phone=PHONE, username="qbh-login")
    login = customer.organization.memberships.get().user
    ticket_create(actor=login, subject=f"Call me back on {PHONE}", message=f"I am {NAME}, mail {EMAIL}")
    assert wait_for(lambda: Notification.objects.filter(title__contains=PHONE).exists(), timeout=30)
    req = deletion.deletion_request_create(actor=admin, customer=customer, reason=f"{NAME} asked")
    DeletionRequest.objects.filter(pk=req.pk).update(due_at=timezone.now() - timedelta(minutes=1))
    execute_due_deletions_task.delay()
    done = wait_for(lambda: DeletionRequest.objects.filter(pk=req.pk, status__in=[DeletionStatus.COMPLETED, DeletionStatus.FAILED]).first(), timeout=60)
    assert done.status == DeletionStatus.COMPLETED, done.error
    # events the erasure itself published are dispatched after it: give the worker a moment
    wait_for(lambda: not _tables_mentioning(TERMS), timeout=10)
    left = _tables_mentioning(TERMS)
    assert left == {}, left
