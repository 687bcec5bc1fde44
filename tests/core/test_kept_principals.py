"""The API's JWT authentication keeps the user row and its acting contexts per process
(apps/core/tenancy.py `kept_user`, apps/core/api/auth.py): requests read no user or membership
rows while nothing changed, follow every change to users, memberships and organizations, and
still refuse expired, revoked, inactive and deleted users at once (the database decides)."""

from datetime import datetime, timedelta

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from apps.core.choices import Role
from apps.core.tenancy import principals
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/tickets/"
BODY = {"subject": "s", "message": "m"}


def bearer(user) -> str:
    return f"Bearer {RefreshToken.for_user(user).access_token}"


def call(body=BODY, *, auth, url=URL):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=auth)
    return client.post(url, body, format="json")


def test_expired_revoked_inactive_and_deleted_users_are_refused(world, api):
    user = world.user("a", "customer")
    expired = AccessToken.for_user(user)
    expired.set_exp(from_time=datetime.now() - timedelta(hours=1))
    r = call(auth=f"Bearer {expired}")
    assert r.status_code == 401 and "expired" in r.json()["detail"]
    issued_before = AccessToken.for_user(user)
    issued_before.set_iat(at_time=datetime.now() - timedelta(seconds=10))
    assert call(auth=f"Bearer {issued_before}").status_code == 201  # kept in this process now
    assert api.as_user(user).post("/api/v1/auth/revoke-all", format="json").status_code in (200, 204)
    r = call(auth=f"Bearer {issued_before}")
    assert r.status_code == 401 and "revoked" in r.json()["detail"]
    token = bearer(user)  # issued after the revocation
    assert call(auth=token).status_code == 201
    user.is_active = False
    user.save()
    assert call(auth=token).status_code == 401
    user.delete()
    assert call(auth=token).status_code == 401


def test_deactivation_by_queryset_update_holds_at_once(world):
    """No signal, no token bump: the active flag is read from the database on every request."""
    from django.contrib.auth import get_user_model

    user = world.user("a", "customer")
    token = bearer(user)
    assert call(auth=token).status_code == 201
    get_user_model().objects.filter(pk=user.pk).update(is_active=False)
    assert call(auth=token).status_code == 401


def test_kept_principals_follow_membership_and_organization_changes(world):
    customer = world.user("a", "customer")
    token = bearer(customer)
    assert call(auth=token).json()["origin_type"] == "customer"
    membership = customer.memberships.get()
    membership.is_active = False
    membership.save()
    assert call(auth=token).status_code == 403  # no membership: no role to open tickets with
    membership.is_active = True
    membership.save()
    assert call(auth=token).status_code == 201
    org = world.tenant("a-customer")
    org.status = "suspended"
    org.save()
    assert call(auth=token).status_code == 403
    org.status = "active"
    org.save()
    # a membership that reaches further becomes the default: the new context is used at once
    MembershipFactory(user=customer, organization=world.tenant("a"), role=Role.ADMIN)
    assert call(auth=token).json()["origin_type"] == "tenant"
    partner_admin = world.user("partner", "admin")
    ptoken = bearer(partner_admin)
    assert call(auth=ptoken).status_code == 201  # serves one tenant: no need to name it
    world.tenant("partner").served_tenants.add(world.tenant("b"))
    r = call(auth=ptoken)
    assert r.status_code == 400 and "serve several" in r.json()["detail"]


def test_kept_principals_follow_queryset_updates_of_the_tenants_app(world):
    """Suspending a customer changes its organization's status with a queryset update (no signal
    for the organization); the kept context is not used any more. Any other update() of users,
    memberships or organizations is followed by `tenancy_changed()`, which does the same."""
    from apps.core.tenancy import tenancy_changed
    from apps.tenants.customers import services as customer_services
    from apps.tenants.models import Membership
    from tests.factories.customers import customer_of

    user = world.user("a", "customer")
    token = bearer(user)
    customer = customer_of(world, "a")
    assert call(auth=token).status_code == 201  # kept now
    customer_services.customer_transition(customer, actor=None, to_state="suspended", reason="unpaid")
    assert call(auth=token).status_code == 403
    customer_services.customer_transition(customer, actor=None, to_state="active", reason="paid")
    assert call(auth=token).status_code == 201
    Membership.objects.filter(user=user).update(is_active=False)
    assert call(auth=token).status_code == 201  # still kept: nothing said it changed
    tenancy_changed()
    assert call(auth=token).status_code == 403


def test_kept_principals_expire_without_a_signal(world, monkeypatch):
    import time

    from apps.tenants.models import Membership

    customer = world.user("a", "customer")
    token = bearer(customer)
    assert call(auth=token).status_code == 201
    Membership.objects.filter(user=customer).update(is_active=False)  # no signal
    later = time.monotonic() + principals.ttl + 1
    monkeypatch.setattr(time, "monotonic", lambda: later)
    assert call(auth=token).status_code == 403


def test_an_unknown_organization_is_refused_every_time(world):
    token = bearer(world.user("a", "customer"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=token, HTTP_X_ORGANIZATION="tenant-b")
    for _ in range(2):  # the refusal is kept too
        r = client.post(URL, BODY, format="json")
        assert r.status_code == 403 and "not a member" in r.json()["detail"]


def test_create_works_without_redis(world, settings):
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0",
                                   "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2}}}
    token = bearer(world.user("a", "customer"))
    for _ in range(2):
        assert call(auth=token).status_code == 201


def test_reads_no_user_or_membership_rows_once_kept(world, django_assert_num_queries):
    token = bearer(world.user("a", "customer"))
    assert call(auth=token).status_code == 201  # keeps the principal and the configuration
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=token)
    assert client.get("/api/v1/users/me").status_code == 200
    # the security state (active, revocation mark) only
    with django_assert_num_queries(1):
        assert client.get("/api/v1/users/me").status_code == 200
