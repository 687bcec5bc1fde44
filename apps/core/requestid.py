"""Request ids: taken from `X-Request-ID` (when it is a safe token) or generated, returned in the
response header, put on every log line of the request (`RequestIdFilter`) and carried to the
Celery tasks the request enqueues (a task header), whose log lines carry it too."""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

HEADER = "X-Request-ID"
TASK_HEADER = "request_id"
_VALID = re.compile(r"[A-Za-z0-9._:@+=/-]{1,128}")  # what proxies send (UUIDs, trace ids); no spaces or controls

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


def clean(value: str | None) -> str | None:
    return value if value and _VALID.fullmatch(value) else None


class RequestIdFilter(logging.Filter):
    """Adds `record.request_id` (None outside a request or task)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class JsonFormatter(_JsonFormatter):
    """One JSON object a line: time, level, logger, message, request_id, plus any `extra`."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("rename_fields", {"asctime": "time", "levelname": "level", "name": "logger"})
        super().__init__(*args, **kwargs)


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        rid = clean(request.headers.get(HEADER)) or uuid.uuid4().hex
        token = request_id.set(rid)
        try:
            response = self.get_response(request)
        finally:
            request_id.reset(token)
        response[HEADER] = rid
        return response


def connect_signals() -> None:
    """Publish: copy the current id into the task's headers. Run: set it for the task's lines."""
    from celery import signals

    @signals.before_task_publish.connect(weak=False)
    def _publish(headers=None, **kwargs):
        rid = request_id.get()
        if rid and headers is not None:
            headers.setdefault(TASK_HEADER, rid)

    @signals.task_prerun.connect(weak=False)
    def _prerun(task=None, **kwargs):
        if task is not None:  # eager tasks run inside the request and keep its id
            rid = clean(getattr(task.request, TASK_HEADER, None)) or request_id.get()
            task.request._request_id_token = request_id.set(rid)

    @signals.task_postrun.connect(weak=False)
    def _postrun(task=None, **kwargs):
        token = getattr(getattr(task, "request", None), "_request_id_token", None)
        if token is not None:
            try:
                request_id.reset(token)
            except ValueError:  # set in another context: leave nothing behind in this one
                request_id.set(None)
