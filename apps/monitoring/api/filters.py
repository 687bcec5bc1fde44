import django_filters

from ..models import CheckResult, Endpoint, TrendRule


class EndpointFilter(django_filters.FilterSet):
    class Meta:
        model = Endpoint
        fields = {"kind": ["exact"], "status": ["exact"], "enabled": ["exact"], "in_maintenance": ["exact"], "name": ["icontains"]}


class CheckResultFilter(django_filters.FilterSet):
    class Meta:
        model = CheckResult
        fields = {"status": ["exact"], "checked_at": ["gte", "lte"], "in_maintenance": ["exact"]}


class TrendRuleFilter(django_filters.FilterSet):
    class Meta:
        model = TrendRule
        fields = {"kind": ["exact"], "state": ["exact"], "enabled": ["exact"], "endpoint": ["exact"], "severity": ["exact"]}
