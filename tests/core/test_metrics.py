"""/metrics under a real gunicorn with two worker processes (config/gunicorn.conf.py, Prometheus
multiprocess mode): requests served by both processes are summed in every scrape, whichever
process answers it, and stay counted after a worker is replaced (child_exit marks it dead).
The domain gauges (apps/core/metrics.py and each app's metrics.py) count rows from the database."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.faults.harness import free_port, wait_port

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "metrics-test-token"
PROBE = "/no-such-page"  # through the whole middleware stack (the health probes answer before it)
SERIES = 'django_http_responses_total_by_status_total{status="404"}'


def _sample(text: str, series: str) -> float:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _per_process(directory: Path) -> dict[int, float]:
    """The 404 counter as each process wrote it to its own file."""
    from prometheus_client.mmap_dict import MmapedDict

    out: dict[int, float] = {}
    for path in directory.glob("counter_*.db"):
        pid = int(re.search(r"_(\d+)\.db$", path.name).group(1))
        for key, value, *_ in MmapedDict.read_all_values_from_file(str(path)):
            _, name, labels, _ = json.loads(key)
            if name == "django_http_responses_total_by_status_total" and labels.get("status") == "404":
                out[pid] = out.get(pid, 0) + value
    return out


@pytest.fixture
def gunicorn(transactional_db, tmp_path):
    from django.db import connection

    db = connection.settings_dict
    prom = tmp_path / "prom"
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "DJANGO_ENV": "test",
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "METRICS_TOKEN": TOKEN,
        "LOG_LEVEL": "WARNING",
        "PROMETHEUS_MULTIPROC_DIR": str(prom),
        "WEB_CONCURRENCY": "2",
        "WEB_THREADS": "1",
    }
    log = open(tmp_path / "gunicorn.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi:application", "-c", "config/gunicorn.conf.py", "-b", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    try:
        wait_port(port, timeout=60)
        yield proc, f"http://127.0.0.1:{port}", prom
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()


def _hit(url: str, n: int) -> None:
    with ThreadPoolExecutor(6) as pool:  # concurrent, one connection each: both processes accept
        codes = list(pool.map(lambda _: requests.get(url + PROBE, timeout=30).status_code, range(n)))
    assert codes == [404] * n


def _scrape(url: str) -> str:
    answer = requests.get(url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    assert answer.status_code == 200, answer.text[:500]
    return answer.text


def _workers(proc) -> list[int]:
    return [int(p) for p in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()]


def test_two_gunicorn_processes_are_summed_in_every_scrape(gunicorn):
    proc, url, prom = gunicorn
    served = 0
    for _ in range(10):  # until both processes have served some (the kernel decides who accepts)
        _hit(url, 24)
        served += 24
        if len([v for v in _per_process(prom).values() if v]) >= 2:
            break
    per_process = _per_process(prom)
    assert len([v for v in per_process.values() if v]) == 2, per_process
    assert sum(per_process.values()) == served

    first = _scrape(url)
    assert _sample(first, SERIES) == served  # the sum, not the share of the process that answered
    _hit(url, 12)
    second = _scrape(url)
    assert _sample(second, SERIES) == served + 12

    # a worker replaced (gunicorn forks a new one): what it counted stays in the sum
    victim = _workers(proc)[0]
    os.kill(victim, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while victim in _workers(proc) or len(_workers(proc)) < 2:
        assert time.monotonic() < deadline, "gunicorn did not replace the worker"
        time.sleep(0.2)
    assert _sample(_scrape(url), SERIES) == served + 12

    # the domain gauges come along in the same answer
    for family in (
        "opsportal_queue_depth",
        "opsportal_outbox_backlog",
        "opsportal_job_runs",
        "opsportal_deliveries",
        "opsportal_alerts_ingested",
        "opsportal_alerts_deduplicated",
        "opsportal_tickets_sla",
        "opsportal_beat_lag_seconds",
    ):
        assert f"# TYPE {family} gauge" in second, family
    assert 'opsportal_queue_depth{queue="jobs"}' in second and "opsportal_metric_errors 0.0" in second
