"""Domain gauges of /metrics count rows of the database: job runs by status, deliveries by channel
and status, alerts ingested and deduplicated, open tickets at risk or breached, outbox backlog,
queue depth in Redis, beat lag per schedule. Read through the real view with the metrics token."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.core.test_metrics import _sample

TOKEN = "domain-metrics-token"


@pytest.fixture
def scrape(client, settings):
    from apps.core import metrics

    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_CACHE_SECONDS = 0

    def get() -> str:
        metrics._domain._cache = None
        answer = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
        assert answer.status_code == 200
        return answer.content.decode()

    return get


def test_domain_gauges_count_rows(world, scrape):
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    from apps.core.events import publish
    from apps.tickets.choices import TicketPriority, TicketStatus
    from tests.factories.alerts import AlertFactory
    from tests.factories.dashboard import job_runs
    from tests.factories.notifications import DeliveryFactory
    from tests.factories.tickets import TicketFactory

    tenant, now = world.tenant("a"), timezone.now()
    before = scrape()
    job_runs(tenant, at=now, ok=3, failed=2)
    job_runs(tenant, at=now - timedelta(days=3), ok=5, failed=5)  # outside the 24 h window
    DeliveryFactory.create_batch(2, tenant=tenant, kind="email", status="sent")
    DeliveryFactory(tenant=tenant, kind="webhook", status="failed")
    AlertFactory(tenant=tenant, severity="critical", occurrences=5)
    AlertFactory(tenant=tenant, severity="critical", occurrences=1)
    TicketFactory(tenant=tenant, status=TicketStatus.OPEN, priority=TicketPriority.HIGH, sla_at_risk=True)
    TicketFactory(tenant=tenant, status=TicketStatus.OPEN, priority=TicketPriority.HIGH, resolution_breached=True)
    TicketFactory(tenant=tenant, status=TicketStatus.RESOLVED, priority=TicketPriority.HIGH, resolution_breached=True)
    every_minute = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.MINUTES)
    PeriodicTask.objects.create(name="late one", task="core.noop", interval=every_minute, last_run_at=now - timedelta(minutes=11))
    PeriodicTask.objects.create(name="on time", task="core.noop", interval=every_minute, last_run_at=now)
    publish("metrics.test", tenant=tenant.pk, payload={})  # committed with the test transaction: stays pending

    text = scrape()
    assert (
        _sample(text, 'opsportal_job_runs{status="succeeded"}') - _sample(before, 'opsportal_job_runs{status="succeeded"}') == 3
    )
    assert _sample(text, 'opsportal_job_runs{status="failed"}') - _sample(before, 'opsportal_job_runs{status="failed"}') == 2
    assert _sample(text, 'opsportal_deliveries{channel="email",status="sent"}') == 2
    assert _sample(text, 'opsportal_deliveries{channel="webhook",status="failed"}') == 1
    assert _sample(text, 'opsportal_alerts_ingested{severity="critical",type="custom"}') == 6
    assert _sample(text, 'opsportal_alerts_deduplicated{severity="critical",type="custom"}') == 4
    assert _sample(text, 'opsportal_tickets_sla{priority="high",state="at_risk"}') == 1
    assert _sample(text, 'opsportal_tickets_sla{priority="high",state="breached"}') == 1
    assert 9 * 60 < _sample(text, 'opsportal_beat_lag_seconds{schedule="late one"}') < 11 * 60
    assert 'opsportal_beat_lag_seconds{schedule="on time"} 0.0' in text
    assert _sample(text, 'opsportal_outbox_backlog{status="pending"}') >= 1
    assert 'opsportal_queue_depth{queue="notifications"}' in text and "opsportal_metric_errors 0.0" in text


def test_queue_depth_counts_messages_waiting_in_redis(db, scrape, settings):
    """Messages in a queue's Redis list and in its priority lists count toward its depth."""
    import redis

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    before = _sample(scrape(), 'opsportal_queue_depth{queue="jobs"}')
    client.rpush("jobs", "m1", "m2")
    client.rpush("jobs\x06\x166", "m3")
    try:
        assert _sample(scrape(), 'opsportal_queue_depth{queue="jobs"}') == before + 3
    finally:
        client.lrem("jobs", 0, "m1")
        client.lrem("jobs", 0, "m2")
        client.lrem("jobs\x06\x166", 0, "m3")


def test_metrics_need_the_token_or_staff(client, settings):
    settings.METRICS_TOKEN = TOKEN
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403


def test_grafana_dashboard_uses_metrics_the_portal_exports(db, scrape):
    """Every metric family the dashboard in deploy/ queries is announced by /metrics."""
    import json
    import re
    from pathlib import Path

    dashboard = json.loads((Path(__file__).resolve().parents[2] / "deploy/grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {re.sub(r"_bucket$", "", m) for e in exprs for m in re.findall(r"\b((?:opsportal|django)_[a-z_]+)", e)}
    text = scrape()
    announced = set(re.findall(r"^# TYPE (\S+) ", text, re.M))
    missing = sorted(u for u in used if u not in announced)
    assert not missing, missing
    assert len(used) >= 14
