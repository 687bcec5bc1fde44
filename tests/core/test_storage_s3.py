"""Files in S3-compatible object storage (STORAGE_BACKEND=s3), against a real S3 server process on
loopback (moto's server mode, `moto[server]` in requirements/dev.txt).

Ticket attachments and data exports land in the bucket, none under MEDIA_ROOT; the download views
keep their permission checks and answer a caller who passes them with a redirect to a signed URL
that expires after STORAGE_S3_URL_SECONDS, which the S3 server honours with the file's name; other
callers get no URL. Expired exports leave the bucket. The settings read every S3 variable from
NAME or NAME_FILE and refuse an incomplete configuration at start-up.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import uuid
import zipfile
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.faults.harness import free_port, wait_port

ROOT = Path(__file__).resolve().parents[2]
KEY, SECRET = "portal-test-key", "portal-test-secret"


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory):
    """moto's S3 server in its own process on a free loopback port."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=out)
    try:
        wait_port(port, timeout=30)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def s3(settings, s3_server):
    """A fresh bucket, and the portal's default storage pointed at it as STORAGE_BACKEND=s3 sets it."""
    import boto3

    bucket = f"portal-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3", endpoint_url=s3_server, aws_access_key_id=KEY, aws_secret_access_key=SECRET, region_name="us-east-1"
    )
    client.create_bucket(Bucket=bucket)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket,
                "endpoint_url": s3_server,
                "region_name": "us-east-1",
                "access_key": KEY,
                "secret_key": SECRET,
                "default_acl": None,
                "querystring_auth": True,
                "querystring_expire": 300,
                "file_overwrite": False,
                "signature_version": "s3v4",
            },
        },
    }
    client.keys = lambda: sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", []))
    client.bucket = bucket
    yield client


def _media_files(settings) -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def _signed(response, server: str) -> dict:
    assert response.status_code == 302, response.content[:300]
    location = response["Location"]
    assert location.startswith(server + "/"), location
    query = parse_qs(urlsplit(location).query)
    assert query["X-Amz-Expires"] == ["300"] and query["X-Amz-Signature"][0]
    assert "no-store" in response["Cache-Control"]
    return query


def test_attachment_goes_to_the_bucket_and_downloads_through_a_short_lived_signed_url(world, api, s3, s3_server, settings):
    from apps.tickets import services

    data = b"router config v2\n" * 100
    agent = world.user("a", "admin")
    ticket = services.ticket_create(actor=world.user("a", "customer"), subject="router", message="see file")
    up = api.as_user(agent).post(
        f"/api/v1/tickets/{ticket.pk}/attachments/",
        {"file": SimpleUploadedFile("router.txt", data, content_type="text/plain")},
        format="multipart",
    )
    assert up.status_code == 201, up.content
    [key] = s3.keys()
    assert key.startswith(f"tickets/{ticket.tenant_id}/{ticket.pk}/router") and _media_files(settings) == []
    assert s3.get_object(Bucket=s3.bucket, Key=key)["Body"].read() == data

    url = f"/api/v1/tickets/{ticket.pk}/attachments/{up.json()['id']}/download/"
    answer = api.as_user(agent).get(url)
    query = _signed(answer, s3_server)
    assert query["response-content-disposition"] == ['attachment; filename="router.txt"']
    fetched = requests.get(answer["Location"], timeout=10)
    assert fetched.status_code == 200 and fetched.content == data
    assert fetched.headers["Content-Disposition"] == 'attachment; filename="router.txt"'

    # the permission check still comes first: another tenant's admin gets no link
    other = api.as_user(world.user("b", "admin")).get(url)
    assert other.status_code == 404 and "Location" not in other


