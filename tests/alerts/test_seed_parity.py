"""Seed 002 parity: what the seed's alert service does that the portal must do too."""

import pytest

from apps.alerts.models import Alert
from apps.core.models import Event
from apps.tickets import services as tickets
from tests.factories.tickets import TicketFactory

pytestmark = pytest.mark.django_db


def test_raising_a_ticket_to_critical_raises_a_critical_alert(world, django_capture_on_commit_callbacks):
    ticket = TicketFactory(tenant=world.tenant("a"), priority="normal")
    with django_capture_on_commit_callbacks(execute=True):
        tickets.ticket_update(ticket, actor=world.user("a", "admin"), priority="critical")
    event = Event.objects.get(name="ticket.priority_changed")
    assert event.payload["old_priority"] == "normal" and event.payload["priority"] == "critical"
    alert = Alert.objects.get(tenant=world.tenant("a"), alert_type="critical_ticket")
    assert alert.severity == "critical" and alert.resource_id == str(ticket.pk)
    # lowering it (or another change) raises nothing more; raising again counts on the open alert
    with django_capture_on_commit_callbacks(execute=True):
        tickets.ticket_update(ticket, actor=world.user("a", "admin"), priority="high")
    assert Alert.objects.filter(alert_type="critical_ticket").count() == 1


def test_other_priority_changes_raise_no_alert(world, django_capture_on_commit_callbacks):
    ticket = TicketFactory(tenant=world.tenant("a"), priority="low")
    with django_capture_on_commit_callbacks(execute=True):
        tickets.ticket_update(ticket, actor=world.user("a", "admin"), priority="urgent")
    assert Event.objects.filter(name="ticket.priority_changed").exists()
    assert not Alert.objects.filter(alert_type="critical_ticket").exists()
