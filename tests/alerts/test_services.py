from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from apps.alerts import services
from apps.alerts.checks import check_agent_workload, check_unassigned_critical, evaluate_schedule_rule, evaluate_threshold_rule
from apps.alerts.choices import AlertStatus, AlertType, Severity
from apps.alerts.matching import matches_all
from apps.alerts.models import Alert, AlertRule
from apps.core.models import Event
from tests.factories.alerts import AlertSubscriptionFactory, EscalationPolicyFactory, InhibitRuleFactory, SilenceFactory

pytestmark = pytest.mark.django_db
# the raise and dedup tests (marked `sqlite`) also run on SQLite, the embedded default


def _fired(tenant):
    return list(Event.objects.filter(name="alert.fired", tenant=tenant).order_by("created_at"))


@pytest.mark.sqlite
def test_dedup_counts_occurrence_without_new_notification(world):
    t = world.tenant("a")
    a1, n1 = services.alert_raise(tenant=t, alert_type=AlertType.JOB_FAILED, title="x", resource_type="targets.jobrun", resource_id=7)
    a2, n2 = services.alert_raise(tenant=t, alert_type=AlertType.JOB_FAILED, title="x again", resource_type="targets.jobrun", resource_id=7)
    assert a1.pk == a2.pk and a2.occurrences == 2 and n1 and not n2
    assert len(_fired(t)) == 1
    assert "notify" in _fired(t)[0].payload


@pytest.mark.sqlite
def test_a_resolved_alert_stays_history_and_firing_again_is_a_new_row(world):
    """One rule with ingestion (docs/alerts.md): each firing period is its own row."""
    t = world.tenant("a")
    alert, _ = services.alert_raise(tenant=t, alert_type=AlertType.ENDPOINT_DOWN, title="down", resource_type="monitoring.endpoint", resource_id=1)
    services.alert_resolve(alert, actor=None)
    again, notified = services.alert_raise(tenant=t, alert_type=AlertType.ENDPOINT_DOWN, title="down", resource_type="monitoring.endpoint", resource_id=1)
    alert.refresh_from_db()
    assert again.pk != alert.pk and again.fingerprint == alert.fingerprint and notified
    assert (alert.status, alert.occurrences) == (AlertStatus.RESOLVED, 1) and alert.resolved_at is not None
    assert (again.status, again.occurrences, again.resolved_at) == (AlertStatus.FIRING, 1, None)
    assert [e.payload["id"] for e in _fired(t)] == [alert.pk, again.pk]


@pytest.mark.sqlite
def test_the_retry_after_a_unique_key_race_keeps_every_field(world, monkeypatch):
    """Another writer opens the same fingerprint between the lookup and the INSERT: the partial
    unique index refuses ours and the retry counts an occurrence on theirs with everything the
    caller gave (ends_at, severity, title, message)."""
    from apps.alerts import services as alert_services
    from apps.alerts.matching import resource_fingerprint

    t = world.tenant("a")
    fp = resource_fingerprint(t.pk, AlertType.JOB_FAILED, "targets.jobrun", "7")
    now = timezone.now()
    real_mute_reason = alert_services._mute_reason
    theirs = []

    def concurrent_writer(alert, at):
        if not theirs:  # once: the row a concurrent raise committed a moment ago
            theirs.append(Alert.objects.create(tenant=t, alert_type=AlertType.JOB_FAILED, title="theirs", fingerprint=fp,
                                               resource_type="targets.jobrun", resource_id="7", severity=Severity.WARNING))
        return real_mute_reason(alert, at)

    monkeypatch.setattr(alert_services, "_mute_reason", concurrent_writer)
    ends = now + timedelta(minutes=30)
    alert, notified = services.alert_raise(tenant=t, alert_type=AlertType.JOB_FAILED, title="ours", message="details",
                                           severity=Severity.CRITICAL, resource_type="targets.jobrun", resource_id=7,
                                           ends_at=ends, now=now)
    assert alert.pk == theirs[0].pk and not notified
    alert.refresh_from_db()
    assert (alert.occurrences, alert.title, alert.message, alert.severity) == (2, "ours", "details", Severity.CRITICAL)
    assert alert.ends_at == ends and alert.last_seen == now
    assert Alert.objects.filter(fingerprint=fp).count() == 1


