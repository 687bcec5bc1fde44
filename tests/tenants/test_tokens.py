"""API tokens and service accounts (issue 19.1): shown once, stored hashed, one organization,
a role no higher than the issuer's, revoked or expired at once, audited, no second factor."""

import hashlib
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from apps.core.choices import Role
from apps.core.models import Event
from apps.tenants import services as tenant_services
from apps.tenants.models import ApiToken, Membership, ServiceAccount
from apps.tenants.tokens import services

ME = "users-me"
TOKENS = "apitoken-list"
ACCOUNTS = "serviceaccount-list"


def _bearer(secret, scheme="Bearer"):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"{scheme} {secret}")
    return client


def _create(api, user, **body):
    return api.as_user(user).post(reverse(TOKENS), {"name": "ci", **body}, format="json")


def test_created_token_is_shown_once_and_stored_hashed(world, api):
    answer = _create(api, world.user("a", "operator"), role="viewer")
    assert answer.status_code == 201, answer.content
    body = answer.json()
    secret = body["token"]
    assert secret.startswith("opp_") and len(secret) == 44 and body["prefix"] == secret[:12]
    assert body["organization"] == "tenant-a" and body["role"] == "viewer" and body["kind"] == "personal"
    row = ApiToken.objects.get(pk=body["id"])
    assert row.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in str(ApiToken.objects.values().get(pk=row.pk))
    listed = api.as_user(world.user("a", "operator")).get(reverse(TOKENS)).json()["results"]
    assert [t["prefix"] for t in listed] == [body["prefix"]] and "token" not in listed[0]
    detail = api.get(reverse("apitoken-detail", args=[row.pk])).json()
    assert "token" not in detail and secret not in str(detail)
    created = Event.objects.filter(name="config.created", payload__object_type="tenants.apitoken").get()
    assert created.payload["id"] == row.pk and secret not in str(created.payload)


@pytest.mark.parametrize("scheme", ["Bearer", "Token", "bearer"])
def test_token_authenticates_beside_jwt_with_its_role_capped(world, api, scheme):
    owner = world.user("a", "owner")
    _, secret = services.api_token_create(actor=owner, organization=world.tenant("a"), name="grafana", role=Role.VIEWER)
    me = _bearer(secret, scheme).get(reverse(ME))
    assert me.status_code == 200, me.content
    assert me.json()["acting_organization"] == "tenant-a" and me.json()["acting_role"] == "viewer"
    # a viewer may not add members, whatever the owner may
    refused = _bearer(secret, scheme).post(
        reverse("membership-list"), {"organization": "tenant-a", "role": "viewer", "new_username": "x"}, format="json"
    )
    assert refused.status_code == 403 and not Membership.objects.filter(user__username="x").exists()
    # the same person with a JWT still acts as owner: the two schemes live side by side
    assert api.as_user(owner).get(reverse(ME)).json()["acting_role"] == "owner"


def test_a_token_role_above_the_issuers_is_refused_and_nothing_is_created(world, api):
    answer = _create(api, world.user("a", "operator"), role="admin")
    assert answer.status_code == 403 and "above your role" in answer.json()["detail"]
    assert not ApiToken.objects.exists()


def test_the_effective_role_follows_the_issuers_current_role(world, api):
    person = world.user("a", "admin")
    _, secret = services.api_token_create(actor=person, organization=world.tenant("a"), name="x")  # role admin
    assert _bearer(secret).get(reverse(ME)).json()["acting_role"] == "admin"
    membership = Membership.objects.get(user=person, organization=world.tenant("a"))
    tenant_services.membership_update(membership, actor=world.user("a", "owner"), role=Role.VIEWER)
    assert _bearer(secret).get(reverse(ME)).json()["acting_role"] == "viewer"  # at once, not after the memo's minute
    tenant_services.membership_delete(membership, actor=world.user("a", "owner"))
    gone = _bearer(secret).get(reverse(ME))
    assert gone.status_code == 401 and gone.json()["code"] == "membership_gone" and "no longer" in gone.json()["detail"]


