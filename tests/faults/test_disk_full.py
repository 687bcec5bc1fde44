"""The disk fills up: uploads get a clear 507, deliveries wait and retry, nothing is lost.

What is real: a tmpfs of 512 KiB mounted for the test (we run as root, as CI does) and filled
to the last block, so every write on it fails with the kernel's own ENOSPC — no mock, no
patched `open`. Two places write to disk on the way of a person's data:

1. the portal's MEDIA_ROOT, where ticket attachments land (`POST /tickets/{id}/attachments/`,
   and a new ticket with attachments) — MEDIA_ROOT points at the full tmpfs;
2. the mail relay's queue: a loopback SMTP relay (aiosmtpd) that spools each message to the full
   tmpfs before accepting it, and answers the failed write as Postfix does
   ("452 4.3.1 Insufficient system storage"), so the portal's email delivery meets a real
   transient refusal caused by a real full disk.

Expected: the API answers 507 with a message and a Retry-After (never a 500), stores nothing
(no row, no partial file), and the same upload succeeds once space returns; the email delivery
stays pending with the relay's answer, retries at growing intervals, is visible as such in the
admin, and is sent exactly once when space returns.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.faults.harness import SmtpSink, TinyDisk, chown_to_postgres, delivery_admin_pages, retry_pending_delivery

pytestmark = [pytest.mark.faults]

PAYLOAD = b"diagnostics line\n" * 2000  # 34 KB: larger than anything left on the full disk


@pytest.fixture
def disk(tmp_path):
    tiny = TinyDisk(tmp_path / "tiny").mount()
    yield tiny
    tiny.unmount()


def _files_under(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file() and p.name != ".filler")


def test_upload_on_a_full_disk_answers_507_stores_nothing_and_works_once_space_returns(disk, world, api, settings):
    from apps.tickets import services
    from apps.tickets.models import Ticket, TicketAttachment

    settings.MEDIA_ROOT = disk.path / "media"
    admin = world.user("a", "admin")
    ticket = services.ticket_create(actor=admin, subject="disk test", message="first")
    client = api.as_user(admin)
    url = f"/api/v1/tickets/{ticket.pk}/attachments/"
    disk.fill()

    r = client.post(url, {"file": SimpleUploadedFile("diag.log", PAYLOAD, content_type="text/plain")}, format="multipart")
    assert r.status_code == 507, (r.status_code, r.content[:300])
    body = r.json()
    assert "storage space" in body["detail"] and body["code"] == "insufficient_storage" and int(r["Retry-After"]) > 0
    created = client.post("/api/v1/tickets/", {"subject": "with a file", "message": "see attached",
                                               "attachments": [SimpleUploadedFile("b.log", PAYLOAD, content_type="text/plain")]},
                          format="multipart")
    assert created.status_code == 507, (created.status_code, created.content[:300])
    assert not TicketAttachment.objects.exists()
    assert Ticket.objects.filter(subject="with a file").count() == 0  # the whole ticket rolled back
    assert _files_under(disk.path) == []  # no partial file eats the space that is left

    disk.free()
    r = client.post(url, {"file": SimpleUploadedFile("diag.log", PAYLOAD, content_type="text/plain")}, format="multipart")
    assert r.status_code == 201, r.content[:300]
    download = client.get(r.json()["download_url"])
    assert download.status_code == 200 and b"".join(download.streaming_content) == PAYLOAD
    assert len(_files_under(disk.path)) == 1
    print(f"\nFAULT disk_full upload: 507 while full (free {disk.free_bytes()} B after), 201 and identical bytes once space returned")


def test_email_relay_with_a_full_disk_retries_with_backoff_visible_in_admin_then_sends_once(
    disk, world, settings, client, django_capture_on_commit_callbacks
):
    from apps.notifications import services
    from apps.notifications.choices import DeliveryStatus
    from apps.notifications.models import Delivery

    spool = disk.path / "spool"
    spool.mkdir()
    relay = SmtpSink(spool=spool).start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", relay.port, 5
    try:
        disk.fill()
        viewer = world.user("a", "viewer")
        with django_capture_on_commit_callbacks(execute=True):
            services.notify_team(tenant=world.tenant("a"), team_members=[viewer.pk], actor=None, title="disk full test", priority="high")
        delivery = Delivery.objects.get(kind="email", recipient=viewer)

        waits = retry_pending_delivery(delivery, error=lambda text: "452" in text and "storage" in text.lower())
        assert delivery.attempts == 4 and len(relay.refused) == 4 and relay.messages == []
        assert _files_under(spool) == []
        assert "Insufficient system storage" in delivery_admin_pages(client, world, delivery)

        disk.free()
        services.deliveries_send(delivery_ids=[delivery.pk], now=delivery.next_attempt_at + timedelta(seconds=1))
        services.deliveries_send(delivery_ids=[delivery.pk], now=delivery.next_attempt_at + timedelta(seconds=2))  # a duplicate task
    finally:
        relay.stop()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT
    assert [s for r, s in relay.subjects() if r == viewer.email and "disk full test" in s] != []
    assert len([1 for r, s in relay.subjects() if r == viewer.email and "disk full test" in s]) == 1
    assert len(_files_under(spool)) == 1  # queued on the relay's disk exactly once
    print(f"\nFAULT disk_full email: attempts={delivery.attempts} backoff waits={[round(w) for w in waits]}s, "
          f"relay refused {len(relay.refused)}x with 452, sent once when space returned")



@pytest.fixture
def pg_tablespace():
    """A PostgreSQL tablespace on a tmpfs of 256 KiB (created beside the test database, dropped
    after the test's transaction has rolled back: fixtures tear down in reverse order). Not under
    pytest's tmp_path: the server (user postgres) must reach it."""
    import shutil
    import tempfile
    from pathlib import Path

    import psycopg
    from django.db import connection

    base = Path(tempfile.mkdtemp(prefix="opsportal-pgfull-"))
    base.chmod(0o755)
    tiny = TinyDisk(base / "ts", size="256k").mount()
    chown_to_postgres(tiny.path)
    name = f"full_{os.getpid()}"
    params = connection.get_connection_params()
    admin = psycopg.connect(host=params.get("host") or "127.0.0.1", port=params.get("port") or 5432, user=params.get("user"),
                            dbname="postgres", autocommit=True)
    try:
        admin.execute(f"CREATE TABLESPACE {name} LOCATION '{tiny.path}'")
        yield name, tiny
    finally:
        tiny.free()
        try:
            admin.execute(f"DROP TABLESPACE IF EXISTS {name}")
        finally:
            admin.close()
            tiny.unmount()
            shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def full_tablespace(pg_tablespace, db):
    """PostgreSQL's own disk full, for real: the test database's ticket table moved, inside the
    test's transaction, onto the tablespace, whose disk is then filled to the last block. The heap
    is truncated to no pages, so the next row needs a new page and the server fails with SQLSTATE 53100 ("could not
    extend file … No space left on device"). The rollback moves the table back."""
    from django.db import connection

    name, tiny = pg_tablespace
    with connection.cursor() as cur:
        # TRUNCATE (rolled back with the test) leaves a heap of no pages, whatever earlier tests left
        cur.execute("TRUNCATE tickets_ticket CASCADE")
        cur.execute(f"ALTER TABLE tickets_ticket SET TABLESPACE {name}")
    tiny.fill()
    yield tiny
    tiny.free()

def test_postgres_disk_full_answers_507_in_the_api_and_the_admin_and_keeps_nothing(full_tablespace, world, api, client):
    from apps.tickets.models import Ticket

    customer = world.user("a", "customer")
    r = api.as_user(customer).post("/api/v1/tickets/", {"subject": "disk full", "message": "hello"}, format="json")
    assert r.status_code == 507, (r.status_code, r.content[:400])
    assert r.json()["code"] == "insufficient_storage" and "nothing was saved" in r.json()["detail"] and int(r["Retry-After"]) > 0
    client.force_login(world.user("a", "support_agent"))
    page = client.post("/admin/tickets/ticket/add/", {"subject": "disk full admin", "priority": "high", "target_type": "platform",
                                                      "message": "hello", "tags": "[]", "metadata": "{}"})
    assert page.status_code == 507 and b"Nothing was saved" in page.content and page["Retry-After"]
    assert not Ticket.objects.filter(subject__startswith="disk full").exists()
    print("\nFAULT postgres_disk_full: API 507 insufficient_storage, admin 507 page, no row")


@pytest.mark.worker
def test_customer_export_on_a_full_disk_waits_and_is_built_once_space_returns(tmp_path, settings, celery_worker):
    """A data export whose zip cannot be written (real ENOSPC on the full tmpfs under MEDIA_ROOT)
    goes back to pending with a clear error and no partial file, the real worker tries again with
    growing waits, and the export succeeds once space returns — instead of failing for good."""
    import time

    from apps.tenants.customers import exports
    from apps.tenants.customers.choices import ExportStatus
    from apps.tenants.customers.models import DataExport
    from tests.conftest import wait_for
    from tests.factories.customers import customer_of
    from tests.world import build_world

    disk = TinyDisk(tmp_path / "tiny").mount()
    try:
        settings.MEDIA_ROOT = disk.path / "media"
        settings.CUSTOMER_EXPORT_DISK_RETRY_SECONDS = 1
        world = build_world()
        customer_of(world, "a")
        disk.fill()
        export = exports.data_export_request(actor=world.user("a", "admin"), format="json")
        waiting = wait_for(lambda: DataExport.objects.filter(pk=export.pk, error__startswith=exports.DISK_WAIT).first(), timeout=30)
        assert waiting.status in (ExportStatus.PENDING, ExportStatus.RUNNING) and "No space left" in waiting.error
        time.sleep(4)  # a few retries (1 s, 2 s …) meet the same full disk
        still = DataExport.objects.get(pk=export.pk)
        assert still.status != ExportStatus.FAILED and still.error.startswith(exports.DISK_WAIT)
        assert _files_under(disk.path) == []  # no partial zip left behind
        disk.free()
        done = wait_for(lambda: DataExport.objects.filter(pk=export.pk, status=ExportStatus.SUCCEEDED).first(), timeout=60)
        assert done.size_bytes > 0 and done.row_counts.get("customers", 0) >= 1 and done.error == ""
        print(f"\nFAULT disk_full export: pending with {waiting.error[:60]!r} while full, built once space returned")
    finally:
        disk.unmount()
