import django_filters
from django.db.models import Q

from ..choices import AlertStatus, AlertType, Severity
from ..models import Alert, AlertRule, AlertSubscription, EscalationPolicy, IngestToken, InhibitRule, Silence


class AlertFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=AlertStatus.choices)
    severity = django_filters.MultipleChoiceFilter(choices=Severity.choices)
    type = django_filters.MultipleChoiceFilter(field_name="alert_type", choices=AlertType.choices)
    unread = django_filters.BooleanFilter(method="filter_unread")
    dismissed = django_filters.BooleanFilter(method="filter_dismissed")
    resource = django_filters.CharFilter(method="filter_resource", help_text="<resource_type>:<resource_id>, or a resource type alone.")
    resource_type = django_filters.CharFilter()
    resource_id = django_filters.CharFilter()
    fingerprint = django_filters.CharFilter(method="filter_fingerprint")
    assigned_to = django_filters.NumberFilter(field_name="assigned_to_id")
    silenced = django_filters.BooleanFilter()
    since = django_filters.IsoDateTimeFilter(field_name="last_seen", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="first_seen", lookup_expr="lte")
    label = django_filters.CharFilter(method="filter_label", help_text="name=value (exact label match)")

    class Meta:
        model = Alert
        fields = []

    def _uid(self):
        return getattr(getattr(self.request, "user", None), "pk", None)

    def filter_unread(self, qs, name, value):
        read = Q(recipient_states__user_id=self._uid(), recipient_states__read_at__isnull=False)
        ids = Alert.objects.filter(read).values("pk")
        return qs.exclude(pk__in=ids) if value else qs.filter(pk__in=ids)

    def filter_dismissed(self, qs, name, value):
        ids = Alert.objects.filter(recipient_states__user_id=self._uid(), recipient_states__dismissed_at__isnull=False).values("pk")
        return qs.filter(pk__in=ids) if value else qs.exclude(pk__in=ids)

    def filter_resource(self, qs, name, value):
        rtype, _, rid = value.partition(":")
        qs = qs.filter(resource_type=rtype)
        return qs.filter(resource_id=rid) if rid else qs

    def filter_fingerprint(self, qs, name, value):
        # open and resolved rows of a fingerprint live in two partial indexes: name both halves
        resolved = Q(status=AlertStatus.RESOLVED)
        return qs.filter((Q(fingerprint=value) & ~resolved) | (Q(fingerprint=value) & resolved))

    def filter_label(self, qs, name, value):
        key, sep, val = value.partition("=")
        return qs.filter(labels__contains={key: val}) if sep else qs.filter(labels__has_key=key)


class AlertRuleFilter(django_filters.FilterSet):
    class Meta:
        model = AlertRule
        fields = ["rule_type", "enabled"]


class AlertSubscriptionFilter(django_filters.FilterSet):
    class Meta:
        model = AlertSubscription
        fields = ["alert_type", "enabled", "user"]


class SilenceFilter(django_filters.FilterSet):
    active = django_filters.BooleanFilter(method="filter_active")

    class Meta:
        model = Silence
        fields = []

    def filter_active(self, qs, name, value):
        from django.utils import timezone

        now = timezone.now()
        live = Q(starts_at__lte=now, ends_at__gt=now)
        return qs.filter(live) if value else qs.exclude(live)


class InhibitRuleFilter(django_filters.FilterSet):
    class Meta:
        model = InhibitRule
        fields = ["enabled"]


class EscalationPolicyFilter(django_filters.FilterSet):
    class Meta:
        model = EscalationPolicy
        fields = ["enabled"]


class IngestTokenFilter(django_filters.FilterSet):
    class Meta:
        model = IngestToken
        fields = ["name"]
