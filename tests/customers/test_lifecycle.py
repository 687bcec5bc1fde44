import re
from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from apps.core.choices import OrgKind
from apps.core.models import Event
from apps.tenants.choices import OrgStatus
from apps.tenants.customers import services
from apps.tenants.customers.choices import CUSTOMER_TRANSITIONS, CustomerState, ServiceStatus
from apps.tenants.models import Customer, LifecycleEvent, VerificationCode
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory
from tests.factories.customers import CustomerFactory, CustomerServiceFactory, customer_of

S = CustomerState
PAIRS = [(a, b) for a in S.values for b in S.values if a != b]


def _code_from_outbox() -> str:
    return re.search(r"code: (\d{6})", mail.outbox[-1].subject).group(1)


@pytest.fixture
def small(db):
    """One tenant and one operator (the full world is not needed for the state matrix)."""
    tenant = OrganizationFactory(kind=OrgKind.TENANT, slug="t-small")
    operator = UserFactory(username="small-operator")
    MembershipFactory(user=operator, organization=tenant, role="operator")
    return tenant, operator


@pytest.mark.parametrize("from_state,to_state", PAIRS)
def test_state_machine_matrix(small, from_state, to_state):
    tenant, operator = small
    customer = CustomerFactory(tenant=tenant, state=from_state)
    if to_state in CUSTOMER_TRANSITIONS[from_state]:
        services.customer_transition(customer, actor=operator, to_state=to_state, reason="matrix")
        assert customer.state == to_state
        event = LifecycleEvent.objects.get(customer=customer)
        assert (event.from_state, event.to_state, event.actor, event.reason) == (from_state, to_state, operator, "matrix")
        assert Event.objects.filter(name=f"customer.{to_state}", payload__id=customer.pk).exists()
    else:
        with pytest.raises(ValidationError) as err:
            services.customer_transition(customer, actor=None, to_state=to_state)
        message = " ".join(err.value.messages)
        allowed = CUSTOMER_TRANSITIONS[from_state]
        assert all(state in message for state in allowed) and (allowed or "final" in message)
        customer.refresh_from_db()
        assert customer.state == from_state and not LifecycleEvent.objects.filter(customer=customer).exists()


def test_register_via_api_creates_org_login_and_emails_code(world, api):
    client = api.as_user(world.user("a", "admin"))
    r = client.post(reverse("customer-list"), {"name": "Jane Doe", "contact_email": "jane@example.test", "username": "jane"}, format="json")
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["state"] == "registered" and body["account_number"].startswith("CUS-")
    customer = Customer.objects.get(pk=body["id"])
    assert customer.tenant == world.tenant("a") and customer.organization.parent == world.tenant("a")
    assert customer.organization.memberships.get().user.username == "jane"
    assert mail.outbox[-1].to == ["jane@example.test"]
    code = _code_from_outbox()
    assert code not in VerificationCode.objects.get(customer=customer).code_hash  # stored hashed

    wrong = client.post(f"/api/v1/customers/{customer.pk}/verify", {"code": "000000" if code != "000000" else "111111"}, format="json")
    assert wrong.status_code == 400 and "4 attempt(s) left" in wrong.json()["detail"]
    ok = client.post(f"/api/v1/customers/{customer.pk}/verify", {"code": code}, format="json")
    assert ok.status_code == 200 and ok.json()["state"] == "verified"
    assert list(customer.lifecycle_events.values_list("to_state", flat=True)) == ["registered", "verified"]


def test_code_dies_after_max_wrong_attempts(world, settings):
    settings.CUSTOMER_VERIFICATION_MAX_ATTEMPTS = 2
    customer = services.customer_register(actor=world.user("a", "admin"), name="X", contact_email="x@example.test")
    code = _code_from_outbox()
    bad = "000000" if code != "000000" else "111111"
    for _ in range(2):
        with pytest.raises(ValidationError):
            services.customer_verify(customer, actor=None, code=bad)
    with pytest.raises(ValidationError, match="Too many wrong attempts"):
        services.customer_verify(customer, actor=None, code=code)
    assert Customer.objects.get(pk=customer.pk).state == S.REGISTERED


