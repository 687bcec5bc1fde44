"""gunicorn settings of the web process: the image (`Dockerfile`) and the benchmarks
(`bench/common.py` LiveServer) start gunicorn with this file, so a figure measured on the bench
is the configuration a deployment runs. Command-line flags, `GUNICORN_CMD_ARGS`,
`WEB_CONCURRENCY` (processes) and `WEB_THREADS` (threads per process) override it.

Threaded workers (gthread), one process per core with 4 threads each: a thread waiting on
PostgreSQL (a commit's WAL flush) or Redis leaves the core to another, and, unlike sync workers,
gthread keeps HTTP connections alive, so an API client does not pay a TCP connection (and the
worker an accept) per request. Measured on the ticket-create bench (2 cores, 8 clients; docs/
tickets.md): sync × 5 cost 5.3–5.5 ms of server CPU and 0.55 ms of client CPU per create, gthread
2 × 4 4.0–4.4 ms and 0.25–0.3 ms, 1.5× the rate in the same minutes. The alerts bench (batches of
100 alerts, heavier requests) does not gain: about the same server CPU, client 0.55 → 0.3 ms, but
its p99 doubles (75–97 → 154–217 ms: four requests of one process share its interpreter lock)
and its rate moved from −15 % to +2 % in alternated runs. `GUNICORN_CMD_ARGS="-w 5 --threads 1
--worker-class sync"` gives the former settings back.
"""

import multiprocessing
import os
import tempfile

workers = int(os.environ.get("WEB_CONCURRENCY") or multiprocessing.cpu_count())
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS") or 4)
keepalive = 5
timeout = 60

# Prometheus multiprocess mode: every worker process writes its counters to files in this
# directory and /metrics sums them all (apps/core/metrics.py); without it each scrape would see
# the one process that answered. Set before any worker imports prometheus_client.
_metrics_dir_given = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
_metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.path.join(
    tempfile.gettempdir(), f"opsportal-prometheus-{os.getpid()}"
)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir


def on_starting(server):
    """A fresh directory per server start: files of a previous run's processes would be summed in."""
    os.makedirs(_metrics_dir, exist_ok=True)
    for name in os.listdir(_metrics_dir):
        if name.endswith(".db"):
            os.unlink(os.path.join(_metrics_dir, name))


def child_exit(server, worker):
    """A worker that exits (restart, crash, max-requests) stops counting in live gauges; its
    counters stay in the sums."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid, _metrics_dir)


def on_exit(server):
    """The default directory (under the temp dir) goes with the server; a given one is kept."""
    if not _metrics_dir_given:
        import shutil

        shutil.rmtree(_metrics_dir, ignore_errors=True)