def test_other_tenant_same_resource_is_another_alert(world):
    a, _ = services.alert_raise(tenant=world.tenant("a"), alert_type=AlertType.JOB_FAILED, title="x", resource_type="r", resource_id=1)
    b, _ = services.alert_raise(tenant=world.tenant("b"), alert_type=AlertType.JOB_FAILED, title="x", resource_type="r", resource_id=1)
    assert a.pk != b.pk and a.fingerprint != b.fingerprint


@pytest.mark.parametrize(
    ("matchers", "expected"),
    [
        ([{"name": "service", "op": "=", "value": "db"}], True),
        ([{"name": "service", "op": "!=", "value": "db"}], False),
        ([{"name": "instance", "op": "=~", "value": "host-[0-9]+"}], True),
        ([{"name": "instance", "op": "=~", "value": "host"}], False),  # anchored like Alertmanager
        ([{"name": "instance", "op": "!~", "value": "web-.*"}], True),
        ([{"name": "missing", "op": "=", "value": ""}], True),
        ([{"name": "service", "op": "=", "value": "db"}, {"name": "env", "op": "=", "value": "prod"}], False),
    ],
)
def test_matchers_behave_like_alertmanager(matchers, expected):
    assert matches_all(matchers, {"service": "db", "instance": "host-12", "env": "staging"}) is expected


def test_silenced_alert_is_stored_but_notifies_nobody(world):
    t = world.tenant("a")
    SilenceFactory(tenant=t, matchers=[{"name": "alertname", "op": "=~", "value": "job_.*"}])
    alert, notified = services.alert_raise(tenant=t, alert_type=AlertType.JOB_FAILED, title="x", resource_type="r", resource_id=1)
    assert alert.pk and alert.silenced and not notified
    assert "notify" not in _fired(t)[0].payload


def test_expired_silence_does_not_mute(world):
    t = world.tenant("a")
    past = timezone.now() - timedelta(hours=2)
    SilenceFactory(tenant=t, matchers=[{"name": "alertname", "op": "=", "value": "job_failed"}], starts_at=past, ends_at=past + timedelta(hours=1))
    _, notified = services.alert_raise(tenant=t, alert_type=AlertType.JOB_FAILED, title="x", resource_type="r", resource_id=1)
    assert notified


def test_silence_validation_messages():
    from apps.alerts.models import Silence

    with pytest.raises(ValidationError, match="regular expression"):
        Silence(matchers=[{"name": "a", "op": "=~", "value": "("}], ends_at=timezone.now() + timedelta(hours=1)).clean()
    with pytest.raises(ValidationError, match="operator"):
        Silence(matchers=[{"name": "a", "op": "~~", "value": "x"}], ends_at=timezone.now() + timedelta(hours=1)).clean()


def test_inhibition_mutes_target_with_equal_labels(world):
    t = world.tenant("a")
    InhibitRuleFactory(tenant=t)
    services.alert_raise(tenant=t, alert_type=AlertType.CUSTOM, title="node down", severity=Severity.CRITICAL, labels={"instance": "h1"})
    _, muted = services.alert_raise(tenant=t, alert_type=AlertType.CUSTOM, title="latency", severity=Severity.WARNING, labels={"instance": "h1", "x": "1"})
    _, other = services.alert_raise(tenant=t, alert_type=AlertType.CUSTOM, title="latency", severity=Severity.WARNING, labels={"instance": "h2", "x": "1"})
    assert muted is False and other is True


def test_escalation_steps_with_frozen_time(world):
    t = world.tenant("a")
    admin = world.user("a", "admin")
    EscalationPolicyFactory(tenant=t, steps=[{"wait_minutes": 5, "user_ids": [admin.pk]}, {"wait_minutes": 10, "roles": ["owner"]}])
    t0 = timezone.now()
    alert, _ = services.alert_raise(tenant=t, alert_type=AlertType.JOB_FAILED, title="x", resource_type="r", resource_id=1, now=t0)
    assert alert.next_escalation_at == t0 + timedelta(minutes=5)
    assert services.escalations_due(now=t0 + timedelta(minutes=4)) == []
    assert services.escalations_due(now=t0 + timedelta(minutes=5)) == [alert.pk]
    services.alert_escalate_step(alert_id=alert.pk, now=t0 + timedelta(minutes=5))
    alert.refresh_from_db()
    assert alert.escalation_step == 1 and alert.next_escalation_at == t0 + timedelta(minutes=15)
    first = Event.objects.get(name="alert.escalated")
    assert first.payload["notify"]["user_ids"] == [admin.pk] and first.payload["step"] == 1
    services.alert_escalate_step(alert_id=alert.pk, now=t0 + timedelta(minutes=15))
    alert.refresh_from_db()
    assert alert.next_escalation_at is None
    assert Event.objects.filter(name="alert.escalated").latest("created_at").payload["notify"]["roles"] == ["owner"]


