import django_filters

from ..models import DeploymentSchedule, Instance, Operation, Runbook


class InstanceFilter(django_filters.FilterSet):
    class Meta:
        model = Instance
        fields = {"environment": ["exact"], "status": ["exact"], "name": ["exact", "icontains"]}


class RunbookFilter(django_filters.FilterSet):
    class Meta:
        model = Runbook
        fields = {"action": ["exact"], "instance": ["exact"], "job": ["exact"]}


class OperationFilter(django_filters.FilterSet):
    class Meta:
        model = Operation
        fields = {"instance": ["exact"], "operation": ["exact"], "status": ["exact"], "trigger": ["exact"], "created_at": ["gte", "lte"]}


class DeploymentScheduleFilter(django_filters.FilterSet):
    class Meta:
        model = DeploymentSchedule
        fields = {"instance": ["exact"], "operation": ["exact"]}
