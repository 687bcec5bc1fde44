from datetime import timedelta

import factory
from django.utils import timezone

from apps.maintenance.models import MaintenanceWindow


class MaintenanceWindowFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MaintenanceWindow

    name = factory.Sequence(lambda n: f"window-{n}")
    starts_at = factory.LazyFunction(lambda: timezone.now() - timedelta(minutes=5))
    ends_at = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=1))
