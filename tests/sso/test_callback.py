"""SSO sign-in through the real test provider (tests/sso/provider/), the portal driven by Django's
test client: claims → memberships on every sign-in, refusals, passwords switched off, amr as the
second factor."""

from __future__ import annotations

import logging

import pytest
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages

from apps.core.choices import OrgKind, Role, StaffMfa
from apps.tenants.models import Membership, SsoIdentity, SsoPolicy, SsoRoleMapping
from tests.factories import PASSWORD, MembershipFactory, OrganizationFactory, UserFactory

from .conftest import provider_login

User = get_user_model()
pytestmark = pytest.mark.django_db


@pytest.fixture
def orgs(db):
    return {
        "platform": OrganizationFactory(kind=OrgKind.PLATFORM, slug="platform", name="Platform"),
        "a": OrganizationFactory(kind=OrgKind.TENANT, slug="tenant-a", name="Tenant A"),
        "b": OrganizationFactory(kind=OrgKind.TENANT, slug="tenant-b", name="Tenant B"),
    }


def sso_sign_in(client, username: str, next_url: str = "/admin/"):
    """Start at the portal's SSO button, sign in at the provider, land on the portal's callback."""
    start = client.get(f"/admin/sso/login/?next={next_url}")
    assert start.status_code == 302, start.content[:300]
    back = provider_login(start["Location"], username, stop_at="http://testserver/")
    return client.get(back.removeprefix("http://testserver"))


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_mapping_creates_user_and_memberships_and_opens_the_admin(client, sso_settings, orgs):
    SsoRoleMapping.objects.create(organization=orgs["a"], claim="groups", value="ops-admins", role=Role.ADMIN)
    SsoRoleMapping.objects.create(organization=orgs["b"], claim="email", value="alice@corp.example", role=Role.VIEWER)
    response = sso_sign_in(client, "alice")
    assert response.status_code == 302 and response["Location"] == "/admin/"
    user = User.objects.get(email="alice@corp.example")
    assert (user.username, user.first_name, user.is_staff, user.has_usable_password()) == ("alice", "Alice", True, False)
    held = {m.organization.slug: (m.role, m.is_active) for m in Membership.objects.filter(user=user)}
    assert held == {"tenant-a": (Role.ADMIN, True), "tenant-b": (Role.VIEWER, True)}
    identity = SsoIdentity.objects.get(user=user)
    assert identity.issuer == sso_settings.issuer and identity.last_login_at is not None
    page = client.get("/admin/")
    assert page.status_code == 200 and b"Tenant A" in client.get("/admin/tenants/organization/").content


def test_each_sign_in_brings_memberships_in_line_with_the_mappings(client, sso_settings, orgs):
    mapping = SsoRoleMapping.objects.create(organization=orgs["a"], claim="groups", value="ops-admins", role=Role.ADMIN)
    to_b = SsoRoleMapping.objects.create(organization=orgs["b"], claim="groups", value="ops-viewers", role=Role.VIEWER)
    SsoRoleMapping.objects.create(organization=orgs["b"], claim="groups", value="ops-admins", role=Role.OPERATOR)
    sso_sign_in(client, "dave")
    dave = User.objects.get(username="dave")
    # two rules match tenant B: the higher role wins
    assert {m.organization.slug: m.role for m in dave.memberships.all()} == {"tenant-a": Role.ADMIN, "tenant-b": Role.OPERATOR}
    # an unrelated membership given by hand is left alone
    other = OrganizationFactory(kind=OrgKind.TENANT, slug="tenant-c", name="Tenant C")
    MembershipFactory(user=dave, organization=other, role=Role.VIEWER)

    mapping.role = Role.OPERATOR
    mapping.save()
    SsoRoleMapping.objects.filter(organization=orgs["b"]).exclude(pk=to_b.pk).delete()
    client.logout()
    sso_sign_in(client, "dave")
    assert {m.organization.slug: (m.role, m.is_active) for m in dave.memberships.all()} == {
        "tenant-a": (Role.OPERATOR, True), "tenant-b": (Role.VIEWER, True), "tenant-c": (Role.VIEWER, True)}

    to_b.value = "someone-else"  # dave's groups no longer map to tenant B: that membership is switched off
    to_b.save()
    client.logout()
    sso_sign_in(client, "dave")
    assert {m.organization.slug: (m.role, m.is_active) for m in dave.memberships.all()} == {
        "tenant-a": (Role.OPERATOR, True), "tenant-b": (Role.VIEWER, False), "tenant-c": (Role.VIEWER, True)}
    assert SsoIdentity.objects.filter(user=dave).count() == 1


