"""A POST straight through a WSGI application (config.wsgi.application with its lean routes, or
Django's plain handler), as gunicorn would call it — for the tests that hold a lean route's
answers equal to the DRF view's (tests/alerts/test_ingest_fastpath.py, tests/tickets/test_lean_create.py)."""

from __future__ import annotations

import io
import json
import sys

from django.core.signals import request_finished, request_started
from django.db import close_old_connections


class Answer:
    def __init__(self, status: str, headers: list, body: bytes):
        self.status_code = int(status.split()[0])
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body

    def json(self):
        return json.loads(self.body)


def wsgi_post(application, path: str, body, *, auth: str | None = None, host: str = "testserver",
              content_type: str = "application/json", headers: dict | None = None) -> Answer:
    """POST `body` (bytes, or JSON-encoded) to `path`. Like Django's test client, the request
    signals must not close the test's connection (it holds the test transaction)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    environ = {
        "REQUEST_METHOD": "POST", "PATH_INFO": path, "SCRIPT_NAME": "", "QUERY_STRING": "", "SERVER_NAME": "testserver",
        "SERVER_PORT": "80", "HTTP_HOST": host, "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": content_type, "CONTENT_LENGTH": str(len(data)), "wsgi.input": io.BytesIO(data),
        "wsgi.errors": sys.stderr, "wsgi.url_scheme": "http", "wsgi.version": (1, 0), "wsgi.multithread": False,
        "wsgi.multiprocess": True, "wsgi.run_once": False, **(headers or {}),
    }
    if auth:
        environ["HTTP_AUTHORIZATION"] = auth
    started = {}

    def start_response(status, response_headers, exc_info=None):
        started.update(status=status, headers=response_headers)

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        result = application(environ, start_response)
        content = b"".join(result)
        result.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return Answer(started["status"], started["headers"], content)
