"""Invitations (issue 17.2): a tenant admin adds a person by e-mail; the e-mail goes out through a
real SMTP server on loopback; the person accepts with the token (a new account with a password,
or their existing account, signed in) — nobody is a member before accepting."""

import email
import hashlib
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from apps.core.choices import Role
from apps.core.models import Event
from apps.tenants import services
from apps.tenants.models import Invitation, Membership

ACCEPT = "invitation-accept"


def _token(smtp_peer, to: str) -> str:
    mails = [m for m in smtp_peer.messages if to in m.rcpt_tos]
    assert mails, f"no mail to {to}"
    body = email.message_from_bytes(mails[-1].content).get_payload(decode=True).decode()
    return re.search(r"Invitation code: (\S+)", body).group(1)


def _invite(api, world, email_address="new.person@example.test", role="operator", organization="tenant-a"):
    return api.as_user(world.user("a", "admin")).post(
        reverse("invitation-list"), {"organization": organization, "email": email_address, "role": role}, format="json"
    )


def test_admin_invites_by_email_and_a_new_person_accepts_with_a_password(world, api, smtp_peer):
    created = _invite(api, world)
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["status"] == "pending" and body["role"] == "operator" and "token" not in body
    token = _token(smtp_peer, "new.person@example.test")
    mail = email.message_from_bytes(smtp_peer.messages[-1].content)
    assert "Tenant A" in mail["Subject"] and reverse(ACCEPT) in mail.get_payload(decode=True).decode()
    row = Invitation.objects.get(pk=body["id"])
    # the database holds only a hash of the token
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest() and token not in str(Invitation.objects.values().get(pk=row.pk))
    assert not Membership.objects.filter(organization=world.tenant("a"), user__email="new.person@example.test").exists()

    answer = APIClient().post(reverse(ACCEPT), {"token": token, "username": "newperson", "password": "a long Passphrase 42"}, format="json")
    assert answer.status_code == 201, answer.content
    membership = Membership.objects.get(user__username="newperson")
    assert membership.organization == world.tenant("a") and membership.role == Role.OPERATOR
    assert membership.user.check_password("a long Passphrase 42") and membership.user.email == "new.person@example.test"
    row.refresh_from_db()
    assert row.status == "accepted" and row.accepted_by == membership.user
    events = list(Event.objects.filter(topic="invitation").order_by("created_at").values_list("name", "payload"))
    assert [name for name, _ in events] == ["invitation.created", "invitation.accepted"]
    assert all("@" not in str(payload) for _, payload in events)
    # a token works once
    again = APIClient().post(reverse(ACCEPT), {"token": token, "username": "other", "password": "a long Passphrase 42"}, format="json")
    assert again.status_code == 400 and "already" in again.json()["detail"]


def test_existing_account_joins_only_when_it_accepts(world, api, smtp_peer):
    person = world.user("b", "viewer")  # a person of another tenant
    assert _invite(api, world, person.email, role="viewer").status_code == 201
    assert not Membership.objects.filter(user=person, organization=world.tenant("a")).exists()
    answer = api.as_user(person).post(reverse(ACCEPT), {"token": _token(smtp_peer, person.email)}, format="json")
    assert answer.status_code == 201, answer.content
    assert Membership.objects.get(user=person, organization=world.tenant("a")).role == Role.VIEWER
    assert Membership.objects.filter(user=person, organization=world.tenant("b")).exists()  # untouched


def test_role_above_the_inviters_is_refused(world, api, smtp_peer):
    answer = _invite(api, world, role="owner")
    assert answer.status_code == 403 and "above your own" in answer.json()["detail"]
    assert not Invitation.objects.exists() and not smtp_peer.messages


def test_only_managers_invite(world, api, smtp_peer):
    answer = api.as_user(world.user("a", "operator")).post(
        reverse("invitation-list"), {"organization": "tenant-a", "email": "x@example.test", "role": "viewer"}, format="json")
    assert answer.status_code == 403
    assert not Invitation.objects.exists()


def test_revoked_and_expired_invitations_cannot_be_accepted(world, api, smtp_peer):
    first = _invite(api, world, "one@example.test").json()
    _invite(api, world, "two@example.test")
    revoked = api.as_user(world.user("a", "admin")).post(reverse("invitation-revoke", kwargs={"pk": first["id"]}))
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked", revoked.content
    answer = APIClient().post(reverse(ACCEPT), {"token": _token(smtp_peer, "one@example.test"), "username": "one",
                                                "password": "a long Passphrase 42"}, format="json")
    assert answer.status_code == 400 and "revoked" in answer.json()["detail"]

    Invitation.objects.filter(email="two@example.test").update(expires_at=timezone.now() - timedelta(minutes=1))
    answer = APIClient().post(reverse(ACCEPT), {"token": _token(smtp_peer, "two@example.test"), "username": "two",
                                                "password": "a long Passphrase 42"}, format="json")
    assert answer.status_code == 400 and "expired" in answer.json()["detail"]
    assert not Membership.objects.filter(user__username__in=["one", "two"]).exists()
    listed = api.as_user(world.user("a", "admin")).get(reverse("invitation-list"))
    assert {r["email"]: r["status"] for r in listed.json()["results"]} == {"one@example.test": "revoked", "two@example.test": "expired"}


