"""Rolling upgrade of an instance with 20 targets (all 127.0.0.1:<port> of our own sshd) in 25 %
batches (4 batches of 5) through the deployments path — operation_request → start (window opened,
batches planned) → job run per batch → job_run.succeeded event → advance (health gate with a real
HTTP endpoint linked to the instance, checked after every batch) → next batch → finish — against
the same job run directly through the jobs engine on the same 4 batches one after the other.

Celery runs eagerly (inline), so both paths are measured on one thread with no queueing delay;
the difference is what deployments adds per batch (rows, events, gate, window).

Prints one line: deployments_rolling: targets=20 batches=4 total_s=… direct_s=… per_batch_overhead_s=… ratio=…
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_targets import start_sshd
from common import line, median, setup_django

PREFIX = "bench-deploy"
HOSTS = 20
ROUNDS = 3


class Ok(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def main() -> None:
    setup_django()
    import logging

    for name in ("asyncssh", "celery"):
        logging.getLogger(name).setLevel(logging.WARNING)

    from apps.core.choices import OrgKind
    from apps.core.crypto import encrypt
    from apps.core.models import Event
    from apps.deployments.choices import InstanceStatus, OperationStatus, RunbookAction, Strategy
    from apps.deployments.models import Instance, Operation, Runbook
    from apps.deployments.services import operation_request, plan_batches
    from apps.maintenance.models import MaintenanceWindow
    from apps.monitoring.models import Endpoint
    from apps.targets import services as jobs
    from apps.targets.choices import OverlapPolicy, RunStatus
    from apps.targets.models import Credential, Job, JobRun, JobVersion, Target
    from apps.tenants.models import Organization

    root = Path(tempfile.mkdtemp(prefix="bench-deploy-"))
    proc, port = start_sshd(root)
    http = ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    tenant = Organization.objects.create(kind=OrgKind.TENANT, slug=f"{PREFIX}-{os.getpid()}", name="bench deployments")
    figures: dict = {}
    try:
        cred = Credential.objects.create(tenant=tenant, name="k", kind="ssh_key", username="root", secret=encrypt((root / "id_ed25519").read_text()))
        targets = Target.objects.bulk_create([Target(tenant=tenant, name=f"node{i:02d}", hostname="127.0.0.1", port=port, credential=cred) for i in range(HOSTS)])
        job = Job.objects.create(tenant=tenant, name="upgrade", overlap_policy=OverlapPolicy.PARALLEL)
        v = JobVersion.objects.create(job=job, number=1, steps=[{"type": "ssh.exec", "command": "echo installing {{ version }}"}], concurrency=25,
                                      parameters_schema={"type": "object", "properties": {"version": {"type": "string"}}})
        Job.objects.filter(pk=job.pk).update(current_version=v)
        job.refresh_from_db()
        instance = Instance.objects.create(tenant=tenant, name="shop", version="1.0", status=InstanceStatus.ACTIVE)
        instance.targets.set(targets)
        Runbook.objects.create(tenant=tenant, action=RunbookAction.UPGRADE, job=job, strategy=Strategy.ROLLING, batch_percent=25)
        Endpoint.objects.create(tenant=tenant, name="shop http", kind="http", host="127.0.0.1", port=http.server_address[1], path="/",
                                linked_type="deployments.instance", linked_id=instance.pk)
        batches = plan_batches([t.pk for t in sorted(targets, key=lambda t: t.name)], strategy=Strategy.ROLLING, batch_percent=25)
        by_pk = {t.pk: t for t in targets}
        ours, direct = [], []
        for i in range(ROUNDS):
            t0 = time.perf_counter()
            op = operation_request(actor=None, instance=instance, operation="upgrade", parameters={"to_version": f"2.{i}"})
            op.refresh_from_db()
            ours.append(time.perf_counter() - t0)
            assert op.status == OperationStatus.SUCCEEDED, (op.error, op.log)
            assert op.batches.count() == len(batches)
            t0 = time.perf_counter()
            for ids in batches:
                run = jobs.job_run_create(job, actor=None, params={"version": f"2.{i}"}, targets=[by_pk[x] for x in ids], groups=[])
                jobs.run_execute(run_id=run.pk)
                run.refresh_from_db()
                assert run.status == RunStatus.SUCCEEDED, run.error
            direct.append(time.perf_counter() - t0)
        total, base = median(ours), median(direct)
        figures = {"targets": HOSTS, "batches": len(batches), "total_s": total, "direct_s": base,
                   "per_batch_overhead_s": (total - base) / len(batches), "ratio": total / base, "rounds": ROUNDS}
    finally:
        http.shutdown()
        proc.terminate()
        proc.wait(5)
        shutil.rmtree(root, ignore_errors=True)
        ops = Operation.objects.filter(tenant=tenant)
        window_ids = list(ops.values_list("window_id", flat=True))
        for op in ops:
            op.batches.all().delete()
        ops.delete()
        MaintenanceWindow.objects.filter(pk__in=[w for w in window_ids if w]).delete()
        MaintenanceWindow.objects.filter(tenant=tenant).delete()
        Runbook.objects.filter(tenant=tenant).delete()
        Instance.objects.filter(tenant=tenant).delete()
        from apps.monitoring.models import CheckResult

        CheckResult.objects.filter(endpoint__tenant=tenant).delete()
        Endpoint.objects.filter(tenant=tenant).delete()
        Event.objects.filter(tenant=tenant).delete()
        for run in JobRun.objects.filter(tenant=tenant):
            run.output.all().delete()
            run.steps.all().delete()
        JobRun.objects.filter(tenant=tenant).delete()
        Job.objects.filter(tenant=tenant).update(current_version=None)
        JobVersion.objects.filter(job__tenant=tenant).delete()
        Job.objects.filter(tenant=tenant).delete()
        Target.objects.filter(tenant=tenant).delete()
        Credential.objects.filter(tenant=tenant).delete()
        tenant.delete()
    line("deployments_rolling", **figures)


if __name__ == "__main__":
    main()
