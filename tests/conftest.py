import pytest
from rest_framework.test import APIClient

from tests.world import build_world


@pytest.fixture
def world(db):
    return build_world()


@pytest.fixture
def api():
    """An API client; `api.as_user(user)` authenticates it with a real JWT."""
    client = APIClient()

    def as_user(user, organization: str | None = None):
        from rest_framework_simplejwt.tokens import RefreshToken

        token = RefreshToken.for_user(user).access_token
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}", **({"HTTP_X_ORGANIZATION": organization} if organization else {}))
        return client

    client.as_user = as_user
    return client


@pytest.fixture(autouse=True)
def _media_and_cache(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture
def celery_worker(transactional_db, settings):
    """A real Celery worker (threads) consuming every portal queue from Redis.

    Tests using it see committed data only (transactional_db), as a real worker does.
    """
    from celery.contrib.testing.worker import start_worker

    from config.celery import QUEUES, app

    if not settings.CELERY_BROKER_URL.startswith("redis"):
        pytest.skip("needs CELERY_BROKER_URL=redis://…")
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = False
    app.control.purge()
    try:
        with start_worker(
            app,
            pool="threads",
            concurrency=2,
            perform_ping_check=False,
            queues=list(QUEUES),
            loglevel="WARNING",
            shutdown_timeout=10,
        ) as worker:
            yield worker
    finally:
        app.conf.task_always_eager = previous


def wait_for(predicate, timeout: float = 15.0, interval: float = 0.1):
    """Poll until predicate() is truthy (for tests with a real worker); returns its value."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")
