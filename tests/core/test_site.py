import subprocess
import sys
from pathlib import Path

import pytest
from django.urls import reverse

ROOT = Path(__file__).resolve().parents[2]


def test_schema_is_valid_openapi(db):
    out = subprocess.run(
        [sys.executable, "manage.py", "spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert out.returncode == 0, out.stderr[-3000:]


def test_swagger_ui_renders(db, client):
    r = client.get(reverse("swagger-ui"))
    assert r.status_code == 200 and b"swagger" in r.content.lower()


def test_schema_endpoint_serves(db, client):
    r = client.get(reverse("schema"))
    assert r.status_code == 200 and b"openapi" in r.content


def test_health_reports_db_and_cache(db, client):
    r = client.get(reverse("health"))  # /health/ is readiness now (tests/core/test_ops_health.py)
    body = r.json()
    assert body["checks"]["database"]["ok"] and body["checks"]["cache"]["ok"], body


def test_metrics_need_staff_or_token(world, client, settings):
    assert client.get(reverse("metrics")).status_code == 403
    settings.METRICS_TOKEN = "tok-123"
    assert client.get(reverse("metrics"), HTTP_AUTHORIZATION="Bearer tok-123").status_code == 200
    client.force_login(world.user("a", "viewer"))
    r = client.get(reverse("metrics"))
    assert r.status_code == 200 and b"django_http" in r.content


def test_admin_index_shows_org_switcher(world, client):
    client.force_login(world.user("a", "admin"))
    r = client.get(reverse("admin:index"))
    assert r.status_code == 200 and b"org-switcher" in r.content


@pytest.mark.parametrize("env,message", [
    ({"DJANGO_ENV": "production"}, "SECRET_KEY"),
    ({"DJANGO_ENV": "staging"}, "DJANGO_ENV"),
    ({"DATABASE_URL": "nosuchdb://x"}, ""),
])
def test_bad_configuration_fails_at_startup(env, message, tmp_path):
    import os

    base = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DJANGO_ENV")}
    base["PORTAL_VAR_DIR"] = str(tmp_path)
    out = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, capture_output=True, text=True, env={**base, **env})
    assert out.returncode != 0
    assert message in out.stderr


def test_production_profile_passes_check_deploy(tmp_path):
    import base64
    import os

    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        "DJANGO_ENV": "production",
        "SECRET_KEY": base64.b64encode(os.urandom(48)).decode(),
        "ALLOWED_HOSTS": "portal.example.com",
        "PORTAL_ENCRYPTION_KEYS": "1:" + base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "PORTAL_VAR_DIR": str(tmp_path),
    }
    out = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], cwd=ROOT, capture_output=True, text=True, env=env
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "no issues" in out.stdout
