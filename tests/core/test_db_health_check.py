"""The per-request health check of a kept PostgreSQL connection (CONN_HEALTH_CHECKS): a quiet
idle connection is taken without a `SELECT 1` round trip; one whose backend has gone (terminated,
server restarted) is still found dead and replaced before the request's first query."""

from __future__ import annotations

import pytest
from django.db import connection, connections

from tests.conftest import wait_for

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.skipif(connection.vendor != "postgresql", reason="the PostgreSQL backend's check")]


@pytest.fixture
def kept():
    """A second connection to the test database as a web process keeps it (health checks on)."""
    wrapper = type(connections["default"])({**connection.settings_dict, "CONN_MAX_AGE": 60, "CONN_HEALTH_CHECKS": True}, "kept")
    wrapper.ensure_connection()
    yield wrapper
    wrapper.close()


def next_request(wrapper) -> int:
    """What Django does around a request (request_started/finished, then the first query);
    returns the backend pid that answered."""
    wrapper.close_if_unusable_or_obsolete()
    with wrapper.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        return cur.fetchone()[0]


def test_a_quiet_kept_connection_is_not_asked_select_1(kept, monkeypatch):
    pid = next_request(kept)
    asked = []
    real = type(kept).is_usable
    monkeypatch.setattr(type(kept), "is_usable", lambda self: asked.append(1) or real(self))
    for _ in range(3):
        assert next_request(kept) == pid
    assert asked == []


def test_a_terminated_backend_is_replaced_before_the_first_query(kept):
    pid = next_request(kept)
    with connection.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(%s)", [pid])

    def gone():
        with connection.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid])
            return cur.fetchone()[0] == 0

    wait_for(gone)
    new_pid = next_request(kept)  # no OperationalError: the check found it dead and reconnected
    assert new_pid != pid and kept.connection is not None


def test_a_connection_inside_a_transaction_gets_the_full_check(kept, monkeypatch):
    next_request(kept)
    asked = []
    real = type(kept).is_usable
    monkeypatch.setattr(type(kept), "is_usable", lambda self: asked.append(1) or real(self))
    kept.close_if_unusable_or_obsolete()
    kept.connection.execute("BEGIN")  # idle in a transaction: not the state a request starts from
    kept.close_if_health_check_failed()
    assert asked == [1]
    kept.connection.execute("ROLLBACK")
