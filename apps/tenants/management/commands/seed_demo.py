"""Demo data: the platform, two tenants, a partner, customers and users of every role.

Idempotent: running it again changes nothing that exists and prints the same logins.
"""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from apps.core.choices import OrgKind, Role
from apps.tenants.models import Membership, Organization

DEMO_PASSWORD = "opsportal-demo"

ORGS = [
    # slug, kind, name, parent slug
    ("platform", OrgKind.PLATFORM, "opsportal Platform", None),
    ("acme", OrgKind.TENANT, "Acme Networks", None),
    ("globex", OrgKind.TENANT, "Globex Hosting", None),
    ("northwind", OrgKind.PARTNER, "Northwind MSP", None),
    ("acme-cust-1", OrgKind.CUSTOMER, "Acme customer: Initech", "acme"),
    ("globex-cust-1", OrgKind.CUSTOMER, "Globex customer: Umbrella", "globex"),
]
USERS = [
    # username, org slug, role
    ("platform-admin", "platform", Role.ADMIN),
    ("platform-operator", "platform", Role.OPERATOR),
    *[(f"{t}-{r.replace('_', '-')}", t, r) for t in ("acme", "globex") for r in
      (Role.OWNER, Role.ADMIN, Role.OPERATOR, Role.SUPPORT_AGENT, Role.VIEWER)],
    ("acme-customer", "acme-cust-1", Role.CUSTOMER),
    ("globex-customer", "globex-cust-1", Role.CUSTOMER),
    ("northwind-admin", "northwind", Role.ADMIN),
    ("northwind-agent", "northwind", Role.SUPPORT_AGENT),
]


class Command(BaseCommand):
    help = "Create demo organizations and users of every role (idempotent) and print the logins."

    def add_arguments(self, parser):
        parser.add_argument("--password", default=DEMO_PASSWORD)
        parser.add_argument("--quiet", action="store_true")

    @transaction.atomic
    def handle(self, *args, password, quiet, **options):
        User = get_user_model()
        orgs: dict[str, Organization] = {}
        for slug, kind, name, parent in ORGS:
            orgs[slug], _ = Organization.objects.get_or_create(
                slug=slug, defaults={"kind": kind, "name": name, "parent": orgs.get(parent) if parent else None}
            )
        orgs["northwind"].served_tenants.add(orgs["acme"], orgs["globex"])

        admin, created = User.objects.get_or_create(username="admin", defaults={"email": "admin@example.com"})
        if created:
            admin.is_staff = admin.is_superuser = True
            admin.set_password(password)
            admin.save()
        for username, slug, role in USERS:
            user, created = User.objects.get_or_create(username=username, defaults={"email": f"{username}@example.com"})
            if created:
                user.is_staff = role != Role.CUSTOMER
                user.set_password(password)
                user.save()
            Membership.objects.get_or_create(user=user, organization=orgs[slug], defaults={"role": role})
        # later apps add their demo rows through their own `seed_demo_<app>` hooks
        from apps.tenants.demo import run_app_seeders

        run_app_seeders(orgs=orgs, stdout=self.stdout)
        if not quiet:
            self.stdout.write(self.style.SUCCESS(f"Demo logins (password for all: {password}):"))
            self.stdout.write("  admin (superuser)")
            for username, slug, role in USERS:
                self.stdout.write(f"  {username:<22} {role:<14} of {orgs[slug].name}")
