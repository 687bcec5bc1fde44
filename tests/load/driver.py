"""Closed-loop load on a live portal: N clients (threads, keep-alive HTTP/1.1 connections) for S
seconds on a mix — list tickets 40 %, create a ticket 20 %, ingest an alert 20 %, read
notifications (list + unread count) 20 %. Every request is timed and its status recorded; every
created row carries the run's prefix so it can be counted afterwards. Shared by the CI test
(tests/load/test_load.py, scaled down by env) and the benchmark (bench/bench_load.py)."""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class Result:
    latencies: list = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    errors: list = field(default_factory=list)
    tickets_created: int = 0
    alerts_ingested: int = 0
    elapsed: float = 0.0

    def p(self, pct: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[max(0, min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1))))] * 1000

    @property
    def requests(self) -> int:
        return len(self.latencies)


def run_load(*, base: str, tokens: list[str], ingest_token: str, prefix: str, clients: int, seconds: float, seed: int = 1) -> Result:
    url = urlsplit(base)
    result = Result()
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds
    start_gate = threading.Barrier(clients + 1)

    def client(n: int) -> None:
        rnd = random.Random(seed * 1000 + n)
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
        token = tokens[n % len(tokens)]
        local = Result()
        i = 0
        start_gate.wait()
        while time.monotonic() < stop_at:
            i += 1
            roll = rnd.random()
            if roll < 0.4:
                calls = [("GET", "/api/v1/tickets/?page_size=20", token, None, None)]
            elif roll < 0.6:
                calls = [("POST", "/api/v1/tickets/", token, {"subject": f"{prefix} c{n} #{i}", "message": "load", "priority": "normal", "target_type": "platform"}, "ticket")]
            elif roll < 0.8:
                calls = [("POST", "/api/v1/alerts/ingest", ingest_token,
                          [{"labels": {"alertname": f"{prefix}-c{n}-{i}", "severity": "warning"}}], "alert")]
            else:
                calls = [("GET", "/api/v1/notifications/?page_size=20", token, None, None),
                         ("GET", "/api/v1/notifications/unread-count/", token, None, None)]
            for method, path, auth, body, kind in calls:
                payload = json.dumps(body).encode() if body is not None else None
                headers = {"Authorization": f"Bearer {auth}", "Host": "localhost"}
                if payload is not None:
                    headers["Content-Type"] = "application/json"
                started = time.monotonic()
                try:
                    conn.request(method, path, body=payload, headers=headers)
                    response = conn.getresponse()
                    response_body = response.read()
                    status = response.status
                except (OSError, http.client.HTTPException) as exc:
                    conn.close()
                    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
                    local.errors.append(f"{method} {path}: {exc!r}")
                    local.statuses["exception"] += 1
                    continue
                local.latencies.append(time.monotonic() - started)
                local.statuses[status] += 1
                if status >= 400:
                    local.errors.append(f"{method} {path}: {status} {response_body[:300]!r}")
                elif kind == "ticket":
                    local.tickets_created += 1
                elif kind == "alert":
                    local.alerts_ingested += 1
        conn.close()
        with lock:
            result.latencies.extend(local.latencies)
            result.statuses.update(local.statuses)
            result.errors.extend(local.errors[:20])
            result.tickets_created += local.tickets_created
            result.alerts_ingested += local.alerts_ingested

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    for t in threads:
        t.start()
    start_gate.wait()
    began = time.monotonic()
    for t in threads:
        t.join(seconds + 120)
    result.elapsed = time.monotonic() - began
    return result


def seed_notifications(tenant, users, per_user: int = 30) -> None:
    from apps.notifications.models import Notification

    Notification.objects.bulk_create(
        Notification(tenant=tenant, recipient=u, title=f"load note {i}", message="m") for u in users for i in range(per_user)
    )