def test_revoked_and_expired_tokens_are_refused_at_once(world, api):
    person = world.user("a", "operator")
    token, secret = services.api_token_create(actor=person, organization=world.tenant("a"), name="x")
    assert _bearer(secret).get(reverse(ME)).status_code == 200  # the principal is now kept in the memo
    revoked = api.as_user(person).post(reverse("apitoken-revoke", args=[token.pk]))
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    answer = _bearer(secret).get(reverse(ME))
    assert answer.status_code == 401 and answer.json()["code"] == "token_revoked" and "revoked on" in answer.json()["detail"]
    assert answer["WWW-Authenticate"].startswith("Bearer")
    again = api.as_user(person).post(reverse("apitoken-revoke", args=[token.pk]))
    assert again.status_code == 400 and "already revoked" in again.json()["detail"]
    assert Event.objects.filter(name="config.updated", payload__object_type="tenants.apitoken").count() == 1

    token, secret = services.api_token_create(
        actor=person, organization=world.tenant("a"), name="y", expires_at=timezone.now() + timedelta(minutes=5)
    )
    assert _bearer(secret).get(reverse(ME)).status_code == 200
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    answer = _bearer(secret).get(reverse(ME))
    assert answer.status_code == 401 and answer.json()["code"] == "token_expired" and "expired on" in answer.json()["detail"]


def test_an_expiry_in_the_past_is_a_400(world, api):
    answer = _create(api, world.user("a", "viewer"), expires_at=(timezone.now() - timedelta(days=1)).isoformat())
    assert answer.status_code == 400 and "future" in str(answer.json()) and not ApiToken.objects.exists()


def test_revoke_all_stops_api_tokens_too(world, api):
    person = world.user("a", "viewer")
    _, secret = services.api_token_create(actor=person, organization=world.tenant("a"), name="x")
    from apps.core.models import UserSecurity

    UserSecurity.objects.update_or_create(user=person, defaults={"tokens_revoked_at": timezone.now() + timedelta(seconds=1)})
    assert _bearer(secret).get(reverse(ME)).json()["code"] == "token_revoked"


def test_a_token_acts_within_its_own_organization_only(world, api):
    person = world.user("a", "viewer")
    Membership.objects.create(user=person, organization=world.tenant("b"), role=Role.OWNER)  # owner elsewhere
    _, secret = services.api_token_create(actor=person, organization=world.tenant("a"), name="x")
    mismatch = _bearer(secret)
    mismatch.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}", HTTP_X_ORGANIZATION="tenant-b")
    answer = mismatch.get(reverse(ME))
    assert answer.status_code == 403 and "tenant-a" in answer.json()["detail"]
    assert mismatch.get(reverse("organization-detail", args=["tenant-b"])).status_code == 403
    plain = _bearer(secret).get(reverse(ME)).json()
    assert [m["organization"] for m in plain["memberships"]] == ["tenant-a"]  # only the token's own
    assert _bearer(secret).get(reverse("organization-detail", args=["tenant-b"])).status_code == 404
    same = _bearer(secret)
    same.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}", HTTP_X_ORGANIZATION="tenant-a")
    assert same.get(reverse(ME)).status_code == 200


@pytest.mark.parametrize(
    "header",
    [
        "Bearer opp_tooshort",
        "Bearer opp_" + "a" * 39 + "\x00",
        "Token " + "x" * 44,
        "Token ",
        "Bearer opp_" + "é" * 40,
    ],
)
def test_malformed_token_headers_are_a_clear_401(world, header):
    answer = APIClient(HTTP_AUTHORIZATION=header).get(reverse(ME))
    assert answer.status_code == 401, answer.content
    assert "malformed" in answer.json()["detail"]


def test_an_unknown_token_is_a_401(world):
    answer = _bearer("opp_" + "A" * 40).get(reverse(ME))
    assert answer.status_code == 401 and answer.json()["code"] == "token_not_valid"


def test_a_jwt_still_works_and_a_bad_jwt_keeps_its_message(world, api):
    assert api.as_user(world.user("a", "viewer")).get(reverse(ME)).status_code == 200
    answer = _bearer("eyJhbGciOiJIUzI1NiJ9.e30.x").get(reverse(ME))
    assert answer.status_code == 401 and "access token" in answer.json()["detail"]


def test_a_token_never_asks_for_a_second_factor(world, api):
    org = world.tenant("a")
    org.require_staff_mfa = "on"
    org.save(update_fields=["require_staff_mfa"])
    person = world.user("a", "operator")
    _, secret = services.api_token_create(actor=person, organization=org, name="x")
    from tests.factories import PASSWORD

    login = APIClient().post(reverse("auth-token"), {"username": person.username, "password": PASSWORD}, format="json")
    assert login.status_code in (401, 403) and "two-factor" in login.json()["detail"]  # people need a code (or enrol first)
    assert _bearer(secret).get(reverse(ME)).status_code == 200


