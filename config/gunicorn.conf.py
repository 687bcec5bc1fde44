"""gunicorn settings of the web process: the image (`Dockerfile`) and the benchmarks
(`bench/common.py` LiveServer) start gunicorn with this file, so a figure measured on the bench
is the configuration a deployment runs. Command-line flags and `WEB_CONCURRENCY` override it."""

import multiprocessing
import os

# Sync workers: a Django request is CPU-bound Python, one process per request in flight. gunicorn's
# documented starting point is 2 × cores + 1, so that while one worker waits on PostgreSQL (a
# commit's WAL flush) or Redis another has the core; fewer leave cores idle under concurrent load.
workers = int(os.environ.get("WEB_CONCURRENCY") or 2 * multiprocessing.cpu_count() + 1)
worker_class = "sync"
timeout = 60