def test_acknowledge_stops_escalation(world):
    t = world.tenant("a")
    EscalationPolicyFactory(tenant=t, repeat=3)
    t0 = timezone.now()
    alert, _ = services.alert_raise(tenant=t, alert_type=AlertType.JOB_FAILED, title="x", resource_type="r", resource_id=1, now=t0)
    services.alert_acknowledge(alert, actor=world.user("a", "support_agent"))
    assert services.escalations_due(now=t0 + timedelta(hours=1)) == []
    assert services.alert_escalate_step(alert_id=alert.pk, now=t0 + timedelta(hours=1)) is None


def test_escalation_repeats_then_stops(world):
    t = world.tenant("a")
    EscalationPolicyFactory(tenant=t, steps=[{"wait_minutes": 1, "roles": ["admin"]}], repeat=1)
    t0 = timezone.now()
    alert, _ = services.alert_raise(tenant=t, alert_type=AlertType.JOB_FAILED, title="x", resource_type="r", resource_id=1, now=t0)
    services.alert_escalate_step(alert_id=alert.pk, now=t0 + timedelta(minutes=1))
    alert.refresh_from_db()
    assert alert.escalation_round == 1 and alert.next_escalation_at == t0 + timedelta(minutes=2)
    services.alert_escalate_step(alert_id=alert.pk, now=t0 + timedelta(minutes=2))
    alert.refresh_from_db()
    assert alert.next_escalation_at is None and Event.objects.filter(name="alert.escalated").count() == 2


def test_viewer_cannot_acknowledge(world):
    alert, _ = services.alert_raise(tenant=world.tenant("a"), alert_type=AlertType.CUSTOM, title="x")
    with pytest.raises(PermissionDenied):
        services.alert_acknowledge(alert, actor=world.user("a", "viewer"))


def test_operator_cannot_broadcast_but_admin_can(world):
    with pytest.raises(PermissionDenied):
        services.alert_raise(tenant=world.tenant("a"), alert_type=AlertType.CUSTOM, title="x", actor=world.user("a", "operator"))
    alert, _ = services.alert_raise(tenant=world.tenant("a"), alert_type=AlertType.CUSTOM, title="x", actor=world.user("a", "admin"))
    assert alert.assigned_to is None


def test_recipients_assignee_subscribers_or_broadcast_roles(world):
    t = world.tenant("a")
    agent, viewer = world.user("a", "support_agent"), world.user("a", "viewer")
    services.alert_raise(tenant=t, alert_type=AlertType.JOB_FAILED, title="x", resource_type="r", resource_id=1)
    assert _fired(t)[-1].payload["notify"]["roles"]
    AlertSubscriptionFactory(tenant=t, user=viewer, alert_type=AlertType.JOB_FAILED, channels=["email"])
    services.alert_raise(tenant=t, alert_type=AlertType.JOB_FAILED, title="x", resource_type="r", resource_id=2)
    notify = _fired(t)[-1].payload["notify"]
    assert notify["user_ids"] == [viewer.pk] and "roles" not in notify and notify["channels"] == ["email"]
    services.alert_raise(tenant=t, alert_type=AlertType.JOB_FAILED, title="x", resource_type="r", resource_id=3, assigned_to=agent)
    assert set(_fired(t)[-1].payload["notify"]["user_ids"]) == {viewer.pk, agent.pk}


def test_read_and_dismiss_are_per_person(world):
    alert, _ = services.alert_raise(tenant=world.tenant("a"), alert_type=AlertType.CUSTOM, title="x")
    services.alert_mark_read(alert, actor=world.user("a", "viewer"))
    services.alert_dismiss(alert, actor=world.user("a", "operator"))
    states = {s.user_id: s for s in alert.recipient_states.all()}
    assert states[world.user("a", "viewer").pk].dismissed_at is None
    assert states[world.user("a", "operator").pk].dismissed_at is not None
    assert world.user("a", "admin").pk not in states


