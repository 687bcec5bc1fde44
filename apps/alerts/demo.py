"""Demo alerts for acme: an on-call escalation policy, an incident rule (critical alerts open a
ticket), a subscription, and a few alerts — one of them with its incident ticket. Idempotent."""

from apps.core.choices import Role
from apps.tenants.models import Membership

from . import incident, services
from .choices import AlertType, RuleType, Severity
from .models import Alert, AlertRule, AlertSubscription, EscalationPolicy


def seed(*, orgs, stdout) -> None:
    acme = orgs.get("acme")
    if acme is None:
        return
    EscalationPolicy.objects.get_or_create(
        tenant=acme, name="On-call", defaults={"steps": [{"wait_minutes": 5, "roles": ["operator"]}, {"wait_minutes": 15, "roles": ["admin"]}],
                                               "min_severity": Severity.WARNING, "repeat": 1},
    )
    AlertRule.objects.get_or_create(
        tenant=acme, name="Critical alerts open a ticket", defaults={
            "rule_type": RuleType.ALERT, "conditions": {"min_severity": Severity.CRITICAL},
            "actions": [{"type": "open_ticket", "dedup_labels": ["alertname", "instance"]}]},
    )
    admin = Membership.objects.filter(organization=acme, role=Role.ADMIN, is_active=True).select_related("user").first()
    if admin is not None:
        AlertSubscription.objects.get_or_create(tenant=acme, user=admin.user, alert_type=AlertType.EXTERNAL,
                                                defaults={"channels": ["in_app"], "min_severity": Severity.WARNING})
    if Alert.objects.filter(tenant=acme).exists():
        return
    # two sample incidents, named as samples, so a first dashboard explains itself (docs/admin.md)
    note = "Sample data from seed_demo, not a real outage: resolve it (and its ticket) to see a clean dashboard."
    disk, _ = services.alert_raise(tenant=acme, alert_type=AlertType.EXTERNAL, severity=Severity.WARNING, title="Sample: disk 85% full on db-1",
                                   message=note, labels={"alertname": "DiskFilling", "instance": "db-1", "demo": "true"}, source="manual")
    down, _ = services.alert_raise(tenant=acme, alert_type=AlertType.ENDPOINT_DOWN, severity=Severity.CRITICAL,
                                   title="Sample incident: https://shop.acme.example is down", message=note,
                                   labels={"instance": "shop", "service": "web", "demo": "true"}, source="manual")
    # a sample: its ticket is high, not critical, so the first dashboard shows no critical ticket
    incident.alert_open_ticket(down, actor=None, priority="high", dedup_labels=["service"])
    services.alert_acknowledge(disk, actor=None)
    stdout.write("alerts: demo escalation policy, incident rule and 2 alerts (one with its ticket) for acme\n")
