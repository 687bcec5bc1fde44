"""Account health: the score and the reasons that lowered it, per tenant and per customer."""

from datetime import timedelta

from django.utils import timezone

from apps.dashboard.choices import HealthGrade
from apps.dashboard.health import score
from apps.dashboard.models import AccountHealth
from apps.dashboard.services import health_recompute
from apps.dashboard.tasks import recompute_health_task
from apps.tenants.customers.choices import ServiceStatus
from tests.factories.alerts import AlertFactory
from tests.factories.customers import CustomerServiceFactory, customer_of
from tests.factories.dashboard import checks, job_runs, open_critical, sla_tickets


def test_score_lists_each_reason_with_its_points():
    value, grade, reasons = score({
        "open_critical_tickets": 2, "sla_breaches": 1, "firing_alerts": {"critical": 1, "warning": 2, "info": 5},
        "failed_job_runs": 3, "availability_percent": 99.5,
    })
    assert [(r["factor"], r["points"]) for r in reasons] == [
        ("open_critical_tickets", 20), ("sla_breaches", 5), ("firing_alerts", 14), ("failed_job_runs", 6), ("availability", 4),
    ]
    assert value == 100 - 49 and grade == HealthGrade.AT_RISK
    assert reasons[0]["text"] == "2 open critical tickets (−20)"
    assert reasons[4]["text"] == "endpoint availability 99.50% < 99.9% (−4)"


def test_caps_keep_the_score_between_0_and_100():
    assert score({})[0:2] == (100, HealthGrade.HEALTHY)
    value, grade, reasons = score({
        "open_critical_tickets": 50, "sla_breaches": 50, "firing_alerts": {"critical": 50}, "failed_job_runs": 50,
        "availability_percent": 10.0,
    })
    assert value == 0 and grade == HealthGrade.CRITICAL
    assert [r["points"] for r in reasons] == [30, 25, 25, 20, 20]


def test_recompute_scores_tenants_and_customers_from_30_days(world):
    a, b = world.tenant("a"), world.tenant("b")
    now = timezone.now()
    customer = customer_of(world, "a")
    open_critical(a, 1, customer=world.orgs["a-customer"])
    open_critical(a, 1)
    sla_tickets(a, at=now - timedelta(days=3), total=3, breached=2)
    sla_tickets(a, at=now - timedelta(days=40), total=5, breached=5)  # outside the window
    AlertFactory(tenant=a, severity="critical")
    AlertFactory(tenant=a, severity="warning", status="resolved")  # not firing
    job_runs(a, at=now - timedelta(days=1), ok=5, failed=4)
    checks(a, at=now - timedelta(days=2), up=98, down=2)  # 98 %
    CustomerServiceFactory(customer=customer, status=ServiceStatus.FAILED)
    open_critical(b, 3)

    assert health_recompute(now=now) >= 3
    row = AccountHealth.objects.get(tenant=a, customer=None)
    assert [r["factor"] for r in row.reasons] == [
        "open_critical_tickets", "sla_breaches", "firing_alerts", "failed_job_runs", "availability",
    ]
    assert row.metrics["open_critical_tickets"] == 2 and row.metrics["sla_breaches"] == 2
    assert row.metrics["failed_job_runs"] == 4 and row.metrics["availability_percent"] == 98.0
    assert row.score == 100 - (20 + 10 + 8 + 8 + 19)

    cust = AccountHealth.objects.get(customer=customer)
    assert cust.tenant == a
    assert [(r["factor"], r["count"]) for r in cust.reasons] == [("open_critical_tickets", 1), ("failed_services", 1)]
    assert cust.score == 80 and cust.grade == HealthGrade.HEALTHY

    b_row = AccountHealth.objects.get(tenant=b, customer=None)
    assert [r["factor"] for r in b_row.reasons] == ["open_critical_tickets"] and b_row.score == 70

    # recomputing updates the same rows (no duplicates) once the cause is gone
    from apps.tickets.models import Ticket

    Ticket.objects.filter(tenant=b).update(status="resolved")
    recompute_health_task.delay(b.pk)
    b_row.refresh_from_db()
    assert b_row.score == 100 and b_row.reasons == []
    assert AccountHealth.objects.filter(tenant=b, customer=None).count() == 1
