"""A URLconf for tests/core/test_ops_logging.py: a view that logs and enqueues a task that logs."""

import logging

from django.http import JsonResponse
from django.urls import path

from config.celery import app

logger = logging.getLogger("tests.ops.request")


@app.task(name="tests.ops.log_in_task")
def log_in_task():
    logging.getLogger("tests.ops.task").warning("inside the task")


def log_and_enqueue(request):
    logger.warning("inside the request")
    log_in_task.delay()
    return JsonResponse({"queued": True})


urlpatterns = [path("log-and-enqueue", log_and_enqueue)]
