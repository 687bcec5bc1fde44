#!/usr/bin/env python
"""Where the ordinary request path spends its CPU: cProfile over N requests of one route, called
in-process on Django's WSGI handler as gunicorn calls it (demo data and the user of bench_http).
`python bench/profile_http.py me|unread|list [N]` prints the CPU per request and the functions
with the most cumulative and own time. Not a benchmark (bench/run.py does not run it)."""

from __future__ import annotations

import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_http import ROUTES, _demo
from common import setup_django


def environ(path: str, token: str) -> dict:
    path, _, query = path.partition("?")
    return {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": query, "SCRIPT_NAME": "", "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80", "HTTP_HOST": "127.0.0.1", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
            "HTTP_AUTHORIZATION": f"Bearer {token}", "wsgi.input": io.BytesIO(b""), "wsgi.errors": sys.stderr,
            "wsgi.url_scheme": "http", "wsgi.version": (1, 0), "wsgi.multithread": True, "wsgi.multiprocess": True, "wsgi.run_once": False}


def main(route: str, n: int) -> None:
    import os

    os.environ.setdefault("DEBUG", "false")
    os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1")
    os.environ.setdefault("DB_CONN_MAX_AGE", "60")
    os.environ.setdefault("API_THROTTLE_USER", "1000000/min")
    setup_django()
    token = _demo()
    from django.core.wsgi import get_wsgi_application

    app = get_wsgi_application()

    def call():
        result = app(environ(ROUTES[route], token), lambda status, headers, exc_info=None: None)
        b"".join(result)
        result.close()

    for _ in range(50):
        call()
    start = time.process_time()
    for _ in range(n):
        call()
    plain = (time.process_time() - start) * 1000 / n
    profile = cProfile.Profile(time.process_time)  # CPU, not waiting
    profile.enable()
    for _ in range(n):
        call()
    profile.disable()
    print(f"{route}: {plain:.3f} ms CPU per request in-process (without profiling)")
    stats = pstats.Stats(profile).sort_stats("cumulative")
    stats.print_stats(45)
    stats.sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "me", int(sys.argv[2]) if len(sys.argv) > 2 else 500)
