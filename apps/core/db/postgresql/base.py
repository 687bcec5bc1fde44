"""PostgreSQL (django_prometheus's instrumented wrapper) whose per-request health check of a
kept connection asks the socket before asking the server.

`CONN_HEALTH_CHECKS` runs `SELECT 1` at the first use of a kept connection in each request: a
round trip and a server query per request. A server that restarts, or a backend that is
terminated, sends its FATAL message and closes the socket (the kernel closes it when the
process dies), so the socket of a dead connection is readable while it is idle. A connection
that is idle, healthy to libpq and whose socket has nothing to read is taken as it is; anything
else — data or EOF waiting, a transaction open, a broken or closed connection — gets Django's
`SELECT 1` check, which closes it when it fails so the request reconnects.
"""

from __future__ import annotations

import select

import psycopg
from django_prometheus.db.backends.postgresql import base
from psycopg import pq

_POLL = getattr(select, "poll", None)


def quiet(connection) -> bool:
    """True when the psycopg connection is idle, healthy to libpq, and nothing waits on its socket."""
    if _POLL is None or connection.closed or connection.broken:
        return False
    pgconn = connection.pgconn
    try:
        if pgconn.status != pq.ConnStatus.OK or pgconn.transaction_status != pq.TransactionStatus.IDLE:
            return False
        poller = _POLL()
        poller.register(pgconn.socket, select.POLLIN | select.POLLPRI)
        return not poller.poll(0)  # readable while idle: a FATAL message, EOF, or a notice
    except (OSError, ValueError, psycopg.Error):  # no socket any more
        return False


class DatabaseWrapper(base.DatabaseWrapper):
    def close_if_health_check_failed(self):
        if (self.connection is not None and self.health_check_enabled and not self.health_check_done
                and self.pool is None and quiet(self.connection)):
            self.health_check_done = True
            return
        super().close_if_health_check_failed()
