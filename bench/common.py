"""Shared set-up for benchmarks: Django on a dedicated PostgreSQL database, peers beside us.

Every benchmark is a script `bench/bench_<name>.py` that prints exactly one line:
`<name>: key=value key=value ...` (figures, the peer's figure measured in the same run, the ratio).
`bench/run.py` (make bench) runs them all; each can also run alone: `python bench/bench_x.py`.
"""

from __future__ import annotations

import contextlib
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEERS = Path(os.environ.get("BENCH_PEERS", ROOT.parent / "shared" / "bench" / "peers"))  # a worktree: BENCH_PEERS=/work/shared/bench/peers
BENCH_DB = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/opsportal_bench")


def ensure_database(url: str = BENCH_DB) -> None:
    name = url.rsplit("/", 1)[1]
    import psycopg

    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname=%s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def setup_django(migrate: bool = True):
    """Point Django at the bench database, migrate it, and return the settings."""
    sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = BENCH_DB
    os.environ.setdefault("DJANGO_ENV", "test")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "true")
    ensure_database()
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)
    from django.conf import settings

    return settings


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def median(values):
    return statistics.median(values)


def percentile(values, pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = max(0, min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1))))
    return ordered[k]


def run_peer(args: list[str], timeout: int = 900, env: dict | None = None) -> str:
    """Run a peer script from ../shared/bench/peers and return its stdout."""
    out = subprocess.run(args, cwd=PEERS, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})
    if out.returncode != 0:
        raise RuntimeError(f"peer {args} failed: {out.stderr[-2000:]}")
    return out.stdout


def line(name: str, **figures) -> str:
    parts = []
    for key, value in figures.items():
        parts.append(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}")
    text = f"{name}: " + " ".join(parts)
    print(text, flush=True)
    return text


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_cpu_seconds(pid: int, children: bool = False) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc); with `children`, plus
    those of its children that have ended and been waited for."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12]) + ((int(fields[13]) + int(fields[14])) if children else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


class PostgresCpu:
    """CPU seconds the PostgreSQL backends of one database use while the block runs. Backends are
    sampled every `interval` seconds, so connections opened or recycled meanwhile (after
    CONN_MAX_AGE) count from their start to their last sample; only the sampler's own is left out.

        with PostgresCpu("opsportal_bench") as pg:
            ...
        pg.seconds
    """

    def __init__(self, database: str, interval: float = 0.5):
        self.database, self.interval = database, interval
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.seconds = 0.0

    def _sample(self, conn, initial: bool = False) -> None:
        pids = [row[0] for row in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [self.database])]
        for pid in pids:
            with contextlib.suppress(OSError):  # the backend ended meanwhile
                value = process_cpu_seconds(pid)
                self.first.setdefault(pid, value if initial else 0.0)
                self.last[pid] = value

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample(self._conn)

    def __enter__(self):
        import threading

        import psycopg

        self._conn = psycopg.connect(BENCH_DB.rsplit("/", 1)[0] + "/" + self.database, autocommit=True)
        self._sample(self._conn, initial=True)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._sample(self._conn)
        self._conn.close()
        self.seconds = sum(self.last[pid] - self.first[pid] for pid in self.last)


class LiveServer:
    """gunicorn serving the portal on a loopback port against the bench database, with the
    deployment's server settings (`config/gunicorn.conf.py`: gthread, one process per core × 4 threads) and
    persistent database connections (`DB_CONN_MAX_AGE=60`, the production default).

    Celery is not eager here: events go to the broker as in production (a dedicated Redis DB,
    purged on exit), so request timings exclude handler work a worker would do.
    """

    def __init__(self, workers: int | None = None, redis_url: str | None = None, app: str = "config.wsgi:application", **env):
        import tempfile

        # BENCH_REDIS_URL: a Redis DB of the bench's own (it is flushed on exit)
        redis_url = redis_url or os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
        self.workers, self.redis_url, self.extra_env, self.app = workers, redis_url, env, app
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the server; closed in __exit__)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        import signal  # noqa: F401

        env = {**os.environ, "DATABASE_URL": BENCH_DB, "DJANGO_ENV": "test", "DEBUG": "false",
               "ALLOWED_HOSTS": "127.0.0.1,localhost", "REDIS_URL": self.redis_url, "CELERY_BROKER_URL": self.redis_url,
               "CELERY_TASK_ALWAYS_EAGER": "false", "LOG_LEVEL": "WARNING", "API_THROTTLE_USER": "1000000/min",
               "AXES_ENABLED": "false", "DB_CONN_MAX_AGE": "60",
               # production's dispatch coalescing (DJANGO_ENV=test turns it off for the tests)
               "EVENTS_DISPATCH_COALESCE_MS": os.environ.get("EVENTS_DISPATCH_COALESCE_MS", "10"), **self.extra_env}
        self.proc = subprocess.Popen(
            [str(ROOT / ".venv/bin/gunicorn"), self.app, "-c", str(ROOT / "config" / "gunicorn.conf.py"),
             "-b", f"127.0.0.1:{self.port}", "--log-level", "warning", "--keep-alive", "30",
             *(["-w", str(self.workers)] if self.workers else [])],
            # a file, not a pipe nobody reads: a full pipe would block the workers' log writes
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=self.log, start_new_session=True,
        )
        import socket

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.2)
        self.__exit__(None, None, None)
        self.log.seek(0)
        raise RuntimeError("gunicorn did not start: " + self.log.read()[-2000:].decode(errors="replace"))

    def cpu_seconds(self) -> float:
        """CPU seconds used so far by gunicorn: the master, its live workers and the workers it
        has already reaped (a restarted worker's time is not lost)."""
        total = process_cpu_seconds(self.proc.pid, children=True)
        with contextlib.suppress(OSError), open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
            for pid in f.read().split():
                with contextlib.suppress(OSError):
                    total += process_cpu_seconds(int(pid))
        return total

    def __exit__(self, *exc):
        import signal

        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        finally:
            import redis

            redis.Redis.from_url(self.redis_url).flushdb()
            self.log.seek(0)
            text = self.log.read().decode(errors="replace")
            self.log.close()
            if "Traceback" in text or "WORKER TIMEOUT" in text:  # to stderr: the bench line stays alone on stdout
                print("gunicorn log (tail):\n" + text[-3000:], file=sys.stderr)


def helpdesk_p50(label: str) -> float:
    """The p50 (ms, the bold figure) of the django-helpdesk row starting with `label` in
    ../shared/bench/peers/RESULTS.md §4 (the 1M-ticket peer; not re-run, it takes ~11 min)."""
    text = (PEERS / "RESULTS.md").read_text()
    section = text.split("## 4.", 1)[1].split("## 5.", 1)[0]
    row = next(r for r in section.splitlines() if r.startswith("| " + label))
    return float(re.findall(r"\*\*([\d,\.]+)\*\*", row)[0].replace(",", ""))
