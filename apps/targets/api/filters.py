import django_filters

from ..models import Credential, Job, JobRun, JobRunStep, JobSchedule, Target, TargetGroup


class CredentialFilter(django_filters.FilterSet):
    class Meta:
        model = Credential
        fields = ["kind", "tenant"]


class TargetGroupFilter(django_filters.FilterSet):
    class Meta:
        model = TargetGroup
        fields = ["tenant"]


class TargetFilter(django_filters.FilterSet):
    tag = django_filters.CharFilter(method="filter_tag")

    class Meta:
        model = Target
        fields = ["protocol", "os", "enabled", "groups", "credential", "tenant", "last_test_result"]

    def filter_tag(self, queryset, name, value):
        return queryset.filter(tags__contains=[value])


class JobFilter(django_filters.FilterSet):
    class Meta:
        model = Job
        fields = ["enabled", "overlap_policy", "tenant"]


class JobScheduleFilter(django_filters.FilterSet):
    class Meta:
        model = JobSchedule
        fields = ["job", "enabled"]


class JobRunFilter(django_filters.FilterSet):
    class Meta:
        model = JobRun
        fields = ["job", "status", "trigger", "check_mode", "schedule"]


class JobRunStepFilter(django_filters.FilterSet):
    class Meta:
        model = JobRunStep
        fields = ["status", "target", "step_index"]