def test_export_is_stored_in_the_bucket_downloaded_signed_and_removed_on_expiry(
    world, api, s3, s3_server, settings, django_capture_on_commit_callbacks
):
    from apps.tenants.customers import exports
    from apps.tenants.customers.choices import ExportStatus
    from apps.tenants.customers.models import DataExport
    from tests.factories.customers import customer_of

    customer_of(world, "a")
    admin = world.user("a", "admin")
    with django_capture_on_commit_callbacks(execute=True):  # the build task runs (eagerly) after commit
        export = exports.data_export_request(actor=admin, format="json")
    export.refresh_from_db()
    assert export.status == ExportStatus.SUCCEEDED, export.error
    assert s3.keys() == [export.file] and export.file.startswith(f"exports/{export.tenant_id}/")
    assert _media_files(settings) == []
    assert export.size_bytes == s3.head_object(Bucket=s3.bucket, Key=export.file)["ContentLength"]

    answer = api.as_user(admin).get(f"/api/v1/exports/{export.pk}/download")
    _signed(answer, s3_server)
    archive = zipfile.ZipFile(io.BytesIO(requests.get(answer["Location"], timeout=10).content))
    assert json.loads(archive.read("manifest.json"))["export"] == export.pk
    assert DataExport.objects.get(pk=export.pk).download_count == 1
    assert api.as_user(world.user("b", "admin")).get(f"/api/v1/exports/{export.pk}/download").status_code == 404

    DataExport.objects.filter(pk=export.pk).update(expires_at=export.finished_at - timedelta(seconds=1))
    assert exports.data_exports_expire() == 1
    assert s3.keys() == []
    assert DataExport.objects.get(pk=export.pk).status == ExportStatus.EXPIRED


def test_an_unreachable_bucket_fails_the_upload_instead_of_writing_locally(world, api, s3, settings):
    """Misconfigured storage (the bucket does not exist): the upload answers 503 naming the file
    storage, and leaves no row and no local file."""
    from apps.tickets import services
    from apps.tickets.models import TicketAttachment

    settings.STORAGES["default"]["OPTIONS"]["bucket_name"] = "no-such-bucket"
    settings.STORAGES = {**settings.STORAGES}  # the changed setting resets the storage handler
    ticket = services.ticket_create(actor=world.user("a", "customer"), subject="router", message="see file")
    api.raise_request_exception = False
    up = api.as_user(world.user("a", "admin")).post(
        f"/api/v1/tickets/{ticket.pk}/attachments/",
        {"file": SimpleUploadedFile("x.txt", b"x", content_type="text/plain")},
        format="multipart",
    )
    assert up.status_code == 503 and up.json()["code"] == "file_storage_unavailable", up.content
    assert not TicketAttachment.objects.filter(ticket=ticket).exists() and _media_files(settings) == []


PRINT = "import json;from django.conf import settings as s;print(json.dumps(s.STORAGES['default']))"


def _settings(tmp_path, **env):
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "STORAGE_"))}
    base.update(PORTAL_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="config.settings", **env)
    return subprocess.run(
        [sys.executable, "-c", "import django;django.setup();" + PRINT], cwd=ROOT, capture_output=True, text=True, env=base
    )


def test_s3_settings_come_from_the_environment_and_files(tmp_path):
    (tmp_path / "secret").write_text("from-a-file\n")
    out = _settings(
        tmp_path,
        STORAGE_BACKEND="s3",
        AWS_STORAGE_BUCKET_NAME="media",
        AWS_ACCESS_KEY_ID="AKID",
        AWS_SECRET_ACCESS_KEY_FILE=str(tmp_path / "secret"),
        AWS_S3_ENDPOINT_URL="http://minio:9000",
        STORAGE_S3_URL_SECONDS="120",
    )
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["BACKEND"] == "storages.backends.s3.S3Storage"
    opts = got["OPTIONS"]
    assert (opts["bucket_name"], opts["access_key"], opts["secret_key"], opts["endpoint_url"]) == (
        "media",
        "AKID",
        "from-a-file",
        "http://minio:9000",
    )
    assert opts["querystring_auth"] is True and opts["querystring_expire"] == 120 and opts["default_acl"] is None

    default = json.loads(_settings(tmp_path).stdout.strip().splitlines()[-1])
    assert default["BACKEND"] == "apps.core.storage.AtomicFileSystemStorage"


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"STORAGE_BACKEND": "s3"}, "AWS_STORAGE_BUCKET_NAME"),
        ({"STORAGE_BACKEND": "s3", "AWS_STORAGE_BUCKET_NAME": "m", "STORAGE_S3_URL_SECONDS": "86400"}, "STORAGE_S3_URL_SECONDS"),
        ({"STORAGE_BACKEND": "gcs"}, "filesystem or s3"),
    ],
)
def test_incomplete_storage_configuration_stops_start_up(tmp_path, env, words):
    out = _settings(tmp_path, **env)
    assert out.returncode != 0 and words in out.stderr
