"""People within reach (apps/core/users.py): the scope, the "People" admin, Django's User admin
as tenant staff see it, autocomplete on user foreign keys and user choices in portal admin forms."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from apps.core.choices import Role
from apps.core.users import PortalUser, visible_users
from tests.factories import MembershipFactory, UserFactory


def _names(qs):
    return set(qs.values_list("username", flat=True))


def test_tenant_staff_see_their_tenant_customers_and_partners_only(world):
    seen = _names(visible_users(world.user("a", "operator")))
    assert {"a-owner", "a-viewer", "a-customer", "partner-admin", "partner-support_agent"} <= seen
    assert not {u for u in seen if u.startswith(("b-", "platform-"))}


def test_partner_sees_itself_and_served_tenants(world):
    seen = _names(visible_users(world.user("partner", "support_agent")))
    assert {"partner-admin", "a-owner"} <= seen
    assert not {u for u in seen if u.startswith(("b-", "platform-"))}
    assert "a-customer" not in seen  # a partner does not reach the tenant's customers


def test_platform_sees_everyone_customers_see_no_one(world):
    assert _names(visible_users(world.user("platform", "viewer"))) >= {"b-owner", "a-customer", "partner-admin"}
    assert not visible_users(world.user("a", "customer")).exists()


def test_inactive_membership_does_not_give_reach(world):
    both = UserFactory(username="moved")
    MembershipFactory(user=both, organization=world.tenant("b"), role=Role.VIEWER)
    m = MembershipFactory(user=both, organization=world.tenant("a"), role=Role.VIEWER)
    assert "moved" in _names(visible_users(world.user("a", "viewer")))
    m.is_active = False
    m.save()
    assert "moved" not in _names(visible_users(world.user("a", "viewer")))


def test_people_admin_lists_only_visible_memberships(world, client):
    both = UserFactory(username="two-hats")
    MembershipFactory(user=both, organization=world.tenant("a"), role=Role.OPERATOR)
    MembershipFactory(user=both, organization=world.tenant("b"), role=Role.ADMIN)
    client.force_login(world.user("a", "viewer"))
    page = client.get(reverse("admin:core_portaluser_changelist"), {"q": "two-hats"})
    assert page.status_code == 200
    [row] = page.context["cl"].result_list
    assert "Tenant A (Operator)" in page.content.decode()
    assert "Tenant B" not in page.content.decode()  # their other tenant is not revealed
    assert row.pk == both.pk
    assert client.get(reverse("admin:core_portaluser_change", args=[both.pk])).status_code == 200
    assert client.post(reverse("admin:core_portaluser_change", args=[both.pk]), {"username": "x"}).status_code == 403
    assert client.get(reverse("admin:core_portaluser_add")).status_code == 403


def _autocomplete(client, term, app_label="tenants", model_name="membership", field_name="user"):
    url = reverse("admin:autocomplete")
    return client.get(url, {"app_label": app_label, "model_name": model_name, "field_name": field_name, "term": term})


@pytest.mark.parametrize("actor", [("a", "support_agent"), ("a", "owner"), ("partner", "admin")])
def test_autocomplete_on_a_user_foreign_key_is_scoped(world, client, actor):
    client.force_login(world.user(*actor))
    found = _autocomplete(client, "viewer")
    assert found.status_code == 200, found.content
    ids = {int(r["id"]) for r in found.json()["results"]}
    assert world.user("a", "viewer").pk in ids
    assert world.user("b", "viewer").pk not in ids
    assert not _autocomplete(client, "b-").json()["results"]


def test_autocomplete_refused_to_customers_and_open_to_platform(world, client):
    client.force_login(world.user("platform", "admin"))
    ids = {int(r["id"]) for r in _autocomplete(client, "viewer").json()["results"]}
    assert {world.user("a", "viewer").pk, world.user("b", "viewer").pk} <= ids
    customer = world.user("a", "customer")
    customer.is_staff = True  # even a customer let into the admin gets no people
    customer.save()
    client.force_login(customer)
    assert _autocomplete(client, "viewer").status_code == 403


def test_user_admin_is_django_for_platform_and_read_only_scoped_for_tenants(world, client):
    User = get_user_model()
    client.force_login(world.user("platform", "admin"))
    assert client.get(reverse("admin:auth_user_add")).status_code == 200
    assert "password" in client.get(reverse("admin:auth_user_change", args=[world.user("b", "viewer").pk])).content.decode()
    client.force_login(world.user("a", "owner"))
    assert client.get(reverse("admin:auth_user_add")).status_code == 403
    own = world.user("a", "viewer")
    page = client.get(reverse("admin:auth_user_change", args=[own.pk]))
    assert page.status_code == 200 and "pbkdf2" not in page.content.decode()
    client.post(reverse("admin:auth_user_change", args=[own.pk]), {"username": "renamed", "is_superuser": "on"})
    own.refresh_from_db()
    assert own.username == "a-viewer" and not own.is_superuser
    assert client.get(reverse("admin:auth_user_password_change", args=[own.pk])).status_code in (403, 404)
    assert "auth" not in {a["app_label"] for a in client.get(reverse("admin:index")).context["app_list"]}
    assert User.objects.filter(pk=world.user("b", "viewer").pk).exists()


def test_portal_admin_user_choices_are_scoped(world, client):
    """TenantScopedAdmin offers only people within reach on user foreign keys (here the
    notification preference's autocomplete user field)."""
    client.force_login(world.user("a", "admin"))
    page = client.get(reverse("admin:notifications_preference_add"))
    assert page.status_code == 200
    users = page.context["adminform"].form.fields["user"].queryset
    assert users.filter(pk=world.user("a", "viewer").pk).exists()
    assert not users.filter(pk=world.user("b", "viewer").pk).exists()
    assert PortalUser.objects.visible_to(world.user("a", "admin")).count() == users.count()



def _plan(sql: str = "", queryset=None) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # the test table is tiny; ask what an index can do
        if queryset is not None:
            return queryset.explain()
        cursor.execute("EXPLAIN " + sql)
        return "\n".join(row[0] for row in cursor.fetchall())


def test_case_insensitive_email_lookups_use_the_email_index(world):
    """Inbound mail looks its sender up by `email__iexact` (UPPER(email) on PostgreSQL) and SSO
    links accounts the same way: both must be an index scan, not a scan of every user."""
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from apps.tickets.mail.services import _resolve_sender

    if connection.vendor != "postgresql":
        pytest.skip("reads PostgreSQL's EXPLAIN")
    with transaction.atomic(), CaptureQueriesContext(connection) as ctx:
        _resolve_sender(world.tenant("a").pk, "A-Customer@Example.TEST")
    [lookup] = [q["sql"] for q in ctx.captured_queries if "UPPER" in q["sql"]]
    with transaction.atomic():
        assert "core_user_email_ci_idx" in _plan(lookup)
    with transaction.atomic():
        sso = get_user_model().objects.filter(email__iexact="Someone@Example.test", is_superuser=False)
        assert "core_user_email_ci_idx" in _plan(queryset=sso)
