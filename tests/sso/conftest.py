"""A real OpenID Connect provider on loopback for the SSO tests: django-oauth-toolkit in a second
Django process (tests/sso/provider/), its own SQLite database, an RSA signing key generated for
the run. `sso_settings` points the portal at it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
CLIENT_ID = "opsportal-test"
CLIENT_SECRET = "s3cret-of-the-test-client"
ORG_CLIENT_ID = "tenant-b-own-client"
ORG_CLIENT_SECRET = "another-secret-of-tenant-b"
PASSWORD = "provider-pass-1"
REDIRECTS = ["http://testserver/admin/sso/callback/", "http://localhost/admin/sso/callback/", "http://127.0.0.1/admin/sso/callback/"]
# People at the provider. Groups become the `groups` claim; `amr:mfa` makes the provider say the
# person signed in with a second factor (amr mfa/otp, acr urn:test:mfa).
PEOPLE = [
    {"username": "alice", "email": "alice@corp.example", "first_name": "Alice", "last_name": "Admin", "groups": ["ops-admins"]},
    {"username": "bob", "email": "bob@corp.example", "groups": ["ops-admins", "amr:mfa"]},
    {"username": "carol", "email": "carol@corp.example", "groups": ["marketing"]},
    {"username": "dave", "email": "dave@corp.example", "groups": ["ops-viewers", "ops-admins"]},
]


@dataclass
class Provider:
    base: str

    @property
    def issuer(self) -> str:
        return f"{self.base}/o"

    def settings(self) -> dict:
        return {
            "PORTAL_SSO_ENABLED": True,
            "OIDC_RP_CLIENT_ID": CLIENT_ID,
            "OIDC_RP_CLIENT_SECRET": CLIENT_SECRET,
            "OIDC_OP_ISSUER": self.issuer,
            "OIDC_OP_AUTHORIZATION_ENDPOINT": f"{self.issuer}/authorize/",
            "OIDC_OP_TOKEN_ENDPOINT": f"{self.issuer}/token/",
            "OIDC_OP_USER_ENDPOINT": f"{self.issuer}/userinfo/",
            "OIDC_OP_JWKS_ENDPOINT": f"{self.issuer}/.well-known/jwks.json",
        }


def _free_port() -> int:
    for port in range(18640, 18999):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 18640-18999")


def _rsa_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory):
    """The provider process, up for the session; killed at the end."""
    folder = tmp_path_factory.mktemp("oidc-provider")
    (folder / "key.pem").write_text(_rsa_pem())
    (folder / "key.pem").chmod(0o600)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    setup = {
        "users": [{**p, "password": PASSWORD} for p in PEOPLE],
        # the platform's client and an organization's own (SsoProvider rows); redirects: the test
        # client's host, and loopback on any port (RFC 8252) for the live server
        "clients": [{"id": cid, "secret": secret, "redirect_uris": REDIRECTS} for cid, secret in
                    ((CLIENT_ID, CLIENT_SECRET), (ORG_CLIENT_ID, ORG_CLIENT_SECRET))],
    }
    (folder / "setup.json").write_text(json.dumps(setup))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL"))},
        "PYTHONPATH": str(ROOT),
        "PROVIDER_DB": str(folder / "provider.sqlite3"),
        "PROVIDER_RSA_KEY_FILE": str(folder / "key.pem"),
        "PROVIDER_ISSUER": f"{base}/o",
    }
    with open(folder / "provider.log", "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "tests.sso.provider.serve", str(port), str(folder / "setup.json")],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_until_up(proc, base, folder)
            yield Provider(base=base)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _wait_until_up(proc, base: str, folder: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the test OIDC provider exited: {(folder / 'provider.log').read_text()[-2000:]}")
        try:
            if requests.get(f"{base}/o/.well-known/openid-configuration", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the test OIDC provider did not start within 60 s")
        time.sleep(0.2)


@pytest.fixture
def sso_settings(settings, oidc_provider):
    for name, value in oidc_provider.settings().items():
        setattr(settings, name, value)
    return oidc_provider


def provider_login(authorize_url: str, username: str, *, stop_at: str) -> str:
    """Sign in at the provider as a person would (its login form, then the authorization
    endpoint) and return the redirect back to the portal (`stop_at` prefix) with code and state."""
    browser = requests.Session()
    url = authorize_url
    for _ in range(10):
        response = browser.get(url, allow_redirects=False, timeout=10)
        if response.status_code == 200 and "idp-username" in response.text:  # the provider's login form
            response = browser.post(url, data={"username": username, "password": PASSWORD,
                                               "csrfmiddlewaretoken": browser.cookies["provider_csrftoken"],
                                               "next": parse_qs(urlsplit(url).query).get("next", [""])[0]},
                                    headers={"Referer": url}, allow_redirects=False, timeout=10)
        if response.status_code not in (301, 302):
            raise AssertionError(f"provider answered {response.status_code} at {url}: {response.text[:500]}")
        url = urljoin(url, response.headers["Location"])
        if url.startswith(stop_at):
            return url
    raise AssertionError("the provider never sent the browser back to the portal")
