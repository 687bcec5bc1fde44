"""Customers: registration throughput through the service (org + customer + lifecycle event +
outbox event per customer), a full lifecycle per customer, and a tenant-wide export build
(rows/s into a zip). No peer in ../shared/bench/peers covers customer lifecycles."""

from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import line, setup_django

N = int(os.environ.get("BENCH_CUSTOMERS", "400"))


def main() -> None:
    os.environ["EMAIL_URL"] = "memorymail://"
    setup_django()
    from django.conf import settings
    from django.db import transaction

    from apps.core.choices import OrgKind
    from apps.core.models import Event
    from apps.tenants.customers import exports, services
    from apps.tenants.customers.choices import CustomerState
    from apps.tenants.models import (
        Customer,
        CustomerService,
        DataExport,
        LifecycleEvent,
        Membership,
        Organization,
        VerificationCode,
    )

    settings.MEDIA_ROOT = Path(settings.VAR_DIR) / "bench-media"
    tag = uuid.uuid4().hex[:6]
    tenant = Organization.objects.create(kind=OrgKind.TENANT, name=f"bench-cust-{tag}", slug=f"bench-cust-{tag}")
    try:
        start = time.perf_counter()
        customers = []
        for i in range(N):
            customers.append(services.customer_register(actor=None, tenant=tenant, name=f"Bench {tag} {i}", contact_email=f"c{i}@bench.test", send_code=False))
        register_s = time.perf_counter() - start

        start = time.perf_counter()
        for c in customers:
            with transaction.atomic():
                services.customer_transition(c, actor=None, to_state=CustomerState.VERIFIED)
                svc = services.customer_service_provision(actor=None, customer=c, plan="fiber-100")
                services.customer_service_set_status(service=svc, status="active", job_run_id=1)
        lifecycle_s = time.perf_counter() - start

        # CELERY_TASK_ALWAYS_EAGER (bench/common.py): the build task runs inside this call
        start = time.perf_counter()
        export = exports.data_export_request(actor=None, tenant=tenant, format="csv")
        export_s = time.perf_counter() - start
        done = DataExport.objects.get(pk=export.pk)
        assert done.status == "succeeded", done.error
        rows = sum(done.row_counts.values())
        line(
            "customers_lifecycle",
            customers=N,
            register_per_s=round(N / register_s, 1),
            verify_provision_activate_per_s=round(N / lifecycle_s, 1),
            export_rows=rows,
            export_rows_per_s=round(rows / export_s),
            export_kib=round(done.size_bytes / 1024),
        )
    finally:
        for e in DataExport.objects.filter(tenant=tenant):
            exports.delete_export_file(e)
        DataExport.objects.filter(tenant=tenant).delete()
        CustomerService.objects.filter(tenant=tenant).delete()
        LifecycleEvent.objects.filter(tenant=tenant).delete()
        VerificationCode.objects.filter(customer__tenant=tenant).delete()
        org_ids = list(Customer.objects.filter(tenant=tenant).values_list("organization_id", flat=True))
        Customer.objects.filter(tenant=tenant).delete()
        Membership.objects.filter(organization_id__in=org_ids).delete()
        Event.objects.filter(tenant=tenant).delete()
        Event.objects.filter(name="organization.created", payload__id__in=org_ids).delete()
        Organization.objects.filter(pk__in=org_ids).delete()
        tenant.delete()


if __name__ == "__main__":
    main()
