"""The incident loop's latency: from an Alertmanager webhook (one firing alert) to the incident
ticket being opened and the runbook run (`ssh.exec` on our own loopback sshd) finished, over N
incidents; p50/p95 of both. Celery runs eagerly in this process (every hop — event dispatch,
handlers, the job run — happens inline after each commit), so the figures are the work of the
loop itself without broker/worker queueing. No peer does this loop (Rundeck webhooks, Grafana
OnCall outgoing webhooks and Zammad's monitoring integration each cover one link), so no ratio.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench_targets import start_sshd
from common import line, percentile, setup_django

PREFIX = "bench-incident"
INCIDENTS = int(os.environ.get("BENCH_INCIDENTS", "50"))


def main() -> None:
    setup_django()
    import logging

    for name in ("asyncssh", "celery", "apps"):
        logging.getLogger(name).setLevel(logging.WARNING)
    from rest_framework.test import APIClient

    from apps.alerts.models import Alert, AlertRule, IngestToken, RunbookRequest
    from apps.alerts.services import ingest_token_create
    from apps.core.choices import OrgKind
    from apps.core.crypto import encrypt
    from apps.core.models import Event
    from apps.targets.models import Credential, Job, JobRun, JobVersion, Target
    from apps.tenants.models import Organization
    from apps.tickets.models import Ticket

    root = Path(tempfile.mkdtemp(prefix="bench-incident-"))
    proc, port = start_sshd(root)
    tenant = Organization.objects.create(kind=OrgKind.TENANT, slug=f"{PREFIX}-{os.getpid()}", name="bench incident")
    to_ticket, to_run, failures = [], [], 0
    try:
        cred = Credential.objects.create(tenant=tenant, name="k", kind="ssh_key", username="root", secret=encrypt((root / "id_ed25519").read_text()))
        Target.objects.bulk_create([Target(tenant=tenant, name=f"web-{i}", hostname="127.0.0.1", port=port, credential=cred) for i in range(INCIDENTS)])
        job = Job.objects.create(tenant=tenant, name="restart", overlap_policy="parallel")
        v = JobVersion.objects.create(job=job, number=1, steps=[{"type": "ssh.exec", "command": "echo restart {{ service }} on {{ target.name }}"}],
                                      parameters_schema={"type": "object", "properties": {"service": {"type": "string"}}})
        Job.objects.filter(pk=job.pk).update(current_version=v)
        AlertRule.objects.create(tenant=tenant, name="incidents", rule_type="alert", conditions={}, actions=[
            {"type": "open_ticket", "dedup_labels": ["instance"]},
            {"type": "run_job", "job_id": job.pk, "parameter_labels": {"service": "service"}, "target_label": "instance"},
        ])
        token = ingest_token_create(actor=None, tenant=tenant, name="am")[1]
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        for i in range(INCIDENTS):
            labels = {"alertname": "ServiceDown", "instance": f"web-{i}", "service": "web", "severity": "critical"}
            body = {"version": "4", "status": "firing", "receiver": "portal", "groupLabels": {}, "commonLabels": labels,
                    "alerts": [{"status": "firing", "labels": labels, "annotations": {"summary": f"web-{i} down"},
                                "startsAt": datetime.now(UTC).isoformat().replace("+00:00", "Z"), "endsAt": "0001-01-01T00:00:00Z"}]}
            t0 = time.time()
            resp = client.post("/api/v1/alerts/ingest/alertmanager", body, format="json")
            assert resp.status_code == 200, resp.content
            alert = Alert.objects.get(tenant=tenant, labels__instance=f"web-{i}")
            req = RunbookRequest.objects.select_related("run", "ticket").filter(alert=alert).first()
            if req is None or req.run is None or req.run.finished_at is None or req.status != "succeeded":
                failures += 1
                continue
            to_ticket.append(req.ticket.created_at.timestamp() - t0)
            to_run.append(req.run.finished_at.timestamp() - t0)
    finally:
        proc.terminate()
        proc.wait(5)
        shutil.rmtree(root, ignore_errors=True)
        RunbookRequest.objects.filter(tenant=tenant).delete()
        Alert.objects.filter(tenant=tenant).delete()
        Ticket.objects.filter(tenant=tenant).delete()
        for run in JobRun.objects.filter(tenant=tenant):
            run.output.all().delete()
            run.steps.all().delete()
        JobRun.objects.filter(tenant=tenant).delete()
        Job.objects.filter(tenant=tenant).update(current_version=None)
        JobVersion.objects.filter(job__tenant=tenant).delete()
        Job.objects.filter(tenant=tenant).delete()
        Target.objects.filter(tenant=tenant).delete()
        Credential.objects.filter(tenant=tenant).delete()
        AlertRule.objects.filter(tenant=tenant).delete()
        IngestToken.objects.filter(tenant=tenant).delete()
        Event.objects.filter(tenant=tenant).delete()
        from django.apps import apps as registry

        for model in registry.get_models():  # e.g. notifications created for the tenant's staff
            if model._meta.app_label in ("notifications",) and any(f.name == "tenant" for f in model._meta.fields):
                model.objects.filter(tenant=tenant).delete()
        tenant.delete()
    line("incident_loop", incidents=INCIDENTS, ok=len(to_run), failed=failures,
         ticket_p50_ms=percentile(to_ticket, 50) * 1000, ticket_p95_ms=percentile(to_ticket, 95) * 1000,
         run_done_p50_ms=percentile(to_run, 50) * 1000, run_done_p95_ms=percentile(to_run, 95) * 1000, mode="eager_inline")


if __name__ == "__main__":
    main()
