"""The Celery app: queues, routing, reliability settings.

Queues: `default` (events, sweepers), `jobs` (job runs on targets), `notifications` (deliveries),
`monitoring` (endpoint checks). Scale out by starting more workers on a queue
(`celery -A config worker -Q jobs`). Every task is acks_late and rejected back to the queue when
its worker dies, so a row whose task was lost is picked up again; sweepers cover a broker outage.
"""

import os

from celery import Celery, signals
from celery.signals import after_setup_logger, after_setup_task_logger
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("opsportal")
app.config_from_object("django.conf:settings", namespace="CELERY")

QUEUES = ("default", "jobs", "notifications", "monitoring")

app.conf.update(
    task_queues=[Queue(name) for name in QUEUES],
    task_default_queue="default",
    # Routing table: one place that says which queue a task runs on (tasks are named
    # "<app>.<what>").
    task_routes={
        "targets.*": {"queue": "jobs"},
        "deployments.*": {"queue": "jobs"},
        "notifications.*": {"queue": "notifications"},
        "monitoring.*": {"queue": "monitoring"},
        # the due-schedule dispatcher claims job and deployment schedules; their fires follow it
        "core.dispatch_due": {"queue": "jobs"},
    },
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    task_serializer="json",
    accept_content=["json"],
    # A broker that is down must not hang a web request for long: the row is already written
    # and a sweeper will enqueue it again.
    task_publish_retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5},
    broker_connection_retry_on_startup=True,
    broker_connection_timeout=3,
    beat_scheduler="django_celery_beat.schedulers:DatabaseScheduler",
    # One-offs created while beat idles fire within ~1 s instead of ~5 s (../shared/stack).
    beat_max_loop_interval=1,
    worker_send_task_events=True,
    # No `task-sent` event per enqueue: it is a second Redis message on every publish (the
    # alerts ingestion and ticket creation hot paths pay it per request) and nothing here reads
    # it; workers still send their task events for monitors (flower, `celery events`).
    task_send_sent_event=False,
)

app.autodiscover_tasks()


@after_setup_logger.connect
@after_setup_task_logger.connect
def _redact_worker_logs(logger=None, **kwargs):
    """The worker replaces the root logger's handlers: scrub secrets on its handlers too."""
    from apps.core.redaction import install

    install(logger)


@signals.setup_logging.connect(weak=False)
def _use_django_logging(**kwargs):
    """Workers and beat log through settings.LOGGING (JSON in production, request ids), not Celery's own format."""
    import logging.config

    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


# Task metrics (apps/core/metrics.py): runtime and failures per task and queue, counted in each
# pool process; with PROMETHEUS_MULTIPROC_DIR and CELERY_METRICS_PORT the worker serves the sum.
@signals.task_prerun.connect(weak=False)
def _metrics_task_started(**kwargs):
    from apps.core.metrics import task_started

    task_started(**kwargs)


@signals.task_postrun.connect(weak=False)
def _metrics_task_finished(**kwargs):
    from apps.core.metrics import task_finished

    task_finished(**kwargs)


@signals.task_failure.connect(weak=False)
def _metrics_task_failed(**kwargs):
    from apps.core.metrics import task_failed

    task_failed(**kwargs)


@signals.task_retry.connect(weak=False)
def _metrics_task_retried(**kwargs):
    from apps.core.metrics import task_retried

    task_retried(**kwargs)


@signals.worker_ready.connect(weak=False)
@signals.worker_process_init.connect(weak=False)
def _freeze_startup_heap(**kwargs):
    """What start-up built (Django, every app, ~200k objects) lives as long as the process: out of
    the collector's reach, a full collection scans only what tasks allocated (measured: 20 % of a
    delivery task's CPU went to collections rescanning it). worker_ready: the threads and solo
    pools run tasks in this process; worker_process_init: each prefork child after its fork."""
    import gc

    gc.freeze()


@signals.worker_init.connect(weak=False)
def _metrics_server(**kwargs):
    """CELERY_METRICS_PORT: serve this worker's task metrics (all pool processes) on that port."""
    port = os.environ.get("CELERY_METRICS_PORT")
    if port:
        from apps.core.metrics import serve_worker_metrics

        serve_worker_metrics(int(port))


@signals.worker_process_shutdown.connect(weak=False)
def _metrics_process_dead(pid=None, **kwargs):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid or os.getpid())