def test_a_token_cannot_mint_tokens_or_service_accounts(world, api):
    _, secret = services.api_token_create(actor=world.user("a", "owner"), organization=world.tenant("a"), name="x")
    answer = _bearer(secret).post(reverse(TOKENS), {"name": "more"}, format="json")
    assert answer.status_code == 403 and "sign in" in answer.json()["detail"]
    answer = _bearer(secret).post(reverse(ACCOUNTS), {"name": "bot", "role": "viewer"}, format="json")
    assert answer.status_code == 403
    assert ApiToken.objects.count() == 1 and not ServiceAccount.objects.exists()


def test_superuser_token_carries_its_role_not_the_superuser_flag(world, api):
    person = world.user("a", "viewer")
    person.is_superuser = True
    person.save()
    _, secret = services.api_token_create(actor=person, organization=world.tenant("a"), name="x")
    assert _bearer(secret).get(reverse(ME)).json()["acting_role"] == "viewer"
    assert _bearer(secret).get(reverse("organization-detail", args=["tenant-b"])).status_code == 404


def test_last_use_is_written_once_a_minute_and_audited(world, api):
    person = world.user("a", "viewer")
    token, secret = services.api_token_create(actor=person, organization=world.tenant("a"), name="x")
    client = _bearer(secret)
    for _ in range(3):
        assert client.get(reverse(ME), REMOTE_ADDR="192.0.2.7").status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None and token.last_used_ip == "192.0.2.7"
    used = list(Event.objects.filter(name="api_token.used").values_list("payload", flat=True))
    assert len(used) == 1 and used[0]["address"] == "192.0.2.7" and used[0]["path"] == reverse(ME)
    # a minute later the next use is written (and audited) again
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now() - timedelta(seconds=61))
    client.get(reverse(ME), REMOTE_ADDR="192.0.2.7")
    assert Event.objects.filter(name="api_token.used").count() == 2


def test_nul_bytes_in_the_name_are_a_400_and_nothing_is_created(world, api):
    answer = _create(api, world.user("a", "viewer"), name="ci\x00")
    assert answer.status_code == 400 and not ApiToken.objects.exists()


# -- service accounts ---------------------------------------------------------------------------


def test_service_account_acts_through_its_tokens_only(world, api):
    owner = world.user("a", "owner")
    answer = api.as_user(owner).post(reverse(ACCOUNTS), {"name": "Grafana", "role": "operator"}, format="json")
    assert answer.status_code == 201, answer.content
    account = ServiceAccount.objects.get(pk=answer.json()["id"])
    assert account.organization == world.tenant("a") and not account.user.has_usable_password() and not account.user.is_staff
    assert Membership.objects.get(user=account.user).role == Role.OPERATOR

    issued = api.as_user(owner).post(reverse(TOKENS), {"name": "alerts", "service_account": account.pk}, format="json")
    assert issued.status_code == 201 and issued.json()["kind"] == "service_account" and issued.json()["role"] == "operator"
    secret = issued.json()["token"]
    me = _bearer(secret).get(reverse(ME)).json()
    assert me["username"] == account.user.username and me["acting_role"] == "operator"
    # an owner lists every token of the organization (to audit and revoke); the operator only their own
    assert issued.json()["id"] in [t["id"] for t in api.as_user(owner).get(reverse(TOKENS)).json()["results"]]
    assert issued.json()["id"] not in [
        t["id"] for t in api.as_user(world.user("a", "operator")).get(reverse(TOKENS)).json()["results"]
    ]

    above = api.as_user(owner).post(reverse(TOKENS), {"name": "x", "service_account": account.pk, "role": "owner"}, format="json")
    assert above.status_code == 403 and "service account" in above.json()["detail"]

    off = api.as_user(owner).patch(reverse("serviceaccount-detail", args=[account.pk]), {"is_active": False}, format="json")
    assert off.status_code == 200, off.content
    assert _bearer(secret).get(reverse(ME)).status_code == 401  # at once


def test_service_account_role_above_the_managers_is_refused(world, api):
    answer = api.as_user(world.user("a", "admin")).post(reverse(ACCOUNTS), {"name": "bot", "role": "owner"}, format="json")
    assert answer.status_code == 403 and not ServiceAccount.objects.exists()
    answer = api.as_user(world.user("a", "operator")).post(reverse(ACCOUNTS), {"name": "bot", "role": "viewer"}, format="json")
    assert answer.status_code == 403 and not ServiceAccount.objects.exists()


