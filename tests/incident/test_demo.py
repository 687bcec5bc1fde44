"""seed_demo runs the alerts demo (incident rule, policy, an alert with its ticket) idempotently."""

import pytest
from django.core.management import call_command

from apps.alerts.models import Alert


@pytest.mark.django_db
def test_seed_demo_twice():
    call_command("seed_demo")
    call_command("seed_demo")
    assert Alert.objects.filter(ticket__isnull=False).count() == 1
