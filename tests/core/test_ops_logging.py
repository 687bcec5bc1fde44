"""Logs: JSON in production, a request id from X-Request-ID (or generated) on every line of the
request and of the Celery tasks it enqueues."""

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.core import ops_log_urls  # noqa: F401  (registers its task before the worker starts)

ROOT = Path(__file__).resolve().parents[2]


class Capture(logging.Handler):
    """A root handler formatted and filtered exactly as settings.LOGGING's console handler."""

    def __init__(self):
        from django.conf import settings

        super().__init__()
        conf = settings.LOGGING
        console = conf["handlers"]["console"]
        formatter = dict(conf["formatters"]["json"])
        factory = formatter.pop("()")
        module, _, name = factory.rpartition(".")
        self.setFormatter(getattr(__import__(module, fromlist=[name]), name)(**formatter))
        for filter_name in console["filters"]:
            spec = dict(conf["filters"][filter_name])
            module, _, name = spec.pop("()").rpartition(".")
            self.addFilter(getattr(__import__(module, fromlist=[name]), name)(**spec))
        self.lines = []

    def emit(self, record):
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def capture():
    handler = Capture()
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    root.setLevel(logging.INFO)
    yield handler
    root.removeHandler(handler)
    root.setLevel(previous)


def test_request_id_is_returned_and_reaches_the_task_log_line(celery_worker, client, settings, capture):
    from tests.conftest import wait_for

    settings.ROOT_URLCONF = "tests.core.ops_log_urls"
    r = client.get("/log-and-enqueue", HTTP_X_REQUEST_ID="req-abc.123")
    assert r.status_code == 200 and r["X-Request-ID"] == "req-abc.123"
    task_line = wait_for(lambda: next((line for line in capture.lines if line["message"] == "inside the task"), None))
    request_line = next(line for line in capture.lines if line["message"] == "inside the request")
    assert request_line["request_id"] == task_line["request_id"] == "req-abc.123"


@pytest.mark.parametrize("header", [None, "", "x" * 200, "bad id\nwith newline", "<script>"])
def test_missing_or_invalid_request_id_is_replaced_by_a_generated_one(db, client, header, capture):
    extra = {} if header is None else {"HTTP_X_REQUEST_ID": header}
    r = client.get("/health/status", **extra)  # any path: the id is set before the view runs
    rid = r["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", rid), rid
    assert rid != header


def test_lines_outside_a_request_carry_no_id(capture):
    logging.getLogger("tests.ops").warning("no request here")
    assert capture.lines[-1]["request_id"] is None


def _log_line(**env):
    base = {k: v for k, v in os.environ.items() if k not in ("LOG_FORMAT", "DJANGO_ENV")}
    base.update(DJANGO_SETTINGS_MODULE="config.settings", **env)
    code = ("import django,logging;django.setup();from apps.core.requestid import request_id;"
            "request_id.set('rid-1');logging.getLogger('x').warning('hello')")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=base)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stderr.strip().splitlines()[-1]


def test_json_format_when_asked_plain_in_development(tmp_path):
    line = json.loads(_log_line(LOG_FORMAT="json", PORTAL_VAR_DIR=str(tmp_path)))
    assert line["message"] == "hello" and line["request_id"] == "rid-1" and line["level"] == "WARNING" and line["logger"] == "x"
    plain = _log_line(DJANGO_ENV="development", PORTAL_VAR_DIR=str(tmp_path))
    assert "hello" in plain and "rid-1" in plain and not plain.startswith("{")
