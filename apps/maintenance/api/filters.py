import django_filters

from ..models import MaintenanceRun, MaintenanceWindow


class MaintenanceWindowFilter(django_filters.FilterSet):
    class Meta:
        model = MaintenanceWindow
        fields = {"recurrence": ["exact"], "scope": ["exact"], "enabled": ["exact"], "source": ["exact"], "starts_at": ["gte", "lte"]}


class MaintenanceRunFilter(django_filters.FilterSet):
    class Meta:
        model = MaintenanceRun
        fields = {"task": ["exact"], "status": ["exact"], "dry_run": ["exact"], "started_at": ["gte", "lte"]}
