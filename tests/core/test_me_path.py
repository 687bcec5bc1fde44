"""GET /api/v1/users/me answers by a hand mapping (apps/tenants/api/views.py `me_data`,
docs/api-performance.md): it equals MeSerializer's answer for every kind of caller, with the
acting organization chosen by header or by default."""

import pytest

from apps.core.choices import Role
from apps.core.tenancy import acting, memberships_of
from apps.tenants.api.serializers import MeSerializer
from tests.factories import MembershipFactory


def _serializer_answer(user):
    ctx = acting(user)
    data = {
        "id": user.pk,
        "username": user.get_username(),
        "email": user.email,
        "is_staff": user.is_staff,
        "acting_organization": ctx.organization_slug,
        "acting_role": ctx.role,
        "memberships": memberships_of(user),
    }
    return MeSerializer(data).data


@pytest.mark.parametrize(
    "who, organization",
    [
        (("a", "admin"), None),
        (("a", "customer"), None),
        (("partner", "support_agent"), None),
        (("platform", "admin"), None),
        (("a", "viewer"), "tenant-b"),
        (("a", "viewer"), None),
    ],
)
def test_me_equals_the_serializer(who, organization, world, api):
    user = world.user(*who)
    if organization:  # a second membership, chosen per request
        MembershipFactory(user=user, organization=world.tenant("b"), role=Role.OPERATOR)
    response = api.as_user(user, organization).get("/api/v1/users/me")
    assert response.status_code == 200, response.content
    body = response.json()
    if organization:
        from apps.core.tenancy import choose_organization

        choose_organization(user, organization)
        assert body["acting_organization"] == "tenant-b" and body["acting_role"] == "operator"
        assert len(body["memberships"]) == 2
    assert body == _serializer_answer(user)
    assert body["memberships"] and set(body["memberships"][0]) == {"id", "organization", "organization_name", "kind", "role"}
