#!/usr/bin/env python
"""Run the whole suite as N pytest processes at once (`make test`; TEST_SHARDS, default 2).

Much of the suite waits — on real Celery workers and beat, sshd, chromium, SMTP and HTTP peers,
fault-injection restarts — so one pytest process leaves a core idle most of the time. Each shard
gets its own test database (the name from DATABASE_URL + `_s<k>`; pytest-django then creates
`test_<that>`) and its own Redis database (REDIS_URL's number + k), so shards share nothing but the
servers; every other peer a test starts is already private (own port, own temp dir). The split
is in `tests/sharding.py`.

Beside the shards, one short run takes the tests marked `sqlite` (ingestion, alert raising,
ticket creation, team notifications) on the embedded default `make run` uses: SQLite in a file
under var/test-sqlite/, the file cache and no Redis (`sqlite_env`; tables from the models,
`--no-migrations`, to stay short). TEST_SQLITE=0 leaves it out.

Each run's output goes to var/test-logs/<shard-k|sqlite>.log and is printed whole when it ends;
the last line sums them. Exit status: 0 only when every run passed.
`--record` afterwards rewrites tests/durations.json from the shards' JUnit files.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
LOGS = ROOT / "var" / "test-logs"
SUMMARY = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed|deselected|warnings?)")


def with_database_suffix(url: str, suffix: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + suffix))


def with_redis_db(url: str, offset: int) -> str:
    parts = urlsplit(url)
    base = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(base + offset) % 16}"))


def shard_env(k: int, n: int) -> dict:
    env = dict(os.environ, TEST_SHARD=f"{k}/{n}")
    env["DATABASE_URL"] = with_database_suffix(os.environ["DATABASE_URL"], f"_s{k}")
    redis = with_redis_db(os.environ["REDIS_URL"], k)
    env["REDIS_URL"] = redis
    if os.environ.get("CELERY_BROKER_URL", "").startswith("redis"):
        env["CELERY_BROKER_URL"] = redis
    return env


# the modules holding `sqlite`-marked tests (named, so the run skips collecting the whole suite;
# tests/test_sharding.py checks the list is complete)
SQLITE_MODULES = ["tests/alerts/test_ingest.py", "tests/alerts/test_ingest_resend.py", "tests/alerts/test_services.py", "tests/tickets/test_create_path.py", "tests/notifications/test_api.py", "tests/notifications/test_fanout_writers.py"]


def sqlite_env() -> dict:
    """The environment of the SQLite run: `make run`'s embedded default in var/test-sqlite/
    (the database file, the file cache, Celery's filesystem broker), tasks eager."""
    var = ROOT / "var" / "test-sqlite"
    var.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PORTAL_VAR_DIR=str(var), DATABASE_URL=f"sqlite:///{var / 'opsportal.sqlite3'}",
               CELERY_BROKER_URL="filesystem://", CELERY_TASK_ALWAYS_EAGER="true")
    env.pop("TEST_SHARD", None)
    env["REDIS_URL"] = ""
    return env


def record() -> None:
    """tests/durations.json from the last sharded run's JUnit files: seconds and tests per module."""
    modules: dict[str, dict] = defaultdict(lambda: {"seconds": 0.0, "tests": 0})
    files = sorted(LOGS.glob("shard-*.xml"))
    if not files:
        sys.exit("no var/test-logs/shard-*.xml: run `make test` first")
    for path in files:
        for case in ET.parse(path).iter("testcase"):
            module = case.get("classname", "").split(".")
            # classname is dotted: tests.alerts.test_api[.TestClass]; keep the module path
            while module and not module[-1].startswith("test_"):
                module.pop()
            name = "/".join(module) + ".py"
            modules[name]["seconds"] += float(case.get("time", 0))
            modules[name]["tests"] += 1
    out = {m: {"seconds": round(v["seconds"], 2), "tests": v["tests"]} for m, v in sorted(modules.items())}
    (ROOT / "tests" / "durations.json").write_text(json.dumps(out, indent=1) + "\n")
    print(f"tests/durations.json: {len(out)} modules, {sum(v['seconds'] for v in out.values()):.0f}s of tests")


def main(argv: list[str]) -> int:
    if argv[:1] == ["--record"]:
        record()
        return 0
    n = int(os.environ.get("TEST_SHARDS", "2"))
    LOGS.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    procs = []
    runs = [(f"shard-{k}", [], shard_env(k, n)) for k in range(n)]
    if os.environ.get("TEST_SQLITE", "1") != "0":
        runs.append(("sqlite", ["-m", "sqlite", "--no-migrations", *SQLITE_MODULES], sqlite_env()))
    for name, extra, env in runs:
        log = open(LOGS / f"{name}.log", "wb")  # noqa: SIM115 — closed when the run ends
        cmd = [sys.executable, "-m", "pytest", "-q", f"--junitxml={LOGS / f'{name}.xml'}", *extra, *argv]
        procs.append((name, subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT), log))
    print(f"{n} shards{' and the SQLite run' if len(runs) > n else ''} running; logs in {LOGS.relative_to(ROOT)}/*.log", flush=True)
    totals: dict[str, int] = defaultdict(int)
    worst = 0
    pending = list(procs)
    while pending:
        for entry in list(pending):
            name, proc, log = entry
            code = proc.poll()
            if code is None:
                continue
            pending.remove(entry)
            log.close()
            text = (LOGS / f"{name}.log").read_text(errors="replace")
            print(f"\n===== {name} of {n} shards (exit {code}, {time.monotonic() - started:.0f}s) =====\n{text}", flush=True)
            last = [line for line in text.splitlines() if line.strip()][-1:] or [""]
            for count, kind in SUMMARY.findall(last[0]):
                kind = {"error": "errors", "warning": "warnings"}.get(kind, kind)
                totals[kind] += int(count)
            # 5 = nothing collected: an empty shard is not a failure
            worst = max(worst, 0 if code == 5 else code)
        time.sleep(0.5)
    summary = ", ".join(f"{totals[k]} {k}" for k in ("passed", "failed", "errors", "skipped", "xfailed", "xpassed") if totals[k])
    print(f"\n===== all {len(procs)} runs: {summary or 'no tests'} in {time.monotonic() - started:.2f}s =====")
    return worst


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
