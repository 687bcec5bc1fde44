"""Services of the targets app: every write and business rule (definitions, runs, schedules)."""

from .definitions import (  # noqa: F401
    credential_create,
    credential_delete,
    credential_rotate,
    credential_share,
    credential_unshare,
    credential_update,
    group_create,
    group_delete,
    group_update,
    job_create,
    job_delete,
    job_update,
    target_create,
    target_delete,
    target_test_connection,
    target_update,
)
from .runs import (  # noqa: F401
    executor_status,
    failed_task_record,
    failed_task_retry,
    job_run_create,
    run_cancel,
    run_execute,
    run_retry_failed,
    runs_reap,
)
from .schedules import (  # noqa: F401
    schedule_create,
    schedule_delete,
    schedule_fire,
    schedule_update,
    schedules_check_missed,
    schedules_fire_due,
)
