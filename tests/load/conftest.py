from tests.faults.conftest import private_redis, test_db_url  # noqa: F401
