"""One row of every API resource in tenant A, so fuzzed path parameters hit real objects too
(not only 404s). Peers are loopback ports that refuse at once (port 9), so connection tests,
checks and channel tests finish quickly and never leave the machine."""

from __future__ import annotations

from datetime import time

from apps.alerts.services import ingest_token_create
from tests.factories.alerts import (
    AlertFactory,
    AlertRuleFactory,
    AlertSubscriptionFactory,
    EscalationPolicyFactory,
    InhibitRuleFactory,
    SilenceFactory,
)
from tests.factories.customers import CustomerServiceFactory, DataExportFactory, DeletionRequestFactory, customer_of
from tests.factories.maintenance import MaintenanceWindowFactory
from tests.factories.monitoring import EndpointFactory
from tests.factories.notifications import ChannelConfigFactory, NotificationFactory, PreferenceFactory
from tests.factories.targets import make_credential, make_group, make_job, make_target
from tests.factories.tickets import SlaPolicyFactory, TicketFactory


def seed_tenant_a(world) -> dict:
    """Create the rows; return {path prefix: pk} for path-parameter substitution plus tokens."""
    from decimal import Decimal

    from apps.dashboard.models import KpiTarget
    from apps.maintenance.models import MaintenanceRun
    from apps.monitoring.models import TrendRule
    from apps.targets.services.runs import job_run_create
    from apps.tickets.models import BusinessCalendar

    tenant = world.tenant("a")
    admin = world.user("a", "admin")
    viewer = world.user("a", "viewer")
    customer = customer_of(world, "a")
    cred = make_credential(tenant, name="fuzz-cred")
    target = make_target(tenant, name="fuzz-host", port=9, credential=cred)
    job = make_job(tenant, name="fuzz-job")
    endpoint = EndpointFactory(tenant=tenant)
    ids = {
        "/api/v1/alerts/escalation-policies/": EscalationPolicyFactory(tenant=tenant).pk,
        "/api/v1/alerts/inhibit-rules/": InhibitRuleFactory(tenant=tenant).pk,
        "/api/v1/alerts/rules/": AlertRuleFactory(tenant=tenant).pk,
        "/api/v1/alerts/silences/": SilenceFactory(tenant=tenant).pk,
        "/api/v1/alerts/subscriptions/": AlertSubscriptionFactory(tenant=tenant, user=admin).pk,
        "/api/v1/alerts/": AlertFactory(tenant=tenant).pk,
        "/api/v1/credentials/": cred.pk,
        "/api/v1/customer-services/": CustomerServiceFactory(customer=customer).pk,
        "/api/v1/customers/": customer.pk,
        "/api/v1/deletion-requests/": DeletionRequestFactory(customer=customer).pk,
        "/api/v1/exports/": DataExportFactory(customer=customer).pk,
        "/api/v1/jobs/": job.pk,
        "/api/v1/maintenance/windows/": MaintenanceWindowFactory(tenant=tenant).pk,
        "/api/v1/monitoring/endpoints/": endpoint.pk,
        "/api/v1/monitoring/trend-rules/": TrendRule.objects.create(tenant=tenant, endpoint=endpoint, name="fuzz-p95", kind="latency_p95", threshold_ms=500).pk,
        "/api/v1/dashboard/kpi-targets/": KpiTarget.objects.create(tenant=tenant, kpi="availability", target_percent=Decimal("99.9")).pk,
        "/api/v1/notifications/channels/": ChannelConfigFactory(tenant=tenant).pk,
        # quiet hours set: a time value in the answer, checked against the schema (issue 18.6)
        "/api/v1/notifications/preferences/": PreferenceFactory(tenant=tenant, user=admin, quiet_start=time(22, 0), quiet_end=time(6, 30)).pk,
        "/api/v1/notifications/": NotificationFactory(tenant=tenant, recipient=admin).pk,
        "/api/v1/target-groups/": make_group(tenant, name="fuzz-group").pk,
        "/api/v1/targets/": target.pk,
        "/api/v1/tickets/": TicketFactory(tenant=tenant, created_by=admin).pk,
        "/api/v1/sla-policies/": SlaPolicyFactory(tenant=tenant).pk,
        "/api/v1/business-calendars/": BusinessCalendar.objects.create(tenant=tenant, name="fuzz hours",
                                                                       working_hours={"mon": [["09:00", "17:00"]]}).pk,
        "/api/v1/organizations/": tenant.slug,
        "/api/v1/tenants/": tenant.slug,
        "/api/v1/memberships/": viewer.memberships.first().pk,
    }
    NotificationFactory(tenant=tenant, recipient=viewer)
    ids["/api/v1/runs/"] = job_run_create(job, actor=admin, targets=[target]).pk
    mrun = MaintenanceRun.objects.first()
    if mrun:
        ids["/api/v1/maintenance/runs/"] = mrun.pk
    _token, raw = ingest_token_create(actor=None, tenant=tenant, name="fuzz")
    return {"ids": ids, "ingest_token": raw, "ping_id": str(EndpointFactory(tenant=tenant, kind="heartbeat").ping_id)}
