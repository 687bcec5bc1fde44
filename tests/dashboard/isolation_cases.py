from decimal import Decimal

from django.utils import timezone

from apps.dashboard.models import AccountHealth, KpiCheckpoint, KpiTarget, TenantSummary
from tests.factories.customers import customer_of
from tests.isolation import AdminView, IsolationCase, TenantPage


def _health(w, key):
    return AccountHealth.objects.create(tenant=w.tenant(key), customer=customer_of(w, key), score=60, grade="at_risk",
                                       reasons=[{"factor": "sla_breaches", "count": 8, "points": 40, "text": "8 SLA breaches (−40)"}])


def _checkpoint(w, key):
    now = timezone.now()
    return KpiCheckpoint.objects.create(tenant=w.tenant(key), kpi="sla_compliance", period="week", period_start=now, period_end=now,
                                        target_percent=Decimal("95"), value_percent=Decimal("90"), samples=10, outcome="missed")


CASES = [
    IsolationCase(
        name="dashboard.accounthealth",
        make=_health,
        api_list="accounthealth-list",
        api_detail="accounthealth-detail",
        admin_model=AccountHealth,
        patch_payload={"score": 100},
    ),
    IsolationCase(
        name="dashboard.kpicheckpoint",
        make=_checkpoint,
        api_list="kpicheckpoint-list",
        api_detail="kpicheckpoint-detail",
        admin_model=KpiCheckpoint,
        patch_payload={"outcome": "met"},
    ),
    IsolationCase(
        name="dashboard.kpitarget",
        make=lambda w, key: KpiTarget.objects.create(tenant=w.tenant(key), kpi="job_success", target_percent=Decimal("99")),
        api_list="kpitarget-list",
        api_detail="kpitarget-detail",
        admin_model=KpiTarget,
        patch_payload={"target_percent": "10.000"},
    ),
    IsolationCase(
        name="dashboard.tenantsummary",
        make=lambda w, key: TenantSummary.objects.create(tenant=w.tenant(key), data={"tickets_open": {"total": 4242}}),
        admin_model=TenantSummary,
    ),
]

TENANT_PAGES = [TenantPage(name="dashboard.tenant_timeline_page", url_name="admin-tenant-timeline", admin=True)]


def _escalated_ticket(w, key) -> str:
    """A ticket of tenant `key` escalated to the partner that serves it (A's partner; B has none,
    so B's stays with B): the partner panel lists A's, never B's."""
    from apps.tickets import services

    _escalated_ticket.n = getattr(_escalated_ticket, "n", 0) + 1
    ticket = services.ticket_create(actor=w.user(key, "customer"), subject=f"Panel {key} #{_escalated_ticket.n}", message="x")
    partner = w.tenant("partner") if key == "a" else None
    services.ticket_escalate(ticket, actor=w.user(key, "support_agent"), level=1, reason="isolation matrix",
                             to_partner=partner.slug if partner else None)
    return ticket.number


ADMIN_VIEWS = [
    AdminView(name="dashboard.partner_panel", path="/admin/", make=_escalated_ticket, sees=("partner", "support_agent")),
]
