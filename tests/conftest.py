import pytest
from rest_framework.test import APIClient

from tests import sharding
from tests.world import build_world


def pytest_collection_modifyitems(config, items):
    sharding.select(items, config)  # TEST_SHARD=k/N (tests/run_shards.py): keep this shard's part


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

    def as_token(user, role: str | None = None, organization=None):
        """Authenticate with a real portal API token of `user` (its first membership's
        organization unless given; the role at most theirs, default theirs)."""
        from apps.core.tenancy import memberships_of
        from apps.tenants.tokens.services import api_token_create

        org = organization or memberships_of(user)[0].organization
        _, secret = api_token_create(actor=user, organization=org, name="test", role=role)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        return client

    client.as_user = as_user
    client.as_token = as_token
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


@pytest.fixture
def celery_beat(transactional_db, settings, tmp_path):
    """A real `celery -A config beat` process with django-celery-beat's DatabaseScheduler on the
    test database and the test broker, after the portal's schedules were synced as
    `manage.py setup_periodic_tasks` does. Use it with `celery_worker` (which consumes what it
    sends). Yields the process; its log is `proc.log_path`."""
    import contextlib
    import io
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from django.core.management import call_command

    if not settings.CELERY_BROKER_URL.startswith("redis"):
        pytest.skip("needs CELERY_BROKER_URL=redis://…")
    call_command("setup_periodic_tasks", stdout=io.StringIO())
    db = settings.DATABASES["default"]
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env.update(DJANGO_ENV="test", DATABASE_URL=f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
               CELERY_BROKER_URL=settings.CELERY_BROKER_URL, CELERY_TASK_ALWAYS_EAGER="false", SECRET_KEY=settings.SECRET_KEY,
               PYTHONUNBUFFERED="1")
    log_path = tmp_path / "celery-beat.log"
    root = Path(__file__).resolve().parents[1]
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "celery"), "-A", "config", "beat", "-S", "django_celery_beat.schedulers:DatabaseScheduler",
             "-l", "INFO", "--pidfile="], cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    proc.log_path = log_path
    deadline = time.monotonic() + 30
    while "Sending due task" not in log_path.read_text(errors="replace"):  # loaded the schedules and ticking
        if proc.poll() is not None or time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail("celery beat did not start:\n" + log_path.read_text(errors="replace")[-4000:])
        time.sleep(0.2)
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
