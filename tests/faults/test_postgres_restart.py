"""PostgreSQL restarted under a running gunicorn and Celery worker (persistent connections, as in
production): both recover on their own — no restart of theirs — and work resumes.

Runs on a private PostgreSQL cluster (initdb in a temp dir, another port), loaded with a dump of
the test database, so the shared server is never touched."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import wait_for
from tests.faults.harness import (
    PostgresCluster,
    SmtpSink,
    chown_to_postgres,
    http,
    jwt_for,
    pg_bin,
    portal_env,
    start_web,
    start_worker,
    worker_ready,
)

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]


def test_web_and_worker_recover_from_a_postgres_restart(world, private_redis, test_db_url, tmp_path):
    pg = pg_bin()
    # pytest's tmp dirs are private to root (0700): the cluster lives in its own dir the
    # `postgres` user can reach, removed at the end.
    pgdir = Path(tempfile.mkdtemp(prefix="opsportal-faults-pg-"))
    os.chmod(pgdir, 0o755)
    chown_to_postgres(pgdir)
    cluster = PostgresCluster(pgdir)
    web = worker = None
    smtp = SmtpSink().start()
    try:
        subprocess.run([pg / "createdb", "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres", "portal"], check=True)
        dump = subprocess.run([pg / "pg_dump", "--no-owner", test_db_url.replace("postgres://", "postgresql://")],
                              check=True, capture_output=True)
        subprocess.run([pg / "psql", "-q", "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres", "portal"],
                       input=dump.stdout, check=True, capture_output=True)
        env = portal_env(database_url=cluster.url("portal"), redis_url=private_redis.url, DB_CONN_MAX_AGE=60,
                         EMAIL_URL=f"smtp://127.0.0.1:{smtp.port}", NOTIFICATIONS_RATE_LIMIT_COUNT=100000)
        web, base = start_web(env, tmp_path / "web.log", workers=1, threads=2)
        worker = start_worker(env, tmp_path / "worker.log", queues="default,notifications")
        worker_ready(worker)
        admin, viewer = world.user("a", "admin"), world.user("a", "viewer")
        token = jwt_for(admin)

        def team(title):
            return http("POST", base + "/api/v1/notifications/team", token=token,
                        body={"title": title, "team_members": [viewer.pk], "priority": "high"})

        assert http("GET", base + "/api/v1/users/me", token=token)[0] == 200
        assert team("before restart #1#")[0] == 201
        wait_for(lambda: any("before restart" in s for _, s in smtp.subjects()), timeout=30)
        web_pid, worker_pid = web.pid, worker.pid

        restarted = time.monotonic()
        cluster.restart()
        statuses = []
        for _ in range(10):
            statuses.append(http("GET", base + "/api/v1/users/me", token=token)[0])
        first_ok = statuses.index(200) if 200 in statuses else None
        assert statuses[-5:] == [200] * 5, (statuses, web.output())
        assert team("after restart #2#")[0] == 201
        wait_for(lambda: any("after restart" in s for _, s in smtp.subjects()), timeout=60)
        recovered = time.monotonic() - restarted
        assert web.proc.poll() is None and worker.proc.poll() is None and (web.pid, worker.pid) == (web_pid, worker_pid)
    finally:
        for proc in (web, worker):
            if proc:
                proc.stop()
        smtp.stop()
        cluster.stop()
        shutil.rmtree(pgdir, ignore_errors=True)
    print(f"\nFAULT postgres_restart: web answers after restart={statuses} (first 200 at request {first_ok + 1}); "
          f"worker delivered again {recovered:.1f}s after the restart; no process restarted")
