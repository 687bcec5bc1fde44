from django.urls import reverse

from apps.tenants.models import Membership


def test_me_lists_memberships_and_acting_org(world, api):
    r = api.as_user(world.user("partner", "admin")).get(reverse("users-me"))
    assert r.status_code == 200
    body = r.json()
    assert body["acting_organization"] == "partner-p" and body["memberships"][0]["kind"] == "partner"


def test_partner_sees_served_tenants_only(world, api):
    r = api.as_user(world.user("partner", "admin")).get(reverse("tenant-list"))
    assert {t["slug"] for t in r.json()["results"]} == {"tenant-a"}


def test_admin_adds_member_via_api(world, api):
    client = api.as_user(world.user("a", "admin"))
    r = client.post(reverse("membership-list"), {"organization": "tenant-a", "role": "viewer", "new_username": "carol"}, format="json")
    assert r.status_code == 201, r.content
    assert Membership.objects.filter(user__username="carol", organization=world.tenant("a")).exists()


def test_viewer_cannot_add_member_403_with_message(world, api):
    r = api.as_user(world.user("a", "viewer")).post(
        reverse("membership-list"), {"organization": "tenant-a", "role": "viewer", "new_username": "dave"}, format="json"
    )
    assert r.status_code == 403
    assert "role" in r.json()["detail"]


def test_validation_error_is_400_json_with_fields(world, api):
    r = api.as_user(world.user("platform", "admin")).post(
        reverse("organization-list"), {"kind": "tenant", "name": "Z", "timezone": "Nowhere/Zone"}, format="json"
    )
    assert r.status_code == 400
    body = r.json()
    assert "timezone" in body["errors"] and "IANA" in body["detail"]


def test_missing_field_is_400(world, api):
    r = api.as_user(world.user("a", "admin")).post(reverse("membership-list"), {"organization": "tenant-a"}, format="json")
    assert r.status_code == 400 and "role" in r.json()["errors"]


def test_page_size_is_capped(world, api):
    r = api.as_user(world.user("platform", "admin")).get(reverse("organization-list"), {"page_size": 100000})
    assert r.status_code == 200 and "results" in r.json()


def test_unauthenticated_is_401(db, client):
    r = client.get(reverse("tenant-list"))
    assert r.status_code == 401
    assert r.json()["detail"]
