import django_filters

from ..models import FeedToken, Layer, Override, Schedule


class ScheduleFilter(django_filters.FilterSet):
    class Meta:
        model = Schedule
        fields = {"name": ["icontains"]}


class LayerFilter(django_filters.FilterSet):
    class Meta:
        model = Layer
        fields = {"schedule": ["exact"], "kind": ["exact"]}


class OverrideFilter(django_filters.FilterSet):
    class Meta:
        model = Override
        fields = {"schedule": ["exact"], "user": ["exact"], "starts_at": ["gte", "lte"], "ends_at": ["gte", "lte"]}


class FeedTokenFilter(django_filters.FilterSet):
    class Meta:
        model = FeedToken
        fields = {"schedule": ["exact"], "user": ["exact"]}
