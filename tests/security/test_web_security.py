"""CSRF on admin forms, cookie and header settings of the production profile, rate limits on the
token endpoint. (`check --deploy` is tests/core/test_site.py; JWT in tests/core/test_auth.py;
tenant isolation is the matrix in tests/test_isolation_matrix.py.)"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from tests.factories import PASSWORD

ROOT = Path(__file__).resolve().parents[2]


def test_admin_forms_refuse_a_post_without_csrf_token(world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.user("a", "admin"))
    url = reverse("admin:tickets_ticket_add")
    assert client.get(url).status_code == 200
    r = client.post(url, {"subject": "x"})
    assert r.status_code == 403 and b"CSRF" in r.content
    login = Client(enforce_csrf_checks=True).post(reverse("admin:login"), {"username": "a-admin", "password": PASSWORD})
    assert login.status_code == 403


def test_production_profile_cookie_and_header_settings(tmp_path):
    env = {
        # without the suite's relaxations (AXES_ENABLED=false, raised throttles)
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE" and not k.startswith(("AXES_", "API_THROTTLE"))},
        "DJANGO_ENV": "production", "SECRET_KEY": base64.b64encode(os.urandom(48)).decode(), "ALLOWED_HOSTS": "portal.example.com",
        "PORTAL_ENCRYPTION_KEYS": "1:" + base64.urlsafe_b64encode(os.urandom(32)).decode(), "PORTAL_VAR_DIR": str(tmp_path),
    }
    code = ("import json; from django.conf import settings as s; print(json.dumps({k: getattr(s, k, None) for k in ["
            "'SESSION_COOKIE_SECURE','SESSION_COOKIE_HTTPONLY','SESSION_COOKIE_SAMESITE','CSRF_COOKIE_SECURE','SECURE_SSL_REDIRECT',"
            "'SECURE_HSTS_SECONDS','SECURE_CONTENT_TYPE_NOSNIFF','X_FRAME_OPTIONS','DEBUG','AXES_ENABLED']}))")
    out = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    values = json.loads(out.stdout.strip().splitlines()[-1])
    assert values["SESSION_COOKIE_SECURE"] and values["SESSION_COOKIE_HTTPONLY"] and values["CSRF_COOKIE_SECURE"]
    assert values["SESSION_COOKIE_SAMESITE"] in ("Lax", "Strict")
    assert values["SECURE_SSL_REDIRECT"] and values["SECURE_HSTS_SECONDS"] >= 31536000 and values["SECURE_CONTENT_TYPE_NOSNIFF"]
    assert values["X_FRAME_OPTIONS"] == "DENY" and values["DEBUG"] is False and values["AXES_ENABLED"] is True


def test_token_endpoint_is_rate_limited(world, monkeypatch):
    from django.core.cache import cache
    from rest_framework.throttling import ScopedRateThrottle

    # the rates are read once at import (API_THROTTLE_AUTH); `make test` raises them for the suite
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {**ScopedRateThrottle.THROTTLE_RATES, "auth": "3/min"})
    cache.clear()
    client = APIClient()
    codes = [client.post(reverse("auth-token"), {"username": "a-viewer", "password": "wrong"}, format="json").status_code
             for _ in range(5)]
    assert codes[:3] == [401, 401, 401] and codes[3:] == [429, 429], codes
    r = client.post(reverse("auth-token"), {"username": "a-viewer", "password": PASSWORD}, format="json")
    assert r.status_code == 429 and int(r["Retry-After"]) >= 1 and r.json()["detail"]
