"""`manage.py evaluate_trend_rules [--rule ID …]`: evaluate trend rules now (what the beat task
`monitoring.evaluate_trends` does every MONITORING_TREND_EVERY_SECONDS) and print each verdict."""

from django.core.management.base import BaseCommand

from apps.monitoring.models import TrendRule
from apps.monitoring.services import trend_rules_evaluate


class Command(BaseCommand):
    help = "Evaluate enabled trend rules now (latency p95 over budget, TLS certificate expiring) and publish transitions."

    def add_arguments(self, parser):
        parser.add_argument("--rule", type=int, action="append", dest="rules", help="Only this rule id (repeatable).")

    def handle(self, *args, rules=None, **options):
        counts = trend_rules_evaluate(rule_ids=rules)
        shown = TrendRule.objects.select_related("endpoint", "tenant").order_by("tenant__slug", "name")
        if rules:
            shown = shown.filter(pk__in=rules)
        for rule in shown.filter(enabled=True)[:500]:
            self.stdout.write(f"{rule.tenant.slug}/{rule.name} [{rule.endpoint.name}]: {rule.state} — {rule.last_reason}")
        self.stdout.write(self.style.SUCCESS(
            f"{counts['evaluated']} evaluated, {counts['breached']} breached, {counts['recovered']} recovered"))
