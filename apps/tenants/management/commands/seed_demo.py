"""Demo data: the platform, two tenants, a partner, customers and users of every role.

Idempotent: running it again changes nothing that exists and prints the same logins.
"""

from django.conf import settings
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
        parser.add_argument("--base-url", default=None,
                            help="Where the portal runs (default PORTAL_BASE_URL; `make run` passes http://HOST:PORT): "
                                 "the demo's own health check and heartbeat URLs point there.")

    @transaction.atomic
    def handle(self, *args, password, quiet, base_url=None, **options):
        if base_url:
            settings.PORTAL_BASE_URL = base_url.rstrip("/")
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
            self._print_logins(orgs, password)

    def _print_logins(self, orgs, password) -> None:
        base = settings.PORTAL_BASE_URL.rstrip("/")
        self.stdout.write(self.style.SUCCESS(f"Demo logins (password for all: {password}):"))
        self.stdout.write(f"  Staff: sign in to the admin at {base}/admin/")
        self.stdout.write(f"    {'admin':<22} superuser")
        for username, slug, role in USERS:
            if role != Role.CUSTOMER:
                self.stdout.write(f"    {username:<22} {role:<14} of {orgs[slug].name}")
        self.stdout.write(f"  API-only customers: the admin is for staff and refuses them; they use the API ({base}/api/docs/,")
        self.stdout.write("  a token from POST /api/v1/auth/token with the same username and password)")
        for username, slug, role in USERS:
            if role == Role.CUSTOMER:
                self.stdout.write(f"    {username:<22} {role:<14} of {orgs[slug].name}")
