import factory
from django.utils import timezone

from apps.tickets.choices import ActorType
from apps.tickets.models import SlaPolicy, Ticket
from apps.tickets.numbers import new_ticket_number


class TicketFactory(factory.django.DjangoModelFactory):
    """A ticket row straight in the database (services are tested through their own calls)."""

    class Meta:
        model = Ticket

    number = factory.LazyFunction(new_ticket_number)
    subject = factory.Sequence(lambda n: f"Ticket {n}")
    origin_type = ActorType.TENANT
    target_type = ActorType.PLATFORM
    sla_started_at = factory.LazyFunction(timezone.now)


class SlaPolicyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SlaPolicy

    name = factory.Sequence(lambda n: f"SLA {n}")
    priority = "normal"
    first_response_minutes = 60
    resolution_minutes = 480