def test_service_account_tokens_need_a_manager_of_its_organization(world, api):
    account = services.service_account_create(
        actor=world.user("a", "owner"), organization=world.tenant("a"), name="bot", role=Role.VIEWER
    )
    answer = api.as_user(world.user("a", "operator")).post(
        reverse(TOKENS), {"name": "x", "service_account": account.pk}, format="json"
    )
    assert answer.status_code == 403 and not ApiToken.objects.exists()
    # another tenant's manager cannot even name it
    answer = api.as_user(world.user("b", "owner")).post(
        reverse(TOKENS), {"name": "x", "service_account": account.pk}, format="json"
    )
    assert answer.status_code == 400 and not ApiToken.objects.exists()
    with pytest.raises(PermissionDenied):
        services.api_token_create(
            actor=world.user("b", "owner"), organization=world.tenant("a"), name="x", service_account=account
        )


def test_service_account_user_cannot_sign_in(world):
    account = services.service_account_create(
        actor=world.user("a", "owner"), organization=world.tenant("a"), name="bot", role=Role.VIEWER
    )
    answer = APIClient().post(reverse("auth-token"), {"username": account.user.username, "password": ""}, format="json")
    assert answer.status_code in (400, 401)


# -- admin and OpenAPI --------------------------------------------------------------------------


def test_admin_creates_a_token_shows_it_once_and_revokes(world, client):
    owner = world.user("a", "owner")
    client.force_login(owner)
    page = client.post(
        reverse("admin:tenants_apitoken_add"),
        {"organization": world.tenant("a").pk, "name": "from admin", "role": "viewer", "expires_at_0": "", "expires_at_1": ""},
    )
    assert page.status_code == 200, page.content[:2000]
    token = ApiToken.objects.get(name="from admin")
    secret = page.context["secret"]
    assert token.token_hash == hashlib.sha256(secret.encode()).hexdigest() and "no-store" in page["Cache-Control"]
    assert secret not in client.get(reverse("admin:tenants_apitoken_change", args=[token.pk])).content.decode()
    client.post(reverse("admin:tenants_apitoken_changelist"), {"action": "revoke_tokens", "_selected_action": [token.pk]})
    token.refresh_from_db()
    assert token.revoked_at is not None and token.revoked_by == owner


def test_admin_refuses_a_role_above_the_issuers(world, client):
    client.force_login(world.user("a", "viewer"))
    page = client.post(
        reverse("admin:tenants_apitoken_add"),
        {"organization": world.tenant("a").pk, "name": "x", "role": "owner", "expires_at_0": "", "expires_at_1": ""},
    )
    assert page.status_code in (200, 403) and not ApiToken.objects.exists()


def test_openapi_documents_the_token_scheme(world, api):
    schema = api.as_user(world.user("a", "owner")).get("/api/schema/", HTTP_ACCEPT="application/json")
    if schema.status_code == 406:
        schema = api.get("/api/schema/?format=json")
    text = schema.content.decode()
    assert schema.status_code == 200 and "apiTokenAuth" in text and "opp_" in text


def test_service_account_is_a_member_of_one_organization_and_never_auto_assigned(world):
    from django.core.exceptions import ValidationError

    from apps.tickets.selectors import assignment_candidates

    account = services.service_account_create(
        actor=world.user("a", "owner"), organization=world.tenant("a"), name="bot", role=Role.SUPPORT_AGENT
    )
    with pytest.raises(ValidationError, match="service account"):
        tenant_services.membership_create(
            actor=world.user("platform", "admin"), organization=world.tenant("b"), role=Role.VIEWER, user=account.user
        )
    agents = {row[0] for row in assignment_candidates(tenant_id=world.tenant("a").pk, with_loads=True)}
    assert world.user("a", "support_agent").pk in agents and account.user_id not in agents


def test_revocation_holds_through_a_redis_outage(world, settings, api):
    """The token row is read from PostgreSQL on every request: a revocation made while Redis is
    unreachable is seen at once, and still after Redis is back with whatever it held."""
    from tests.core.test_revocation import DEAD_REDIS

    person = world.user("a", "viewer")
    token, secret = services.api_token_create(actor=person, organization=world.tenant("a"), name="x")
    assert _bearer(secret).get(reverse(ME)).status_code == 200  # the principal is kept now
    healthy = settings.CACHES
    settings.CACHES = {"default": {**healthy["default"], "LOCATION": "redis://127.0.0.1:1/0", "OPTIONS": DEAD_REDIS}}
    assert _bearer(secret).get(reverse(ME)).status_code == 200  # works without Redis
    services.api_token_revoke(token, actor=person)
    assert _bearer(secret).get(reverse(ME)).status_code == 401
    settings.CACHES = healthy
    assert _bearer(secret).get(reverse(ME)).json()["code"] == "token_revoked"
