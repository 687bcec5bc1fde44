import pytest

from tests.faults.harness import RedisServer
from tests.targets.conftest import sshd  # noqa: F401  (a real sshd on loopback)


@pytest.fixture
def private_redis(tmp_path):
    """A redis-server of this test alone (never the shared 6379)."""
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def test_db_url(transactional_db, settings):
    """The URL of the test database, for portal subprocesses (they see committed rows only)."""
    db = settings.DATABASES["default"]
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
