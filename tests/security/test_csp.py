"""Content-Security-Policy header (apps/core/csp.py): on every HTML response, strict (no inline
script without the request's nonce), the nonce fresh per request and only where a page used it,
configurable from the environment and refused at start-up when malformed. The browser side
(nothing in the admin or Swagger UI is blocked) is tests/security/test_csp_browser.py."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from django.test import Client

ROOT = Path(__file__).resolve().parents[2]


def _directives(header: str) -> dict[str, list[str]]:
    out = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


def test_every_html_page_carries_a_strict_policy(world, client):
    client.force_login(world.user("a", "admin"))
    for url in ("/admin/login/", "/admin/", "/admin/tickets/ticket/", "/admin/tenants/membership/", "/api/docs/"):
        r = client.get(url) if url != "/admin/login/" else Client().get(url)
        assert r.status_code == 200, (url, r.status_code)
        assert r["Content-Type"].startswith("text/html")
        policy = _directives(r["Content-Security-Policy"])
        assert policy["default-src"] == ["'self'"], url
        assert "'unsafe-inline'" not in policy["script-src"] and "'unsafe-eval'" not in policy["script-src"], url
        assert "'unsafe-inline'" not in policy["style-src"], url
        assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"] and policy["base-uri"] == ["'self'"]
    # JSON answers carry it too (harmless, and a browser rendering one as HTML stays locked down)
    api = client.get("/api/v1/tickets/", HTTP_ACCEPT="application/json")
    assert api.status_code == 200 and "default-src 'self'" in api["Content-Security-Policy"]


def test_inline_style_and_script_carry_the_nonce_of_their_response(world, client):
    from apps.targets.choices import RunStatus
    from apps.targets.models import JobRun
    from tests.factories.targets import make_job

    client.force_login(world.user("a", "admin"))
    job = make_job(world.tenant("a"), name="nonce-job")
    run = JobRun.objects.create(tenant=world.tenant("a"), job=job, version=job.current_version, status=RunStatus.SUCCEEDED)
    pages = {
        "/api/docs/": "style",  # Swagger UI's inline <style>
        "/api/v1/tickets/?format=api": "style",  # the browsable API's pygments <style>
        f"/admin/targets/jobrun/{run.pk}/change/": "script",  # the live output poller
    }
    for url, tag in pages.items():
        nonces = []
        for _ in range(2):
            r = client.get(url)
            assert r.status_code == 200, (url, r.status_code)
            body = r.content.decode()
            header_nonces = re.findall(r"'nonce-([^']+)'", r["Content-Security-Policy"])
            page_nonces = set(re.findall(rf'<{tag} nonce="([^"]+)"', body))
            assert len(header_nonces) == 2 and len(set(header_nonces)) == 1, (url, header_nonces)  # script-src and style-src
            assert page_nonces == set(header_nonces), (url, header_nonces, page_nonces)
            assert "<style>" not in body and "<script>" not in body, url
            nonces.append(header_nonces[0])
        assert nonces[0] != nonces[1] and len(nonces[0]) >= 22, url
    # a page with nothing inline gets no nonce at all
    assert "nonce-" not in client.get("/admin/")["Content-Security-Policy"]


def test_swagger_ui_init_script_is_a_file_not_inline(client):
    page = client.get("/api/docs/")
    body = page.content.decode()
    assert "<script>" not in body and 'src="/api/docs/?script="' in body
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in script.content.decode()


def test_report_only_and_extra_sources_come_from_settings(client, settings):
    settings.CSP_REPORT_ONLY = True
    settings.CSP_REPORT_URI = "https://csp.example.com/report"
    settings.CSP_DIRECTIVES = {**settings.CSP_DIRECTIVES, "img-src": [*settings.CSP_DIRECTIVES["img-src"], "https://cdn.example.com"]}
    r = client.get("/admin/login/")
    assert "Content-Security-Policy" not in r
    policy = _directives(r["Content-Security-Policy-Report-Only"])
    assert "https://cdn.example.com" in policy["img-src"] and policy["report-uri"] == ["https://csp.example.com/report"]
    settings.CSP_ENABLED = False
    r = client.get("/admin/login/")
    assert "Content-Security-Policy" not in r and "Content-Security-Policy-Report-Only" not in r


def _settings_with(**extra) -> subprocess.CompletedProcess:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("CSP_")}, **extra}
    code = "from django.conf import settings; print(settings.CSP_DIRECTIVES['script-src'])"
    return subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, capture_output=True, text=True, env=env)


def test_environment_extends_a_directive_and_a_malformed_source_stops_start_up():
    ok = _settings_with(CSP_SCRIPT_SRC="https://static.example.com")
    assert ok.returncode == 0, ok.stderr[-1500:]
    assert "https://static.example.com" in ok.stdout and "'self'" in ok.stdout
    bad = _settings_with(CSP_SCRIPT_SRC="'self' 'unsafe-inline'; img-src *")
    assert bad.returncode != 0 and "ImproperlyConfigured" in bad.stderr and "CSP_SCRIPT_SRC" in bad.stderr
