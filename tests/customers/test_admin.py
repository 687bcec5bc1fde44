from django.urls import reverse

from apps.tenants.customers.choices import CustomerState, ServiceStatus
from apps.tenants.models import Customer
from tests.factories.customers import CustomerFactory, CustomerServiceFactory


def test_admin_registers_customer_through_the_service(world, client):
    client.force_login(world.user("a", "admin"))
    r = client.post(reverse("admin:tenants_customer_add"), {"name": "Admin Made", "contact_email": "", "contact_phone": ""})
    assert r.status_code == 302, r.content[:2000]
    customer = Customer.objects.get(name="Admin Made")
    assert customer.tenant == world.tenant("a") and customer.organization is not None
    assert customer.lifecycle_events.get().to_state == CustomerState.REGISTERED


def test_admin_suspend_action_suspends_services(world, client):
    customer = CustomerFactory(tenant=world.tenant("a"), state=CustomerState.ACTIVE)
    service = CustomerServiceFactory(customer=customer, status=ServiceStatus.ACTIVE)
    client.force_login(world.user("a", "operator"))
    r = client.post(reverse("admin:tenants_customer_changelist"), {"action": "suspend", "_selected_action": [customer.pk]})
    assert r.status_code == 302
    customer.refresh_from_db()
    service.refresh_from_db()
    assert customer.state == CustomerState.SUSPENDED and service.status == ServiceStatus.SUSPENDED
    assert "Suspended in the admin by a-operator" in customer.lifecycle_events.last().reason


def test_admin_change_page_shows_timeline(world, client):
    customer = CustomerFactory(tenant=world.tenant("a"))
    client.force_login(world.user("a", "viewer"))
    r = client.get(reverse("admin:tenants_customer_change", args=[customer.pk]))
    assert r.status_code == 200 and customer.account_number.encode() in r.content
