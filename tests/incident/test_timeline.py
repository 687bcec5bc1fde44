"""The tenant timeline (issue 10, item 5): one stream per tenant from the events outbox — kinds,
dates, cursor paging, the index the query reads (EXPLAIN on a populated table), health changes
from real loopback checks, audited configuration changes made through the API and the admin, and
the admin page with the same visibility as the API."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.urls import reverse

from apps.alerts import timeline
from apps.alerts.choices import AlertType
from apps.alerts.services import alert_raise
from apps.core.events import publish
from apps.core.models import Event
from apps.core.services import scoped_save
from apps.monitoring.services import endpoint_check_now, endpoint_create
from apps.tickets.models import SlaPolicy
from tests.factories.targets import make_credential, make_job
from tests.monitoring.servers import LoopbackHTTP

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def _url(world, key="a", **params):
    from urllib.parse import urlencode

    return f"/api/v1/tenants/{world.tenant(key).slug}/timeline" + (f"?{urlencode(params)}" if params else "")


def _at(event, when):
    Event.objects.filter(pk=event.pk).update(created_at=when)


def _seed(world):
    """Events of every kind at known times (two share a timestamp), plus ones never shown."""
    tenant = world.tenant("a")
    names = ["alert.fired", "ticket.created", "job_run.failed", "runbook.finished", "maintenance_window.created",
             "endpoint.down", "deployment.operation_started", "config.updated", "job_schedule.missed", "endpoint.trend_breached"]
    for i, name in enumerate(names):
        _at(publish(name, tenant=tenant, payload={"id": i, "title": f"{name} #{i}", "object_type": "x.y"}), T0 + timedelta(hours=i))
    _at(publish("ticket.message_added", tenant=tenant, payload={"id": 99, "title": "tie"}), T0 + timedelta(hours=1))
    _at(publish("organization.created", tenant=tenant, payload={"id": 1}), T0 + timedelta(hours=2))  # no timeline kind
    _at(publish("alert.daily_summary", tenant=tenant, payload={"id": 1}), T0 + timedelta(hours=3))  # hidden
    _at(publish("alert.fired", tenant=world.tenant("b"), payload={"id": 1, "title": "other tenant"}), T0)


def test_kinds_dates_and_cursor_pages_are_exact(world, api):
    _seed(world)
    client = api.as_user(world.user("a", "admin"))
    everything = client.get(_url(world, limit=200)).json()["results"]
    assert len(everything) == 11 and "other tenant" not in str(everything)
    assert [(e["at"], e["id"]) for e in everything] == sorted([(e["at"], e["id"]) for e in everything], reverse=True)
    assert {e["kind"] for e in everything} == set(timeline.KINDS)
    # cursor pages of 3 (across topics and a timestamp tie) add up to the same list, nothing twice
    seen, cursor = [], ""
    while True:
        page = client.get(_url(world, limit=3, **({"cursor": cursor} if cursor else {}))).json()
        seen += [e["id"] for e in page["results"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [e["id"] for e in everything]
    # kinds and their aliases; the deployments' events are the "operation" kind
    ops = client.get(_url(world, kind="deployment")).json()
    assert [e["event"] for e in ops["results"]] == ["deployment.operation_started"] and ops["kinds"] == ["operation"]
    health = client.get(_url(world, kind="health")).json()["results"]
    assert [e["event"] for e in health] == ["endpoint.trend_breached", "endpoint.down"]
    two = client.get(_url(world, kind="job_run,config")).json()["results"]
    assert [e["event"] for e in two] == ["job_schedule.missed", "config.updated", "job_run.failed"]
    # after is inclusive, before exclusive; a date is its start (UTC)
    window = client.get(_url(world, after=(T0 + timedelta(hours=2)).isoformat(), before=(T0 + timedelta(hours=4)).isoformat())).json()
    assert [e["event"] for e in window["results"]] == ["runbook.finished", "job_run.failed"]
    assert client.get(_url(world, after="2026-03-11")).json()["results"] == []
    assert len(client.get(_url(world, before="2026-03-11")).json()["results"]) == 11
    for bad in ({"after": "yesterday"}, {"cursor": "not-a-cursor"}, {"limit": "many"}, {"kind": "alert,nope"}):
        r = client.get(_url(world, **bad))
        assert r.status_code == 400 and r.json()["detail"], (bad, r.content)


def test_the_page_query_reads_one_index_range_per_topic(world):
    """On a populated table (60k events of many sources, ANALYZEd) each kind is an index range
    of core_event_timeline_idx read newest first and cut at the page size — never a scan of the
    tenant's history and never a sort of it. (Tenant A has a tenth of the events; most are other
    tenants' — here tenant-less — as on a shared portal.)"""
    tenant_a, tenant_b = world.tenant("a").pk, world.tenant("b").pk
    topics = ["alert", "ticket", "job_run", "endpoint", "deployment", "config", "customer"]
    with connection.cursor() as cur:
        cur.execute(
            """INSERT INTO core_event (id, name, tenant_id, payload, status, attempts, handled, next_attempt_at, last_error, created_at)
               SELECT gen_random_uuid(), (%s::text[])[1 + i %% 7] || '.happened', CASE i %% 10 WHEN 0 THEN %s WHEN 1 THEN %s END,
                      '{}'::jsonb, 'dispatched', 1, '[]'::jsonb, now(), '', now() - make_interval(secs => i)
               FROM generate_series(1, 60000) AS i""",
            [topics, tenant_a, tenant_b],
        )
        cur.execute("ANALYZE core_event")
    cases = {
        "every kind": dict(topics=[t for k in timeline.KINDS.values() for t in k]),
        "one kind": dict(topics=["config"]),
        "kinds, dates and a cursor": dict(topics=["alert", "endpoint"], before=datetime.now(UTC) - timedelta(hours=2),
                                          after=datetime.now(UTC) - timedelta(hours=10), cursor=(datetime.now(UTC) - timedelta(hours=3), "ffffffff-0000-0000-0000-000000000000")),
    }
    for label, kw in cases.items():
        qs = timeline.timeline_queryset(tenant_id=tenant_a, limit=51, **kw)
        plan = qs.explain()
        assert "core_event_timeline_idx" in plan, (label, plan)
        assert "Seq Scan" not in plan and "Bitmap" not in plan, (label, plan)
        assert not re.search(r"(^|->)\s*Sort\s+\(cost", plan, re.M), (label, plan)  # a Merge Append, not a sort
        assert len(list(qs)) == 51


