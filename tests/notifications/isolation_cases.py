from apps.notifications.models import ChannelConfig, Delivery, Notification, NotificationTemplate, Preference
from tests.factories.notifications import (
    ChannelConfigFactory,
    DeliveryFactory,
    NotificationFactory,
    NotificationTemplateFactory,
    PreferenceFactory,
)
from tests.isolation import IsolationCase


def _owner(w, key):
    return w.user(key, "owner")


CASES = [
    IsolationCase(
        name="notifications.notification",
        make=lambda w, key: NotificationFactory(tenant=w.tenant(key), recipient=_owner(w, key)),
        api_list="notification-list",
        api_detail="notification-detail",
        admin_model=Notification,
        patch_payload={"title": "hijacked"},
    ),
    IsolationCase(
        name="notifications.preference",
        make=lambda w, key: PreferenceFactory(tenant=w.tenant(key), user=_owner(w, key)),
        api_list="notification-preference-list",
        api_detail="notification-preference-detail",
        admin_model=Preference,
        create_payload=lambda w, foreign: {"user": foreign.user_id, "notification_type": "ticket_assigned", "channels": ["in_app"]},
        patch_payload={"channels": []},
    ),
    IsolationCase(
        name="notifications.channelconfig",
        make=lambda w, key: ChannelConfigFactory(tenant=w.tenant(key)),
        api_list="notification-channel-list",
        api_detail="notification-channel-detail",
        admin_model=ChannelConfig,
        create_payload=lambda w, foreign: {"name": "sneaky", "kind": "webhook", "url": "http://127.0.0.1:9/x", "user": _owner(w, "b").pk},
        patch_payload={"name": "hijacked"},
    ),
    IsolationCase(
        name="notifications.delivery",
        make=lambda w, key: DeliveryFactory(notification=NotificationFactory(tenant=w.tenant(key), recipient=_owner(w, key))),
        admin_model=Delivery,
    ),
    IsolationCase(
        name="notifications.notificationtemplate",
        make=lambda w, key: NotificationTemplateFactory(tenant=w.tenant(key)),
        admin_model=NotificationTemplate,
    ),
]
