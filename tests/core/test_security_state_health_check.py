"""The security-state query (apps/core/api/tokens.py) doubles as the request's connection health
check (docs/api-performance.md): no separate `SELECT 1` before it, and a connection PostgreSQL
dropped since the last request is replaced at once instead of failing the request."""

from unittest import mock

import pytest
from django.db import connections

from apps.core.api.tokens import security_state

pytestmark = pytest.mark.django_db(transaction=True)


def _new_request(conn):
    conn.close_if_unusable_or_obsolete()  # what request_started does: the next use is health-checked


def test_no_select_1_before_the_security_query(world):
    conn = connections["default"]
    if not conn.settings_dict.get("CONN_HEALTH_CHECKS"):
        pytest.skip("health checks are on with PostgreSQL only")
    user = world.user("a", "admin")
    conn.ensure_connection()
    _new_request(conn)
    with mock.patch.object(type(conn), "is_usable", autospec=True, return_value=True) as checked:
        assert security_state(user.pk).is_active
        conn.cursor().close()  # later queries of the request: checked already
    assert checked.call_count == 0 and conn.health_check_done


def test_a_dropped_connection_is_replaced(world):
    conn = connections["default"]
    if not conn.settings_dict.get("CONN_HEALTH_CHECKS"):
        pytest.skip("health checks are on with PostgreSQL only")
    user = world.user("a", "admin")
    with conn.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        pid = cur.fetchone()[0]
    other = connections.create_connection("default")
    try:
        with other.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(%s)", [pid])
    finally:
        other.close()
    _new_request(conn)
    state = security_state(user.pk)
    assert state is not None and state.is_active
    with conn.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        assert cur.fetchone()[0] != pid