def test_expired_code_is_refused_and_sends_are_rate_limited(world, settings):
    settings.CUSTOMER_VERIFICATION_MAX_SENDS_PER_HOUR = 2
    customer = services.customer_register(actor=world.user("a", "admin"), name="X", contact_email="x@example.test")
    code = _code_from_outbox()
    VerificationCode.objects.filter(customer=customer).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(ValidationError, match="no valid verification code"):
        services.customer_verify(customer, actor=None, code=code)
    services.customer_send_verification_code(customer, actor=None)
    with pytest.raises(ValidationError, match="2 codes were sent"):
        services.customer_send_verification_code(customer, actor=None)
    # the newest code works, the earlier one is dead
    services.customer_verify(customer, actor=None, code=_code_from_outbox())
    assert Customer.objects.get(pk=customer.pk).state == S.VERIFIED


def test_customer_sees_only_itself_and_verifies_its_own_code(world, api):
    own = customer_of(world, "a")
    own.state = S.REGISTERED
    own.contact_email = "own@example.test"
    own.save()
    CustomerFactory(tenant=world.tenant("a"))  # another customer of the same tenant
    services.customer_send_verification_code(own, actor=None)
    client = api.as_user(world.user("a", "customer"))
    listed = client.get(reverse("customer-list")).json()["results"]
    assert [c["id"] for c in listed] == [own.pk]
    assert client.post(f"/api/v1/customers/{own.pk}/suspend", {"reason": "x"}, format="json").status_code == 403
    r = client.post(f"/api/v1/customers/{own.pk}/verify", {"code": _code_from_outbox()}, format="json")
    assert r.status_code == 200, r.content
    assert own.lifecycle_events.last().actor == world.user("a", "customer")


def test_illegal_transition_via_api_is_400_naming_allowed(world, api):
    customer = CustomerFactory(tenant=world.tenant("a"), state=S.REGISTERED)
    r = api.as_user(world.user("a", "operator")).post(f"/api/v1/customers/{customer.pk}/suspend", {"reason": "late payment"}, format="json")
    assert r.status_code == 400
    assert "verified, terminated" in r.json()["detail"]


def test_suspend_requires_reason_and_viewer_may_not(world, api):
    customer = CustomerFactory(tenant=world.tenant("a"), state=S.ACTIVE)
    assert api.as_user(world.user("a", "viewer")).post(f"/api/v1/customers/{customer.pk}/suspend", {"reason": "x"}, format="json").status_code == 403
    r = api.as_user(world.user("a", "operator")).post(f"/api/v1/customers/{customer.pk}/suspend", {}, format="json")
    assert r.status_code == 400 and "reason" in r.json()["errors"]


def test_provision_follow_job_result_suspend_and_reactivate(world, api):
    customer = customer_of(world, "a")
    customer.state = S.VERIFIED
    customer.save()
    client = api.as_user(world.user("a", "operator"))
    r = client.post(f"/api/v1/customers/{customer.pk}/services", {"plan": "fiber-100", "parameters": {"vlan": 12}}, format="json")
    assert r.status_code == 201, r.content
    sid = r.json()["id"]
    customer.refresh_from_db()
    assert customer.state == S.ONBOARDING
    event = Event.objects.get(name="customer_service.provision_requested")
    assert event.payload["id"] == sid and event.payload["parameters"] == {"vlan": 12} and event.tenant_id == world.tenant("a").pk

    service = customer.services.get()
    services.customer_service_set_status(service=service, status=ServiceStatus.PROVISIONING, job_run_id=77)
    services.customer_service_set_status(service=service, status=ServiceStatus.ACTIVE, job_run_id=77)
    services.customer_service_set_status(service=service, status=ServiceStatus.ACTIVE)  # a redelivered result: no-op
    detail = client.get(f"/api/v1/customers/{customer.pk}/services/{sid}").json()
    assert detail["status"] == "active" and detail["job_run_id"] == 77
    customer.refresh_from_db()
    assert customer.state == S.ACTIVE  # the first active service activates an onboarding customer

    services.customer_suspend(customer, actor=world.user("a", "admin"), reason="unpaid")
    service.refresh_from_db()
    customer.organization.refresh_from_db()
    assert service.status == ServiceStatus.SUSPENDED and customer.organization.status == OrgStatus.SUSPENDED
    services.customer_reactivate(customer, actor=world.user("a", "admin"))
    service.refresh_from_db()
    customer.organization.refresh_from_db()
    assert service.status == ServiceStatus.ACTIVE and customer.organization.status == OrgStatus.ACTIVE


