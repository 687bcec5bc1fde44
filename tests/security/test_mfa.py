"""Staff two-factor sign-in per organization (apps/core/mfa.py, Organization.require_staff_mfa).

Real logins through the admin login form, real TOTP devices (django-otp) and codes computed from
the device key the way an authenticator app does: with a device, without one (self-enrolment),
in a tenant that requires it, one that does not, one that inherits the portal default, platform
staff following the platform organization; the session API and /metrics refuse a session that
still owes its code; only platform staff change the rule."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.core.choices import StaffMfa
from tests.factories import PASSWORD

ROOT = Path(__file__).resolve().parents[2]


def _code(key: bytes) -> str:
    """The current code, as an authenticator app computes it from the key."""
    return f"{totp(key, step=30, t0=0, digits=6, drift=0):06d}"


def _login(username: str) -> Client:
    client = Client()
    r = client.post("/admin/login/?next=/admin/", {"username": username, "password": PASSWORD, "next": "/admin/"})
    assert r.status_code == 302, r.content.decode()[-800:]  # the password alone logs in
    return client


def _rule(org, value):
    org.require_staff_mfa = value
    org.save(update_fields=["require_staff_mfa"])


def _device(user) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="phone", confirmed=True)


def _opens(client) -> bool:
    r = client.get("/admin/tickets/ticket/")
    return r.status_code == 200


def test_tenant_requiring_mfa_with_a_device_asks_for_the_code_first(world):
    _rule(world.tenant("a"), StaffMfa.ON)
    user = world.user("a", "admin")
    device = _device(user)
    client = _login("a-admin")

    r = client.get("/admin/tickets/ticket/")
    assert r.status_code == 302 and r["Location"].startswith("/admin/mfa/?next=/admin/tickets/ticket/")
    assert client.get("/admin/").status_code == 302
    page = client.get(r["Location"]).content.decode()
    assert "Enter the code" in page and "mfa-secret" not in page  # a device exists: no enrolment, no secret shown
    wrong = client.post("/admin/mfa/", {"otp_token": f"{(int(_code(device.bin_key)) + 1) % 1000000:06d}", "next": "/admin/tickets/ticket/"})
    assert wrong.status_code == 200 and "not valid" in wrong.content.decode()
    assert not _opens(client)

    device.refresh_from_db()
    device.throttling_failure_count, device.throttling_failure_timestamp = 0, None  # the wrong code throttled it
    device.save()
    ok = client.post("/admin/mfa/", {"otp_token": _code(device.bin_key), "next": "/admin/tickets/ticket/"})
    assert ok.status_code == 302 and ok["Location"] == "/admin/tickets/ticket/"
    assert _opens(client)
    assert client.get("/admin/mfa/").status_code == 302  # nothing left to confirm


def test_tenant_requiring_mfa_without_a_device_enrols_one_at_sign_in(world):
    _rule(world.tenant("a"), StaffMfa.ON)
    user = world.user("a", "operator")
    client = _login("a-operator")
    r = client.get("/admin/", follow=True)
    page = r.content.decode()
    secret = re.search(r'<code id="mfa-secret">([A-Z2-7]+)</code>', page).group(1)
    assert "otpauth://totp/" in page
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    assert not TOTPDevice.objects.filter(user=user, confirmed=True).exists()
    assert not _opens(client)  # the unconfirmed device does not count

    r = client.post("/admin/mfa/", {"otp_token": _code(key), "next": "/admin/"})
    assert r.status_code == 302 and _opens(client)
    device = TOTPDevice.objects.get(user=user)
    assert device.confirmed and device.bin_key == key
    # next sign-in: the code is asked for, and no new secret is shown
    again = _login("a-operator")
    page = again.get("/admin/", follow=True).content.decode()
    assert "Enter the code" in page and secret not in page


def test_without_self_enrolment_a_person_without_device_is_told_whom_to_ask(world, settings):
    settings.PORTAL_MFA_SELF_ENROLL = False
    _rule(world.tenant("a"), StaffMfa.ON)
    client = _login("a-viewer")
    page = client.get("/admin/", follow=True).content.decode()
    assert "Ask a platform administrator" in page and "mfa-secret" not in page
    assert client.post("/admin/mfa/", {"otp_token": "123456"}).status_code == 200
    assert not _opens(client) and not TOTPDevice.objects.filter(user=world.user("a", "viewer")).exists()


def test_the_rule_is_per_organization_and_inherit_follows_the_portal_default(world, settings):
    _rule(world.tenant("a"), StaffMfa.ON)
    _rule(world.tenant("b"), StaffMfa.OFF)
    settings.PORTAL_ADMIN_REQUIRE_OTP = True
    assert _opens(_login("b-admin"))  # tenant B: off, whatever the default
    assert not _opens(_login("a-admin"))  # tenant A: on
    assert not _opens(_login("partner-admin"))  # the partner inherits: the default is on
    settings.PORTAL_ADMIN_REQUIRE_OTP = False
    assert _opens(_login("partner-admin"))
    # someone in both tenants must confirm (any organization requiring it counts)
    from apps.core.choices import Role
    from tests.factories import MembershipFactory

    MembershipFactory(user=world.user("b", "owner"), organization=world.tenant("a"), role=Role.VIEWER)
    assert not _opens(_login("b-owner"))


def test_platform_staff_and_superusers_follow_the_platform_organization(world, settings):
    from django.contrib.auth import get_user_model

    settings.PORTAL_ADMIN_REQUIRE_OTP = False
    get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    _rule(world.platform, StaffMfa.ON)
    _rule(world.tenant("a"), StaffMfa.OFF)
    assert not _opens(_login("platform-admin")) and not _opens(_login("root"))
    assert _opens(_login("a-admin"))
    _rule(world.platform, StaffMfa.OFF)
    settings.PORTAL_ADMIN_REQUIRE_OTP = True
    assert _opens(_login("platform-admin")) and _opens(_login("root"))


def test_session_api_metrics_and_switcher_refuse_a_session_owing_its_code_and_logout_works(world):
    _rule(world.tenant("a"), StaffMfa.ON)
    device = _device(world.user("a", "admin"))
    client = _login("a-admin")
    assert client.get("/api/v1/tickets/", HTTP_ACCEPT="application/json").status_code in (401, 403)
    assert client.get("/metrics").status_code == 403
    client.post("/admin/mfa/", {"otp_token": _code(device.bin_key)})
    assert client.get("/api/v1/tickets/", HTTP_ACCEPT="application/json").status_code == 200
    assert client.get("/metrics").status_code == 200
    # a pending session can always leave
    other = _login("a-admin")
    assert other.post("/admin/logout/").status_code in (200, 302)
    assert "_auth_user_id" not in other.session
    # the login page sends a pending session on to the code page instead of a dead end
    pending = _login("a-admin")
    r = pending.get("/admin/login/?next=/admin/alerts/alert/")
    assert r.status_code == 302 and r["Location"].startswith("/admin/mfa/")


def test_jwt_clients_are_not_affected(world, api):
    _rule(world.tenant("a"), StaffMfa.ON)
    assert api.as_user(world.user("a", "admin")).get("/api/v1/tickets/").status_code == 200


def test_only_platform_staff_change_the_rule(world, client):
    from apps.tenants import services

    tenant = world.tenant("a")
    with pytest.raises(PermissionDenied):
        services.organization_update(tenant, actor=world.user("a", "owner"), require_staff_mfa=StaffMfa.OFF)
    services.organization_update(tenant, actor=world.user("a", "owner"), name="Tenant A renamed", require_staff_mfa=StaffMfa.INHERIT)
    services.organization_update(tenant, actor=world.user("platform", "admin"), require_staff_mfa=StaffMfa.ON)
    tenant.refresh_from_db()
    assert tenant.require_staff_mfa == StaffMfa.ON and tenant.name == "Tenant A renamed"

    # the admin form: editable for platform staff, read-only for the tenant's owner
    client.force_login(world.user("platform", "admin"))
    assert 'name="require_staff_mfa"' in client.get(f"/admin/tenants/tenant/{tenant.pk}/change/").content.decode()
    owner = Client()
    owner.force_login(world.user("a", "owner"))
    TOTPDevice.objects.create(user=world.user("a", "owner"), name="p", confirmed=True)
    from django_otp import DEVICE_ID_SESSION_KEY

    session = owner.session
    session[DEVICE_ID_SESSION_KEY] = TOTPDevice.objects.get(user=world.user("a", "owner")).persistent_id
    session.save()
    page = owner.get(f"/admin/tenants/tenant/{tenant.pk}/change/").content.decode()
    assert 'name="require_staff_mfa"' not in page and "Required" in page


def test_production_requires_mfa_by_default(tmp_path):
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("PORTAL_ADMIN_REQUIRE_OTP", "DJANGO_ALLOW_ASYNC_UNSAFE")},
        "DJANGO_ENV": "production", "SECRET_KEY": base64.b64encode(os.urandom(48)).decode(), "ALLOWED_HOSTS": "portal.example.com",
        "PORTAL_ENCRYPTION_KEYS": "1:" + base64.urlsafe_b64encode(os.urandom(32)).decode(), "PORTAL_VAR_DIR": str(tmp_path),
    }
    code = "import json; from django.conf import settings as s; print(json.dumps([s.PORTAL_ADMIN_REQUIRE_OTP, s.PORTAL_MFA_SELF_ENROLL]))"
    out = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [True, True]


def test_jwt_login_asks_for_the_code_where_the_organization_requires_it(world):
    """The password alone no longer yields a token for staff whose organization requires
    two-factor sign-in: no code 401 (otp_required), wrong code 401, no device 403 (enrol in the
    admin first), the current code 200 with working tokens. Elsewhere the password is enough."""
    url = "/api/v1/auth/token"
    user = world.user("a", "admin")
    _rule(world.tenant("a"), StaffMfa.ON)
    client = Client()
    r = client.post(url, {"username": user.username, "password": PASSWORD}, content_type="application/json")
    assert r.status_code == 403 and "enrol" in r.json()["detail"], r.content
    device = _device(user)
    r = client.post(url, {"username": user.username, "password": PASSWORD}, content_type="application/json")
    assert r.status_code == 401 and "otp_token" in r.json()["detail"], r.content
    wrong = f"{(int(_code(device.bin_key)) + 1) % 1_000_000:06d}"
    r = client.post(url, {"username": user.username, "password": PASSWORD, "otp_token": wrong}, content_type="application/json")
    assert r.status_code == 401 and "wrong" in r.json()["detail"], r.content
    device.refresh_from_db()
    device.throttling_failure_count, device.throttling_failure_timestamp = 0, None  # the wrong code started django-otp's back-off
    device.save()
    r = client.post(url, {"username": user.username, "password": "not-the-password", "otp_token": _code(device.bin_key)}, content_type="application/json")
    assert r.status_code == 401  # the code does not replace the password
    r = client.post(url, {"username": user.username, "password": PASSWORD, "otp_token": _code(device.bin_key)}, content_type="application/json")
    assert r.status_code == 200, r.content
    assert client.get("/api/v1/tickets/", HTTP_AUTHORIZATION=f"Bearer {r.json()['access']}").status_code == 200
    # tenant B does not require it: its staff log in with the password alone
    _rule(world.tenant("b"), StaffMfa.OFF)
    other = world.user("b", "admin")
    r = client.post(url, {"username": other.username, "password": PASSWORD}, content_type="application/json")
    assert r.status_code == 200, r.content
