"""Uploaded files are served only through permission-checked views, never by their storage path.

A ticket attachment written to MEDIA_ROOT is fetched by path (`/media/…`) as a platform
superuser, a tenant admin and anonymously: 404 every time, in every profile (development with
DEBUG, test, production). The admin's link on the ticket points at the API download view, which
applies the tenant gate and hides internal-note attachments from customers: the owner tenant's
staff get the bytes; another tenant's staff, the customer (for the internal note) and anonymous
callers do not. System checks core.E101/E102 refuse a configuration that would publish MEDIA_ROOT.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.test import APIClient

ROOT = Path(__file__).resolve().parents[2]
PUBLIC = b"public attachment bytes"
INTERNAL = b"internal note attachment bytes"


@pytest.fixture
def files(world, settings):
    from apps.tickets import services

    customer, agent = world.user("a", "customer"), world.user("a", "admin")
    ticket = services.ticket_create(actor=customer, subject="printer on fire", message="help",
                                    attachments=[SimpleUploadedFile("photo.txt", PUBLIC, content_type="text/plain")])
    services.ticket_reply(ticket, actor=agent, body="looked at it", is_internal=True,
                          attachments=[SimpleUploadedFile("internal.txt", INTERNAL, content_type="text/plain")])
    public = ticket.attachments.get(filename="photo.txt")
    internal = ticket.attachments.get(filename="internal.txt")
    for att, data in ((public, PUBLIC), (internal, INTERNAL)):
        assert (Path(settings.MEDIA_ROOT) / att.file.name).read_bytes() == data  # the file is really on disk
    return ticket, public, internal


def _download_url(att) -> str:
    return f"/api/v1/tickets/{att.ticket_id}/attachments/{att.pk}/download/"


def test_files_are_never_served_by_their_storage_path(files, world, settings):
    from django.contrib.auth import get_user_model

    _, public, internal = files
    root = get_user_model().objects.create_superuser("root", "root@example.com", "x" * 12)
    for att in (public, internal):
        path = "/" + settings.MEDIA_URL.strip("/") + "/" + att.file.name
        for who in (root, world.user("a", "admin"), None):
            client = Client()
            if who:
                client.force_login(who)
            r = client.get(path)
            assert r.status_code == 404, (path, who, r.status_code)
            assert PUBLIC not in r.content and INTERNAL not in r.content


@pytest.mark.parametrize("profile", ["development", "test", "production"])
def test_no_profile_routes_media_urls(profile, tmp_path):
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DJANGO_ALLOW_ASYNC_UNSAFE",)},
        "DJANGO_ENV": profile, "DEBUG": "true" if profile == "development" else "false", "PORTAL_VAR_DIR": str(tmp_path),
        "SECRET_KEY": base64.b64encode(os.urandom(48)).decode(), "ALLOWED_HOSTS": "portal.example.com",
        "PORTAL_ENCRYPTION_KEYS": "1:" + base64.urlsafe_b64encode(os.urandom(32)).decode(),
    }
    code = ("from django.conf import settings; from django.urls import resolve, Resolver404\n"
            "from django.core.management import call_command\n"
            "p = '/' + settings.MEDIA_URL.strip('/') + '/tickets/1/1/photo.txt'\n"
            "try:\n    resolve(p); print('ROUTED', p)\nexcept Resolver404:\n    print('NOT-ROUTED', p)\n"
            "call_command('check', tags=['security'], fail_level='ERROR')\n")
    out = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "NOT-ROUTED /media/tickets/1/1/photo.txt" in out.stdout, out.stdout


def test_admin_links_point_at_the_permission_checked_download(files, world):
    ticket, public, internal = files
    staff = Client()
    staff.force_login(world.user("a", "admin"))
    page = staff.get(f"/admin/tickets/ticket/{ticket.pk}/change/").content.decode()
    links = set(re.findall(r'href="([^"]*/attachments/[^"]*)"', page))
    assert links == {_download_url(public), _download_url(internal)}, links
    assert "/media/" not in page and public.file.name not in page
    for att, data in ((public, PUBLIC), (internal, INTERNAL)):
        r = staff.get(_download_url(att))  # the admin session follows the link
        assert r.status_code == 200 and b"".join(r.streaming_content) == data
        assert r["Content-Disposition"].startswith("attachment;")


def test_download_view_refuses_another_tenant_the_customer_for_internal_notes_and_anonymous(files, world, api):
    _, public, internal = files
    other = Client()
    other.force_login(world.user("b", "admin"))
    for att in (public, internal):
        assert other.get(_download_url(att)).status_code == 404  # another tenant's staff (admin session)
        assert api.as_user(world.user("b", "owner")).get(_download_url(att)).status_code == 404  # and by JWT
        anonymous = APIClient().get(_download_url(att))
        assert anonymous.status_code == 401 and PUBLIC not in anonymous.content
    customer = api.as_user(world.user("a", "customer"))
    r = customer.get(_download_url(public))
    assert r.status_code == 200 and b"".join(r.streaming_content) == PUBLIC
    hidden = customer.get(_download_url(internal))
    assert hidden.status_code == 404 and INTERNAL not in hidden.content
    listed = customer.get(f"/api/v1/tickets/{public.ticket_id}/").json()
    assert [a["filename"] for a in listed.get("attachments", [])] == ["photo.txt"]
    assert "file" not in listed["attachments"][0] and "/media/" not in str(listed)


def test_checks_refuse_media_inside_static_or_routed(settings, tmp_path):
    from django.urls import clear_url_caches

    from apps.core.checks import media_is_not_public

    assert media_is_not_public() == []
    settings.MEDIA_ROOT = Path(settings.STATIC_ROOT) / "uploads"
    assert [e.id for e in media_is_not_public()] == ["core.E101"]
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.ROOT_URLCONF = "tests.security.urls_serving_media"
    clear_url_caches()
    try:
        assert [e.id for e in media_is_not_public()] == ["core.E102"]
    finally:
        clear_url_caches()
