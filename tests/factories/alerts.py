import factory
from django.utils import timezone

from apps.alerts.choices import AlertType, RuleType, Severity
from apps.alerts.matching import labels_fingerprint
from apps.alerts.models import Alert, AlertRule, AlertSubscription, EscalationPolicy, InhibitRule, Silence


class AlertFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Alert

    alert_type = AlertType.CUSTOM
    severity = Severity.WARNING
    title = factory.Sequence(lambda n: f"Alert {n}")
    labels = factory.Sequence(lambda n: {"alertname": f"a{n}"})
    fingerprint = factory.LazyAttribute(lambda o: labels_fingerprint(o.tenant.pk, o.labels))


class AlertRuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AlertRule

    name = factory.Sequence(lambda n: f"rule {n}")
    rule_type = RuleType.EVENT
    conditions = {"event": "job_run.failed"}


class SilenceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Silence

    matchers = [{"name": "alertname", "op": "=", "value": "x"}]
    starts_at = factory.LazyFunction(timezone.now)
    ends_at = factory.LazyFunction(lambda: timezone.now() + timezone.timedelta(hours=1))


class EscalationPolicyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EscalationPolicy

    name = factory.Sequence(lambda n: f"policy {n}")
    steps = [{"wait_minutes": 5, "roles": ["admin"]}]


class InhibitRuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = InhibitRule

    name = factory.Sequence(lambda n: f"inhibit {n}")
    source_matchers = [{"name": "severity", "op": "=", "value": "critical"}]
    target_matchers = [{"name": "severity", "op": "=", "value": "warning"}]
    equal = ["instance"]


class AlertSubscriptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AlertSubscription

    alert_type = AlertType.CUSTOM