def test_service_status_illegal_move_and_foreign_service_404(world, api):
    service = CustomerServiceFactory(customer=CustomerFactory(tenant=world.tenant("a")), status=ServiceStatus.PENDING)
    with pytest.raises(ValidationError, match="Allowed from pending"):
        services.customer_service_set_status(service=service, status=ServiceStatus.SUSPENDED)
    other = CustomerServiceFactory(customer=CustomerFactory(tenant=world.tenant("a")))
    r = api.as_user(world.user("a", "owner")).get(f"/api/v1/customers/{service.customer_id}/services/{other.pk}")
    assert r.status_code == 404


def test_provision_refused_for_registered_customer_and_for_support_agent(world):
    customer = CustomerFactory(tenant=world.tenant("a"), state=S.REGISTERED)
    with pytest.raises(ValidationError, match="services are provisioned for"):
        services.customer_service_provision(actor=None, customer=customer, plan="p")
    customer.state = S.ACTIVE
    customer.save()
    with pytest.raises(PermissionDenied):
        services.customer_service_provision(actor=world.user("a", "support_agent"), customer=customer, plan="p")


def test_summary_has_timeline_services_and_contributors(world, api):
    from apps.tenants.customers import registry

    customer = customer_of(world, "a")
    services.customer_transition(customer, actor=None, to_state=S.SUSPENDED, reason="test")
    CustomerServiceFactory(customer=customer)

    registry._load()  # the apps' contributors are discovered on first use: before taking the snapshot
    previous = registry._contributors.get("open_tickets")
    assert previous is not None

    @registry.register_summary_contributor("test_open_tickets")
    def _tickets(c, *, user):
        return {"count": 3, "customer": c.account_number}

    try:
        r = api.as_user(world.user("a", "owner")).get(f"/api/v1/customers/{customer.pk}/summary")
        # a suspended customer's own logins stop working (their organization is suspended)
        locked_out = api.as_user(world.user("a", "customer")).get(f"/api/v1/customers/{customer.pk}/summary")
    finally:
        registry._contributors.pop("test_open_tickets")
        assert registry._contributors.get("open_tickets") is previous
    assert r.status_code == 200 and locked_out.status_code == 403
    body = r.json()
    assert body["state"] == "suspended" and body["timeline"][-1]["reason"] == "test"
    assert len(body["services"]) == 1 and body["test_open_tickets"] == {"count": 3, "customer": customer.account_number}


def test_platform_registers_into_named_tenant_only(world, api):
    client = api.as_user(world.user("platform", "admin"))
    r = client.post(reverse("customer-list"), {"name": "NoTenant"}, format="json")
    assert r.status_code == 400 and "tenant" in r.json()["errors"]
    r = client.post(reverse("customer-list"), {"name": "Named", "tenant": "tenant-b", "send_code": False}, format="json")
    assert r.status_code == 201 and Customer.objects.get(pk=r.json()["id"]).tenant == world.tenant("b")
