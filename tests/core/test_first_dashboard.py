"""The demo's first dashboard tells the truth (issue 20.5): after `seed_demo` against the running
portal, its checks are healthy — the "Portal health" check answered by the portal itself — and
no open ticket is critical; the admin index a demo admin sees shows no endpoint down."""

from __future__ import annotations

import re
from io import StringIO

from django.contrib.auth.models import User
from django.core.management import call_command

from apps.monitoring import services as monitoring
from apps.monitoring.models import Endpoint
from apps.tickets.models import Ticket


def test_seeded_demo_dashboard_shows_healthy_checks_and_no_critical_ticket(transactional_db, live_server, client, settings):
    settings.PORTAL_BASE_URL = live_server.url
    call_command("seed_demo", "--base-url", live_server.url, stdout=StringIO())
    http = list(Endpoint.objects.filter(name="Portal health"))
    assert http, "the demo has no HTTP check"
    results = monitoring.checks_run_batch(endpoint_ids=[e.pk for e in http])
    assert results and all(r.status == "up" for r in results), [(r.endpoint_id, r.status, r.status_code, r.error) for r in results]
    statuses = dict(Endpoint.objects.values_list("name", "status"))
    assert "down" not in statuses.values(), statuses
    open_statuses = ("open", "in_progress", "waiting_on_customer", "escalated")
    assert not Ticket.objects.filter(priority="critical", status__in=open_statuses).exists()

    from apps.dashboard.services import summary_refresh

    summary_refresh()
    client.force_login(User.objects.get(username="acme-admin"))
    page = client.get("/admin/").content.decode()
    assert 'id="portal-dashboard"' in page
    pills = re.findall(r'class="dash-pill (\w+)">', page)
    assert pills and "down" not in pills, pills
