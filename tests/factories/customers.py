"""Factories for customers of a tenant (rows written directly; services are tested elsewhere)."""

import factory
from django.utils import timezone

from apps.tenants.customers.choices import CustomerState, DeletionStatus
from apps.tenants.models import Customer, CustomerService, DataExport, DeletionRequest


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    account_number = factory.Sequence(lambda n: f"CUS-T{n:07d}")
    name = factory.Sequence(lambda n: f"Customer {n}")
    contact_email = factory.LazyAttribute(lambda o: f"{o.account_number.lower()}@example.test")
    state = CustomerState.ACTIVE


class CustomerServiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CustomerService

    customer = factory.SubFactory(CustomerFactory)
    tenant = factory.SelfAttribute("customer.tenant")
    plan = "fiber-100"


class DataExportFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DataExport

    customer = factory.SubFactory(CustomerFactory)
    tenant = factory.SelfAttribute("customer.tenant")
    data_types = ["customers"]


class DeletionRequestFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DeletionRequest

    customer = factory.SubFactory(CustomerFactory)
    tenant = factory.SelfAttribute("customer.tenant")
    status = DeletionStatus.PENDING
    due_at = factory.LazyFunction(lambda: timezone.now() + timezone.timedelta(days=30))


def customer_of(world, key: str) -> Customer:
    """The Customer record linked to the world's customer organization of tenant `key`."""
    org = world.orgs[f"{key}-customer"]
    customer = Customer.objects.filter(organization=org).first()
    return customer or CustomerFactory(tenant=world.tenant(key), organization=org, name=f"Customer of {key.upper()}")