def test_health_changes_from_real_checks_are_in_the_stream(world, api):
    with LoopbackHTTP() as server:
        e = endpoint_create(actor=None, tenant_id=world.tenant("a").pk, name="shop", kind="http", host="127.0.0.1", port=server.port,
                            failure_threshold=1, timeout_seconds=3)
        endpoint_check_now(e, actor=None)  # first success: nothing to announce
        server.behaviour.status = 503
        endpoint_check_now(e, actor=None)
        server.behaviour.status = 200
        endpoint_check_now(e, actor=None)
    health = api.as_user(world.user("a", "operator")).get(_url(world, kind="endpoint")).json()["results"]
    assert [e["event"] for e in health] == ["endpoint.up", "endpoint.down"]
    assert health[1]["title"].startswith("shop is down: HTTP 503") and health[1]["data"]["previous_status"] == "up"
    assert health[1]["url"] == f"/admin/monitoring/endpoint/{e.pk}/change/" and health[1]["actor"] == ""


def test_configuration_changes_through_api_and_admin_say_who_changed_what(world, api, client):
    admin = world.user("a", "admin")
    rest = api.as_user(admin)
    rule = rest.post("/api/v1/alerts/rules", {"name": "disk", "rule_type": "alert", "conditions": {"alert_types": ["custom"]},
                                              "actions": [{"type": "open_ticket"}]}, format="json")
    assert rule.status_code == 201, rule.content
    assert rest.patch(f"/api/v1/alerts/rules/{rule.json()['id']}", {"enabled": False}, format="json").status_code == 200
    job = make_job(world.tenant("a"), name="restart")
    r = rest.patch(f"/api/v1/jobs/{job.pk}/", {"steps": [{"type": "ssh.exec", "command": "systemctl restart web"}]}, format="json")
    assert r.status_code == 200, r.content
    cred = make_credential(world.tenant("a"), name="deploy key")
    assert rest.patch(f"/api/v1/credentials/{cred.pk}/", {"secret": "hunter2-very-secret", "username": "deploy"}, format="json").status_code == 200
    assert rest.delete(f"/api/v1/alerts/rules/{rule.json()['id']}").status_code == 204
    # the admin: an SLA policy edited on its change form, then deleted
    policy = scoped_save(SlaPolicy(tenant=world.tenant("a"), name="Gold", priority="high", first_response_minutes=30, resolution_minutes=240),
                         actor=admin)
    client.force_login(admin)
    change = reverse("admin:tickets_slapolicy_change", args=[policy.pk])
    form = {"name": "Gold", "priority": "high", "first_response_minutes": 30, "resolution_minutes": 120, "at_risk_percent": 80,
            "calendar": "", "is_active": "on", "_save": "Save"}
    assert client.post(change, form).status_code == 302
    assert client.post(reverse("admin:tickets_slapolicy_delete", args=[policy.pk]), {"post": "yes"}).status_code == 302

    rows = rest.get(_url(world, kind="config", limit=200)).json()["results"]
    titles = [e["title"] for e in rows]
    assert titles[0] == "a-admin deleted SLA policy 'Gold (high)'"
    assert titles[1] == "a-admin changed SLA policy 'Gold (high)': resolution minutes 240 → 120"
    assert "a-admin created SLA policy 'Gold (high)'" in titles and "a-admin deleted alert rule 'disk'" in titles
    assert "a-admin changed alert rule 'disk': enabled True → False" in titles and "a-admin created alert rule 'disk'" in titles
    job_entry = next(e for e in rows if e["object_type"] == "targets.job")
    assert "definition version 2 (steps)" in job_entry["title"]
    cred_entry = next(e for e in rows if e["object_type"] == "targets.credential")
    assert {c["field"] for c in cred_entry["data"]["changes"]} >= {"secret", "username", "rotated_at"}
    assert next(c for c in cred_entry["data"]["changes"] if c["field"] == "secret").keys() == {"field", "label"}
    assert all(e["actor"] == "a-admin" and e["actor_id"] == admin.pk and e["kind"] == "config" for e in rows)
    assert "hunter2" not in json.dumps(list(Event.objects.values_list("payload", flat=True)))
    assert rest.get(_url(world, "b", kind="config")).status_code == 404