@pytest.mark.parametrize("payload, field", [
    ({"token": "not-a-token", "username": "x1", "password": "a long Passphrase 42"}, "token"),
    ({"username": "x1", "password": "a long Passphrase 42"}, "token"),
    ("VALID", "password"),
])
def test_bad_acceptance_is_a_400_with_a_message(world, api, smtp_peer, payload, field):
    _invite(api, world)
    if payload == "VALID":
        payload = {"token": _token(smtp_peer, "new.person@example.test"), "username": "x1", "password": "short"}
    answer = APIClient().post(reverse(ACCEPT), payload, format="json")
    assert answer.status_code == 400, answer.content
    assert field in answer.json()["errors"] and answer.json()["detail"]
    assert not Membership.objects.filter(user__username="x1").exists()


def test_taken_username_on_acceptance_is_refused_and_the_invitation_stays_open(world, api, smtp_peer):
    _invite(api, world)
    token = _token(smtp_peer, "new.person@example.test")
    answer = APIClient().post(reverse(ACCEPT), {"token": token, "username": "b-viewer", "password": "a long Passphrase 42"}, format="json")
    assert answer.status_code == 400 and "username" in answer.json()["errors"]
    assert not Membership.objects.filter(user__username="b-viewer", organization=world.tenant("a")).exists()
    assert Invitation.objects.get().status == "pending"


def test_a_second_pending_invitation_to_the_same_address_is_refused(world, api, smtp_peer):
    assert _invite(api, world).status_code == 201
    again = _invite(api, world, "New.Person@example.test")
    assert again.status_code == 400 and "pending" in again.json()["detail"]


def test_invitation_to_another_tenant_is_refused(world, api, smtp_peer):
    answer = _invite(api, world, organization="tenant-b")
    assert answer.status_code == 400 and not Invitation.objects.exists() and not smtp_peer.messages


def test_customer_organization_invitations_carry_the_customer_role(world, api, smtp_peer):
    answer = _invite(api, world, role="viewer", organization="customer-a")
    assert answer.status_code == 400 and "customer role" in answer.json()["detail"]
    assert _invite(api, world, role="customer", organization="customer-a").status_code == 201


def test_mail_failure_leaves_no_invitation(world, api, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2  # nothing listens
    answer = _invite(api, world)
    assert answer.status_code == 400 and "could not be sent" in answer.json()["detail"]
    assert not Invitation.objects.exists() and not Event.objects.filter(topic="invitation").exists()


def test_admin_creates_and_revokes_invitations(world, client, smtp_peer):
    client.force_login(world.user("a", "admin"))
    added = client.post(reverse("admin:tenants_invitation_add"),
                        {"organization": world.tenant("a").pk, "email": "via.admin@example.test", "role": "support_agent"})
    assert added.status_code == 302, added.content.decode()[:2000]
    row = Invitation.objects.get(email="via.admin@example.test")
    assert row.invited_by == world.user("a", "admin") and _token(smtp_peer, "via.admin@example.test")
    client.post(reverse("admin:tenants_invitation_changelist"), {"action": "revoke_invitations", "_selected_action": [row.pk]})
    row.refresh_from_db()
    assert row.status == "revoked"


def test_service_refuses_role_above_inviter(world, smtp_peer):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        services.invitation_create(actor=world.user("a", "admin"), organization=world.tenant("a"), email="z@example.test", role=Role.OWNER)


def test_customer_export_lists_and_erasure_deletes_their_invitations(world, smtp_peer):
    from apps.tenants.customers import deletion
    from apps.tenants.customers.registry import ExportScope, exporters
    from tests.factories.customers import customer_of

    own = customer_of(world, "a")
    own.contact_email = "me@example.test"
    own.save()
    admin = world.user("a", "admin")
    services.invitation_create(actor=admin, organization=own.organization, email="colleague@example.test", role=Role.CUSTOMER)
    services.invitation_create(actor=admin, organization=world.tenant("a"), email="ME@example.test", role=Role.VIEWER)
    other = services.invitation_create(actor=admin, organization=world.tenant("a"), email="someone@example.test", role=Role.VIEWER)

    rows = list(exporters()["invitations"].func(ExportScope(tenant_id=own.tenant_id, customer=own, date_from=None, date_to=None)))
    assert {r["email"] for r in rows} == {"colleague@example.test", "me@example.test"}

    req = deletion.deletion_request_create(actor=world.user("platform", "admin"), customer=own, reason="court order", immediate=True)
    assert req.report["erasers"]["invitations"] == {"invitations_deleted": 2}
    assert list(Invitation.objects.all()) == [other]


def test_a_signed_in_account_without_memberships_accepts(world, api, smtp_peer):
    from tests.factories import UserFactory

    loner = UserFactory(username="loner", email="loner@example.test", is_staff=False)
    assert _invite(api, world, loner.email, role="support_agent").status_code == 201
    answer = api.as_user(loner).post(reverse(ACCEPT), {"token": _token(smtp_peer, loner.email)}, format="json")
    assert answer.status_code == 201, answer.content
    loner.refresh_from_db()
    assert loner.is_staff and Membership.objects.get(user=loner).role == Role.SUPPORT_AGENT
