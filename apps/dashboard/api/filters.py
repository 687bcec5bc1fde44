import django_filters

from ..choices import CheckpointOutcome, HealthGrade, Kpi
from ..models import AccountHealth, KpiCheckpoint, KpiTarget


class AccountHealthFilter(django_filters.FilterSet):
    tenant = django_filters.CharFilter(field_name="tenant__slug")
    grade = django_filters.ChoiceFilter(choices=HealthGrade.choices)
    level = django_filters.ChoiceFilter(
        choices=[("tenant", "tenant"), ("customer", "customer")], method="filter_level", label="tenant or customer rows"
    )
    max_score = django_filters.NumberFilter(field_name="score", lookup_expr="lte")

    class Meta:
        model = AccountHealth
        fields = ["tenant", "grade", "customer", "level", "max_score"]

    def filter_level(self, queryset, name, value):
        return queryset.filter(customer__isnull=(value == "tenant"))


class KpiCheckpointFilter(django_filters.FilterSet):
    tenant = django_filters.CharFilter(field_name="tenant__slug")
    kpi = django_filters.ChoiceFilter(choices=Kpi.choices)
    outcome = django_filters.ChoiceFilter(choices=CheckpointOutcome.choices)

    class Meta:
        model = KpiCheckpoint
        fields = ["tenant", "kpi", "outcome"]


class KpiTargetFilter(django_filters.FilterSet):
    tenant = django_filters.CharFilter(field_name="tenant__slug")
    kpi = django_filters.ChoiceFilter(choices=Kpi.choices)

    class Meta:
        model = KpiTarget
        fields = ["tenant", "kpi", "enabled"]
