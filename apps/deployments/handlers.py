"""Event handlers: job runs that end move their deployment operation on (or report a
customer-service provisioning); provisioning requests from the tenants app start the runbook."""

from __future__ import annotations

from django.db import transaction

from apps.core.events import subscribe


@subscribe("job_run.succeeded")
@subscribe("job_run.failed")
@subscribe("job_run.cancelled")
def advance_operation_on_job_run(event) -> None:
    """The job run of a batch ended: advance its operation in a task (the health gate does network
    checks, which do not belong inside the event's transaction)."""
    from .models import OperationBatch
    from .services.rollout import enqueue_advance

    run_id = (event.payload or {}).get("id")
    for op_id in set(OperationBatch.objects.filter(job_run_id=run_id).values_list("operation_id", flat=True)):
        transaction.on_commit(lambda op_id=op_id: enqueue_advance(op_id))


@subscribe("job_run.succeeded")
@subscribe("job_run.failed")
@subscribe("job_run.cancelled")
def report_provisioning_on_job_run(event) -> None:
    from .services import provisioning_finish

    provisioning_finish(job_run_id=(event.payload or {}).get("id"))


@subscribe("customer_service.provision_requested")
def provision_customer_service(event) -> None:
    from .services import provisioning_start

    provisioning_start(event=event)
