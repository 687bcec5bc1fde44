import django_filters

from ..models import CheckResult, Endpoint


class EndpointFilter(django_filters.FilterSet):
    class Meta:
        model = Endpoint
        fields = {"kind": ["exact"], "status": ["exact"], "enabled": ["exact"], "in_maintenance": ["exact"], "name": ["icontains"]}


class CheckResultFilter(django_filters.FilterSet):
    class Meta:
        model = CheckResult
        fields = {"status": ["exact"], "checked_at": ["gte", "lte"], "in_maintenance": ["exact"]}