def _many(world, n):
    tenant = world.tenant("a")
    for i in range(n):
        _at(publish("ticket.created", tenant=tenant, payload={"id": i, "title": f"ticket #{i}"}), T0 + timedelta(minutes=i))
    _at(publish("config.updated", tenant=tenant, payload={"id": 1, "title": "a-admin changed SLA policy 'Gold'",
                                                          "changes": [{"field": "resolution_minutes", "label": "resolution minutes", "from": "240", "to": "120"}]}),
        T0 - timedelta(days=1))


def test_admin_page_filters_pages_and_follows_the_api_policy(world, client, api):
    _many(world, 55)
    a1, _ = alert_raise(tenant=world.tenant("a"), alert_type=AlertType.CUSTOM, title="for support only", assigned_to=world.user("a", "support_agent"))
    page_url = reverse("admin-tenant-timeline", args=[world.tenant("a").slug])
    client.force_login(world.user("a", "admin"))
    first = client.get(page_url)
    assert first.status_code == 200
    assert len(first.context["entries"]) == 50 and "for support only" in first.content.decode()
    older = first.context["older_url"]
    assert older and "cursor=" in older
    second = client.get(page_url + older)
    assert [e["title"] for e in second.context["entries"]][-1] == "a-admin changed SLA policy 'Gold'"
    assert "resolution minutes: 240 → 120" in second.content.decode() and not second.context["older_url"]
    assert [e["id"] for e in first.context["entries"] + second.context["entries"]] == [
        e["id"] for e in api.as_user(world.user("a", "admin")).get(_url(world, limit=200)).json()["results"]]
    # kind and date filters
    only = client.get(page_url, {"kind": "config"})
    assert [e["event"] for e in only.context["entries"]] == ["config.updated"]
    day = client.get(page_url, {"from": "2026-03-10", "to": "2026-03-10"})
    assert {e["event"] for e in day.context["entries"]} == {"ticket.created"}
    bad = client.get(page_url, {"from": "10/03/2026"})
    assert bad.status_code == 400 and "YYYY-MM-DD" in bad.content.decode()
    # the same visibility as the API
    client.force_login(world.user("a", "operator"))
    assert "for support only" not in client.get(page_url, {"kind": "alert"}).content.decode()
    client.force_login(world.user("b", "admin"))
    assert client.get(page_url).status_code == 404
    client.force_login(world.user("partner", "admin"))
    assert client.get(page_url).status_code == 404
    client.force_login(world.user("a", "customer"))
    assert client.get(page_url).status_code == 302  # not staff: the admin login
    assert a1.pk


def test_admin_page_is_reachable_from_the_index_and_the_tenant(world, client):
    client.force_login(world.user("a", "admin"))
    own = reverse("admin-tenant-timeline", args=[world.tenant("a").slug])
    assert f'href="{own}"' in client.get(reverse("admin:index")).content.decode()
    assert client.get(reverse("admin-timeline"))["Location"] == own
    client.force_login(world.user("platform", "admin"))
    index = client.get(reverse("admin-timeline"), {"q": "tenant"})
    assert index.status_code == 200 and own in index.content.decode()
    assert f'href="{reverse("admin-timeline")}"' in client.get(reverse("admin:index")).content.decode()
    change = client.get(reverse("admin:tenants_tenant_change", args=[world.tenant("a").pk]))
    assert change.status_code == 200 and own in change.content.decode()
    assert client.get(own).status_code == 200
