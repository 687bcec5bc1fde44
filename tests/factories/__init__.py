"""factory-boy factories shared by every app's tests (apps add their own modules here)."""

import factory
from django.contrib.auth import get_user_model

from apps.core.choices import OrgKind, Role
from apps.tenants.models import Membership, Organization

PASSWORD = "test-pass-12345"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.test")
    is_staff = True
    password = factory.django.Password(PASSWORD)


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization
        django_get_or_create = ("slug",)

    kind = OrgKind.TENANT
    name = factory.Sequence(lambda n: f"Org {n}")
    slug = factory.Sequence(lambda n: f"org-{n}")


class TenantFactory(OrganizationFactory):
    kind = OrgKind.TENANT


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(TenantFactory)
    role = Role.VIEWER
