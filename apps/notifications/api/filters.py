import django_filters

from ..models import ChannelConfig, Notification, Preference


class NotificationFilter(django_filters.FilterSet):
    unread = django_filters.BooleanFilter(field_name="read_at", lookup_expr="isnull", label="Only unread (true) or only read (false)")
    archived = django_filters.BooleanFilter(field_name="archived_at", lookup_expr="isnull", exclude=True, label="Archived")
    type = django_filters.CharFilter(field_name="notification_type")

    class Meta:
        model = Notification
        fields = ["priority", "notification_type"]


class PreferenceFilter(django_filters.FilterSet):
    class Meta:
        model = Preference
        fields = ["notification_type", "user"]


class ChannelConfigFilter(django_filters.FilterSet):
    class Meta:
        model = ChannelConfig
        fields = ["kind", "enabled", "user"]
