"""A real `celery worker` process (whose logging Celery sets up itself, replacing the root
handlers of settings.LOGGING) delivers to a Slack channel whose URL Apprise rejects: Apprise logs
the token, and the worker's log file must not contain it."""

from __future__ import annotations

import pytest

from tests.conftest import wait_for
from tests.faults.harness import broker_app, portal_env, start_worker, worker_ready

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]
TOKEN = "TIiajkdnl!azkcOXrIdevi7FQ"


def test_worker_log_has_no_channel_token(world, private_redis, test_db_url, tmp_path):
    from apps.notifications.choices import DeliveryStatus
    from apps.notifications.models import Delivery
    from tests.factories.notifications import ChannelConfigFactory, DeliveryFactory, NotificationFactory

    channel = ChannelConfigFactory(tenant=world.tenant("a"), kind="slack", plain_url=f"slack://T1JJ3T3L2/A1BRTD4JD/{TOKEN}/#general", secret="")
    delivery = DeliveryFactory(notification=NotificationFactory(tenant=world.tenant("a")), kind="slack", channel=channel, recipient=None)
    env = portal_env(database_url=test_db_url, redis_url=private_redis.url)
    worker = start_worker(env, tmp_path / "worker.log", queues="notifications", name="notifier")
    try:
        worker_ready(worker)
        broker_app(private_redis.url).send_task("notifications.deliver", args=[[delivery.pk]], queue="notifications")
        wait_for(lambda: Delivery.objects.get(pk=delivery.pk).status == DeliveryStatus.FAILED, timeout=30)
        wait_for(lambda: "notifications.deliver" in worker.output() and "succeeded" in worker.output(), timeout=10)
    finally:
        worker.stop()
    log = (tmp_path / "worker.log").read_text(errors="replace")
    assert "Slack" in log, log[-3000:]  # Apprise's record did reach the worker's log
    assert TOKEN not in log, log[-3000:]
    assert "[redacted]" in log