def test_auto_resolve_after_ends_at(world):
    t = world.tenant("a")
    rule = AlertRule.objects.create(tenant=t, name="r", rule_type="event", conditions={"event": "x.y"}, auto_resolve_minutes=10)
    t0 = timezone.now()
    alert, _ = services.alert_raise(tenant=t, alert_type=AlertType.CUSTOM, title="x", rule=rule, now=t0)
    assert services.alerts_auto_resolve(now=t0 + timedelta(minutes=9)) == 0
    assert services.alerts_auto_resolve(now=t0 + timedelta(minutes=11)) == 1
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED


def test_purge_removes_expired_and_old_resolved_only(world):
    t = world.tenant("a")
    now = timezone.now()
    keep, _ = services.alert_raise(tenant=t, alert_type=AlertType.CUSTOM, title="keep", labels={"k": "1"})
    expired, _ = services.alert_raise(tenant=t, alert_type=AlertType.CUSTOM, title="exp", labels={"k": "2"}, expires_at=now - timedelta(minutes=1))
    old, _ = services.alert_raise(tenant=t, alert_type=AlertType.CUSTOM, title="old", labels={"k": "3"})
    services.alert_resolve(old, actor=None, now=now - timedelta(days=31))
    assert services.alerts_purge(now=now) == 2
    assert list(Alert.objects.values_list("pk", flat=True)) == [keep.pk]


def test_purge_command(world):
    from django.core.management import call_command

    old, _ = services.alert_raise(tenant=world.tenant("a"), alert_type=AlertType.CUSTOM, title="old")
    services.alert_resolve(old, actor=None, now=timezone.now() - timedelta(days=3))
    call_command("alerts_purge", "--days", "2")
    assert not Alert.objects.exists()


def test_daily_summary_per_staff_member(world):
    t = world.tenant("a")
    services.alert_raise(tenant=t, alert_type=AlertType.CUSTOM, title="broadcast")
    services.alert_raise(tenant=t, alert_type=AlertType.CUSTOM, title="mine", labels={"x": "1"}, assigned_to=world.user("a", "operator"))
    sent = services.alerts_daily_summary()
    events = {e.payload["notify"]["user_ids"][0]: e.payload for e in Event.objects.filter(name="alert.daily_summary")}
    assert sent == 5 == len(events)
    assert events[world.user("a", "operator").pk]["total"] == 2
    assert events[world.user("a", "viewer").pk]["total"] == 1  # not the operator's own alert
    assert events[world.user("a", "admin").pk]["total"] == 2


def test_silence_reminder_once(world):
    creator = world.user("a", "operator")
    SilenceFactory(tenant=world.tenant("a"), created_by=creator, ends_at=timezone.now() + timedelta(minutes=30))
    assert services.silences_remind() == 1
    assert services.silences_remind() == 0
    assert Event.objects.get(name="silence.expiring").payload["notify"]["user_ids"] == [creator.pk]


def test_workload_check_raises_and_resolves(world):
    t = world.tenant("a")
    rows = [{"agent_id": 1, "open_tickets": 30, "name": "ann"}, {"agent_id": 2, "open_tickets": 3}]
    assert check_agent_workload(tenant=t, workloads=rows, threshold=20) == (1, 0)
    assert Alert.objects.get(alert_type=AlertType.HIGH_WORKLOAD).resource_id == "1"
    assert check_agent_workload(tenant=t, workloads=[{"agent_id": 1, "open_tickets": 5}], threshold=20) == (0, 1)
    assert Alert.objects.get(alert_type=AlertType.HIGH_WORKLOAD).status == AlertStatus.RESOLVED


def test_workload_threshold_from_tenant_settings(world):
    t = world.tenant("a")
    t.settings = {"workload_threshold": 2}
    t.save()
    assert check_agent_workload(tenant=t, workloads=[{"agent_id": 1, "open_tickets": 3}]) == (1, 0)