def test_claims_that_map_to_nothing_are_refused_logged_and_write_nothing(client, sso_settings, orgs, caplog):
    SsoRoleMapping.objects.create(organization=orgs["a"], claim="groups", value="ops-admins", role=Role.ADMIN)
    users, memberships, identities = User.objects.count(), Membership.objects.count(), SsoIdentity.objects.count()
    with caplog.at_level(logging.WARNING, logger="apps.tenants.sso"):
        response = sso_sign_in(client, "carol")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert any("none of your groups is mapped" in m for m in messages_of(response))
    assert "no mapping matches" in caplog.text and "carol@corp.example" in caplog.text
    assert (User.objects.count(), Membership.objects.count(), SsoIdentity.objects.count()) == (users, memberships, identities)
    assert "_auth_user_id" not in client.session
    page = client.get(response["Location"])
    assert b"none of your groups is mapped" in page.content  # shown on the login page itself


def test_deactivated_account_is_refused_and_nothing_is_linked(client, sso_settings, orgs):
    SsoRoleMapping.objects.create(organization=orgs["a"], claim="groups", value="ops-admins", role=Role.ADMIN)
    sso_sign_in(client, "alice")
    alice = User.objects.get(username="alice")
    alice.is_active = False
    alice.save()
    client.logout()
    response = sso_sign_in(client, "alice")
    assert any("deactivated" in m for m in messages_of(response))
    assert "_auth_user_id" not in client.session


def test_verified_email_links_an_existing_account_once(client, sso_settings, orgs):
    existing = UserFactory(username="alice.local", email="Alice@corp.example")
    SsoRoleMapping.objects.create(organization=orgs["a"], claim="groups", value="ops-admins", role=Role.ADMIN)
    sso_sign_in(client, "alice")
    assert SsoIdentity.objects.get().user == existing
    assert not User.objects.filter(username="alice").exists()


def test_local_password_refused_when_switched_off(client, orgs, api):
    user = UserFactory(username="pat")
    MembershipFactory(user=user, organization=orgs["a"], role=Role.ADMIN)
    assert client.post("/admin/login/?next=/admin/", {"username": "pat", "password": PASSWORD}).status_code == 302
    client.logout()
    assert api.post("/api/v1/auth/token", {"username": "pat", "password": PASSWORD}, format="json").status_code == 200

    SsoPolicy.objects.create(organization=orgs["a"], password_login=False)
    page = client.post("/admin/login/?next=/admin/", {"username": "pat", "password": PASSWORD})
    assert page.status_code == 200 and "_auth_user_id" not in client.session
    assert b"Password sign-in is switched off for your organization" in page.content
    # a wrong password still gets the ordinary answer (the rule is not revealed to a guesser)
    wrong = client.post("/admin/login/?next=/admin/", {"username": "pat", "password": "nope-nope-nope"})
    assert b"switched off" not in wrong.content
    token = api.post("/api/v1/auth/token", {"username": "pat", "password": PASSWORD}, format="json")
    assert token.status_code == 401 and "switched off" in token.json()["detail"]


def test_provider_amr_satisfies_the_two_factor_rule_when_trusted(client, sso_settings, orgs):
    orgs["a"].require_staff_mfa = StaffMfa.ON
    orgs["a"].save()
    SsoRoleMapping.objects.create(organization=orgs["a"], claim="groups", value="ops-admins", role=Role.ADMIN)
    # not trusted yet: the admin asks for the portal's own TOTP
    sso_sign_in(client, "bob")
    assert client.get("/admin/")["Location"].startswith("/admin/mfa/")
    client.logout()

    SsoPolicy.objects.create(organization=orgs["a"], mfa_amr_values="mfa, hwk")
    sso_sign_in(client, "bob")
    assert client.get("/admin/").status_code == 200
    client.logout()
    # alice signed in with a password only (amr ["pwd"]): still asked for the second factor
    sso_sign_in(client, "alice")
    assert client.get("/admin/")["Location"].startswith("/admin/mfa/")
    client.logout()
    # acr works the same way
    SsoPolicy.objects.filter(organization=orgs["a"]).update(mfa_amr_values="", mfa_acr_values="urn:test:mfa")
    sso_sign_in(client, "bob")
    assert client.get("/admin/").status_code == 200


