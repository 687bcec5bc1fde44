"""Services of the deployments app: every write and business rule."""

from .definitions import (  # noqa: F401
    instance_create,
    instance_delete,
    instance_update,
    runbook_create,
    runbook_delete,
    runbook_update,
)
from .operations import (  # noqa: F401
    approvals_expire,
    operation_approve,
    operation_cancel,
    operation_reject,
    operation_request,
    validate_parameters,
)
from .provisioning import provisioning_finish, provisioning_start  # noqa: F401
from .rollout import health_gate, operation_advance, operation_start, operations_sweep, plan_batches  # noqa: F401
from .schedules import (  # noqa: F401
    schedule_delete,
    schedule_deployment,
    schedule_fire,
    schedule_pause,
    schedule_response,
    schedule_resume,
    schedule_retime,
    schedules_fire_due,
    schedules_fire_missed,
)