def test_unassigned_critical_check(world):
    t = world.tenant("a")
    assert check_unassigned_critical(tenant=t, tickets=[{"id": 5, "title": "TCK-1"}, {"id": 6, "title": "TCK-2"}]) == (2, 0)
    assert check_unassigned_critical(tenant=t, tickets=[{"id": 5, "title": "TCK-1"}]) == (1, 1)
    assert Alert.objects.get(resource_id="5").occurrences == 2


@pytest.mark.sqlite
def test_threshold_rule_fires_and_clears(world):
    t = world.tenant("a")
    rule = AlertRule.objects.create(tenant=t, name="many failures", rule_type="threshold",
                                    conditions={"metric": "alert_count", "alert_type": "job_failed", "operator": ">=", "value": 2, "window_minutes": 30},
                                    alert_config={"severity": "critical"})
    for i in range(2):
        services.alert_raise(tenant=t, alert_type=AlertType.JOB_FAILED, title="x", resource_type="r", resource_id=i)
    assert evaluate_threshold_rule(rule) is True
    fired = Alert.objects.get(rule=rule)
    assert fired.severity == Severity.CRITICAL
    assert evaluate_threshold_rule(rule, now=timezone.now() + timedelta(hours=1)) is False
    fired.refresh_from_db()
    assert fired.status == AlertStatus.RESOLVED


@pytest.mark.sqlite
def test_threshold_rule_counts_only_alerts_with_its_labels(world):
    t = world.tenant("a")
    rule = AlertRule.objects.create(tenant=t, name="db failures", rule_type="threshold",
                                    conditions={"metric": "alert_count", "alert_type": "job_failed", "operator": ">=", "value": 2,
                                                "window_minutes": 30, "label_matchers": [{"name": "service", "op": "=", "value": "db"}]},
                                    alert_config={"severity": "critical"})
    for i, service in enumerate(["db", "web", "web"]):
        services.alert_raise(tenant=t, alert_type=AlertType.JOB_FAILED, title="x", labels={"service": service, "n": str(i)})
    assert evaluate_threshold_rule(rule) is False
    services.alert_raise(tenant=t, alert_type=AlertType.JOB_FAILED, title="x", labels={"service": "db", "n": "3"})
    assert evaluate_threshold_rule(rule) is True


def test_schedule_rule_fires_when_due(world):
    t = world.tenant("a")
    rule = AlertRule.objects.create(tenant=t, name="weekly", rule_type="schedule", conditions={"cron": "0 9 * * *"})
    AlertRule.objects.filter(pk=rule.pk).update(last_evaluated_at=timezone.now().replace(hour=8, minute=0))
    rule.refresh_from_db()
    assert evaluate_schedule_rule(rule, now=rule.last_evaluated_at + timedelta(minutes=30)) is False
    assert evaluate_schedule_rule(rule, now=rule.last_evaluated_at + timedelta(hours=1, minutes=1)) is True
    assert Alert.objects.filter(rule=rule).count() == 1


@pytest.mark.parametrize(
    ("rule_type", "conditions", "message"),
    [
        ("threshold", {"metric": "alert_count", "operator": "~", "value": 1}, "operator"),
        ("threshold", {"metric": "cpu", "operator": ">", "value": 1}, "metric"),
        ("schedule", {"cron": "every day"}, "cron"),
        ("event", {}, "event"),
        ("sla", {"on": ["late"]}, "on"),
    ],
)
def test_rule_conditions_schema(world, rule_type, conditions, message):
    with pytest.raises(ValidationError, match=message):
        services.rule_create(actor=world.user("a", "admin"), name="bad", rule_type=rule_type, conditions=conditions)


def test_rule_actions_open_ticket_and_run_job_are_validated_and_stored(world):
    rule = services.rule_create(actor=world.user("a", "admin"), name="ok", rule_type="event", conditions={"event": "job_run.failed"},
                                actions=[{"type": "notify", "roles": ["admin"]}, {"type": "open_ticket", "priority": "high"},
                                         {"type": "run_job", "job_id": 3, "target_ids": [1]}])
    assert [a["type"] for a in rule.actions] == ["notify", "open_ticket", "run_job"]
    with pytest.raises(ValidationError, match="actions"):
        services.rule_create(actor=world.user("a", "admin"), name="bad", rule_type="event", conditions={"event": "a.b"},
                             actions=[{"type": "run_job"}])