def test_provider_error_and_replayed_callback_end_on_the_login_page(client, sso_settings, orgs):
    response = client.get("/admin/sso/callback/?error=access_denied&state=x")
    assert response["Location"].startswith("/admin/login/")
    assert any("refused the sign-in (access_denied)" in m for m in messages_of(response))
    SsoRoleMapping.objects.create(organization=orgs["a"], claim="groups", value="ops-admins", role=Role.ADMIN)
    start = client.get("/admin/sso/login/")
    back = provider_login(start["Location"], "alice", stop_at="http://testserver/").removeprefix("http://testserver")
    assert client.get(back)["Location"] == "/admin/"
    client.logout()
    replay = client.get(back)  # the same code and state again
    assert replay["Location"].startswith("/admin/login/") and "_auth_user_id" not in client.session


def test_login_page_shows_the_sso_button_only_when_configured(client, settings, orgs):
    settings.PORTAL_SSO_ENABLED = False
    assert b"sso-button" not in client.get("/admin/login/").content
    settings.PORTAL_SSO_ENABLED = True
    settings.PORTAL_SSO_LABEL = "Sign in with Corp ID"
    page = client.get("/admin/login/?next=/admin/tickets/")
    assert b"Sign in with Corp ID" in page.content and b"/admin/sso/login/?next=/admin/tickets/" in page.content


def test_refused_sso_sign_ins_never_lock_out_the_address(client, sso_settings, orgs, settings):
    from axes.models import AccessAttempt
    from axes.utils import reset

    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 2
    reset()
    for _ in range(3):  # carol's group is not mapped yet: refused each time
        assert sso_sign_in(client, "carol")["Location"].startswith("/admin/login/")
    assert not AccessAttempt.objects.exists()
    SsoRoleMapping.objects.create(organization=orgs["a"], claim="groups", value="marketing", role=Role.VIEWER)
    assert sso_sign_in(client, "carol")["Location"] == "/admin/"
    # passwords are still counted
    for _ in range(2):
        client.post("/admin/login/", {"username": "carol", "password": "wrong-wrong-wrong"})
    assert AccessAttempt.objects.filter(username="carol").exists()


def test_bad_callbacks_end_on_the_login_page_never_a_500(client, sso_settings, orgs):
    SsoRoleMapping.objects.create(organization=orgs["a"], claim="groups", value="ops-admins", role=Role.ADMIN)
    for query in ("code=x&state=\x00", "code=x", "state=" + "s" * 5000 + "&code=y", "error=" + "e" * 5000):
        response = client.get("/admin/sso/callback/", {k: v for k, v in (p.split("=", 1) for p in query.split("&"))})
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/"), query[:40]
    # a real state of this browser with a code the provider never issued: the token endpoint says no
    start = client.get("/admin/sso/login/")
    state = start["Location"].split("state=")[1].split("&")[0]
    response = client.get("/admin/sso/callback/", {"code": "forged", "state": state})
    assert any("could not complete the sign-in" in m for m in messages_of(response))
    assert not User.objects.exists() and "_auth_user_id" not in client.session


def test_id_token_of_another_issuer_is_refused(client, sso_settings, orgs, settings):
    SsoRoleMapping.objects.create(organization=orgs["a"], claim="groups", value="ops-admins", role=Role.ADMIN)
    settings.OIDC_OP_ISSUER = "https://id.elsewhere.example"
    response = sso_sign_in(client, "alice")
    assert response["Location"].startswith("/admin/login/")
    assert not User.objects.filter(username="alice").exists() and not SsoIdentity.objects.exists()


def test_provider_down_is_a_clear_refusal(client, sso_settings, orgs, settings):
    SsoRoleMapping.objects.create(organization=orgs["a"], claim="groups", value="ops-admins", role=Role.ADMIN)
    start = client.get("/admin/sso/login/")
    back = provider_login(start["Location"], "alice", stop_at="http://testserver/").removeprefix("http://testserver")
    settings.OIDC_OP_TOKEN_ENDPOINT = "http://127.0.0.1:9/o/token/"  # nothing listens on the discard port
    response = client.get(back)
    assert any("could not complete the sign-in" in m for m in messages_of(response))
    assert not User.objects.filter(username="alice").exists()
