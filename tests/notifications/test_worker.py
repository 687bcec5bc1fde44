"""The outbox with a real Celery worker on Redis, and a broker outage healed by the sweeper."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from kombu.exceptions import OperationalError

from apps.notifications import services, tasks
from apps.notifications.models import Delivery
from tests.conftest import wait_for
from tests.factories import MembershipFactory, UserFactory
from tests.factories.notifications import ChannelConfigFactory, PreferenceFactory


def _team_with_personal_webhooks(world, peer, n):
    users = []
    for i in range(n):
        u = UserFactory(username=f"oncall-{i}")
        MembershipFactory(user=u, organization=world.tenant("a"), role="operator")
        PreferenceFactory(tenant=world.tenant("a"), user=u, channels=["in_app", "webhook"])
        ChannelConfigFactory(tenant=world.tenant("a"), name=f"hook-{i}", user=u, plain_url=f"{peer.url}/u/{u.pk}", secret="w")
        users.append(u)
    return users


def test_real_worker_delivers_the_outbox(world, http_peer, celery_worker):
    users = _team_with_personal_webhooks(world, http_peer, 5)
    services.notify_team(tenant=world.tenant("a"), team_members=[u.pk for u in users], title="from the worker")
    wait_for(lambda: Delivery.objects.filter(status="sent").count() == 5)
    assert sorted(r["path"] for r in http_peer.requests) == sorted(f"/u/{u.pk}" for u in users)


@pytest.fixture
def broker_down(monkeypatch):
    """A simulated outage: publishing to the broker fails the way kombu fails when Redis is gone."""
    def refuse(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(tasks.deliver_task, "apply_async", refuse)
    return monkeypatch


def test_broker_outage_then_sweeper_delivers_exactly_once(world, http_peer, celery_worker, broker_down):
    users = _team_with_personal_webhooks(world, http_peer, 4)
    services.notify_team(tenant=world.tenant("a"), team_members=[u.pk for u in users], title="during the outage")
    assert Delivery.objects.filter(status="pending", kind="webhook").count() == 4  # written, not lost
    assert services.deliveries_sweep() == 0  # too fresh: the sweeper waits NOTIFICATIONS_SWEEP_AFTER
    broker_down.undo()  # the broker is back
    later = timezone.now() + timedelta(seconds=61)
    assert services.deliveries_sweep(now=later) == 4
    assert services.deliveries_sweep(now=later) in (0, 4)  # a second sweep may re-enqueue; the claim dedupes
    wait_for(lambda: Delivery.objects.filter(status="sent").count() == 4)
    import time

    time.sleep(1.0)  # let any duplicate task run: it must find nothing to send
    assert len(http_peer.requests) == 4
    assert sorted(json.loads(r["body"])["title"] for r in http_peer.requests) == ["during the outage"] * 4
    assert set(Delivery.objects.values_list("attempts", flat=True)) == {1}
