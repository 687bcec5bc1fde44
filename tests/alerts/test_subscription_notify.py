"""Acknowledgements and resolutions notify exactly the subscriptions that asked for them
(`notify_on_acknowledge`, `notify_on_resolve`), at or above their minimum severity, when enabled."""

import pytest

from apps.alerts import services
from apps.alerts.choices import AlertType, Severity
from apps.notifications.models import Notification
from tests.factories import UserFactory
from tests.factories.alerts import AlertSubscriptionFactory

pytestmark = pytest.mark.django_db


def _staff(world, name):
    from apps.core.choices import Role
    from tests.factories import MembershipFactory

    user = UserFactory(username=name)
    MembershipFactory(user=user, organization=world.tenant("a"), role=Role.OPERATOR)
    return user


def _told(kind):
    return set(Notification.objects.filter(notification_type=kind).values_list("recipient__username", flat=True))


def test_acknowledge_and_resolve_notify_per_subscription(world, django_capture_on_commit_callbacks):
    tenant = world.tenant("a")
    subs = {
        "ack-only": {"notify_on_acknowledge": True, "notify_on_resolve": False},
        "resolve-only": {"notify_on_acknowledge": False, "notify_on_resolve": True},
        "both": {"notify_on_acknowledge": True, "notify_on_resolve": True},
        "neither": {"notify_on_acknowledge": False, "notify_on_resolve": False},
        "disabled": {"notify_on_acknowledge": True, "notify_on_resolve": True, "enabled": False},
        "critical-only": {"notify_on_acknowledge": True, "notify_on_resolve": True, "min_severity": Severity.CRITICAL},
        "other-type": {"notify_on_acknowledge": True, "notify_on_resolve": True, "alert_type": AlertType.ENDPOINT_DOWN},
    }
    for name, fields in subs.items():
        AlertSubscriptionFactory(tenant=tenant, user=_staff(world, name), **{"alert_type": AlertType.JOB_FAILED, **fields})
    with django_capture_on_commit_callbacks(execute=True):
        alert, _ = services.alert_raise(tenant=tenant, alert_type=AlertType.JOB_FAILED, severity=Severity.WARNING, title="job broke",
                                        resource_type="targets.jobrun", resource_id=1)
    with django_capture_on_commit_callbacks(execute=True):
        services.alert_acknowledge(alert, actor=world.user("a", "operator"))
    assert _told("alert_acknowledged") == {"ack-only", "both"}
    with django_capture_on_commit_callbacks(execute=True):
        services.alert_resolve(alert, actor=world.user("a", "operator"))
    assert _told("alert_resolved") == {"resolve-only", "both"}
