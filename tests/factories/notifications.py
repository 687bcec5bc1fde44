import factory

from apps.core.crypto import encrypt
from apps.notifications.choices import ChannelKind, Priority
from apps.notifications.models import ChannelConfig, Delivery, Notification, NotificationTemplate, Preference
from tests.factories import TenantFactory, UserFactory


class NotificationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Notification

    tenant = factory.SubFactory(TenantFactory)
    recipient = factory.SubFactory(UserFactory)
    title = factory.Sequence(lambda n: f"Notification {n}")
    priority = Priority.MEDIUM


class PreferenceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Preference

    tenant = factory.SubFactory(TenantFactory)
    user = factory.SubFactory(UserFactory)
    notification_type = "*"
    channels = factory.LazyFunction(lambda: ["in_app", "email"])


class ChannelConfigFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ChannelConfig

    class Params:
        plain_url = "http://127.0.0.1:9/hook"
        secret = "s3cret"

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"channel-{n}")
    kind = ChannelKind.WEBHOOK
    url = factory.LazyAttribute(lambda o: encrypt(o.plain_url))
    signing_secret = factory.LazyAttribute(lambda o: encrypt(o.secret) if o.secret else "")


class DeliveryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Delivery

    notification = factory.SubFactory(NotificationFactory)
    tenant = factory.LazyAttribute(lambda o: o.notification.tenant)
    recipient = factory.LazyAttribute(lambda o: o.notification.recipient)
    kind = ChannelKind.EMAIL


class NotificationTemplateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = NotificationTemplate

    tenant = factory.SubFactory(TenantFactory)
    notification_type = "*"
    channel = ""
    subject = "[{{ notification.priority }}] {{ notification.title }}"
    body_text = "{{ notification.title }}: {{ notification.message }}"
