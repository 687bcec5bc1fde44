"""Fan-out of one `ssh.exec hostname` job to H targets (all 127.0.0.1:<port> of our own sshd),
through the real path: job_run_create (rows for every target × step) → run_execute (asyncssh,
concurrency 50, batched output/step writes, heartbeat, events) → final status.

Compared in the same run with the raw asyncssh reference (../shared/bench/peers/asyncssh_fanout.py,
same sshd, same concurrency); ansible-core figures are read from ../shared/bench/peers/RESULTS.md
section 2 (the ansible peer takes minutes per run, over this benchmark's budget):
H=50 quiet machine: command 36.80 s, raw 9.70 s; H=200 (contended machine): command 228.53 s, raw 51.97 s.

Prints one line: targets_fanout: hosts50_s=… runs_per_s=… ratio_vs_asyncssh=… x_vs_ansible_command=… …
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PEERS, line, median, setup_django

ANSIBLE = {50: {"command": 36.80, "raw": 9.70}, 200: {"command": 228.53, "raw": 51.97}}
PREFIX = "bench-targets"


def start_sshd(root: Path):
    """The tests' sshd (tests/targets/sshd.py); the client key is also written as id_ed25519."""
    from tests.targets.sshd import SSHServer

    server = SSHServer(root)
    shutil.copy(root / "client_key", root / "id_ed25519")
    os.chmod(root / "id_ed25519", 0o600)
    return server.proc, server.port


def asyncssh_reference(hosts: int, port: int, key: Path) -> float:
    out = subprocess.run([sys.executable, str(PEERS / "asyncssh_fanout.py"), "--hosts", str(hosts), "--conc", "50", "--port", str(port), "--key", str(key)],
                         capture_output=True, text=True, timeout=300, check=True).stdout
    return float(out.split("seconds=")[1].split()[0])


def main() -> None:
    setup_django()
    import logging

    for name in ("asyncssh", "celery"):
        logging.getLogger(name).setLevel(logging.WARNING)
    from django.db import transaction

    from apps.core.choices import OrgKind
    from apps.core.crypto import encrypt
    from apps.core.models import Event
    from apps.targets import services
    from apps.targets.choices import RunStatus
    from apps.targets.models import Credential, Job, JobRun, JobVersion, Target
    from apps.tenants.models import Organization

    root = Path(tempfile.mkdtemp(prefix="bench-targets-"))
    proc, port = start_sshd(root)
    tenant = Organization.objects.create(kind=OrgKind.TENANT, slug=f"{PREFIX}-{os.getpid()}", name="bench targets")
    figures: dict = {}
    try:
        cred = Credential.objects.create(tenant=tenant, name="k", kind="ssh_key", username="root", secret=encrypt((root / "id_ed25519").read_text()))
        all_targets = Target.objects.bulk_create([Target(tenant=tenant, name=f"node{i:03d}", hostname="127.0.0.1", port=port, credential=cred) for i in range(200)])
        for hosts in (50, 200):
            job = Job.objects.create(tenant=tenant, name=f"fanout-{hosts}")
            v = JobVersion.objects.create(job=job, number=1, steps=[{"type": "ssh.exec", "command": "hostname"}], concurrency=50)
            Job.objects.filter(pk=job.pk).update(current_version=v)
            job.refresh_from_db()
            ours, refs = [], []
            for _ in range(2 if hosts == 50 else 1):
                t0 = time.perf_counter()
                with transaction.atomic():
                    run = services.job_run_create(job, actor=None, targets=all_targets[:hosts], version=v)
                    JobRun.objects.filter(pk=run.pk).update(status=RunStatus.QUEUED)
                # outside the atomic block the eager on_commit ran it already; run it here if not
                services.run_execute(run_id=run.pk)
                run.refresh_from_db()
                ours.append(time.perf_counter() - t0)
                assert run.status == RunStatus.SUCCEEDED, (run.error, run.counts)
                assert run.counts.get("succeeded") == hosts
                refs.append(asyncssh_reference(hosts, port, root / "id_ed25519"))
            s, r = median(ours), median(refs)
            figures[f"hosts{hosts}_s"] = s
            figures[f"hosts{hosts}_runs_per_s"] = hosts / s
            figures[f"hosts{hosts}_asyncssh_s"] = r
            figures[f"hosts{hosts}_ratio_vs_asyncssh"] = s / r
            figures[f"hosts{hosts}_x_vs_ansible_command"] = ANSIBLE[hosts]["command"] / s
            figures[f"hosts{hosts}_x_vs_ansible_raw"] = ANSIBLE[hosts]["raw"] / s
    finally:
        proc.terminate()
        proc.wait(5)
        shutil.rmtree(root, ignore_errors=True)
        runs = JobRun.objects.filter(tenant=tenant)
        Event.objects.filter(tenant=tenant).delete()
        for run in runs:
            run.output.all().delete()
            run.steps.all().delete()
        runs.delete()
        Job.objects.filter(tenant=tenant).update(current_version=None)
        JobVersion.objects.filter(job__tenant=tenant).delete()
        Job.objects.filter(tenant=tenant).delete()
        Target.objects.filter(tenant=tenant).delete()
        Credential.objects.filter(tenant=tenant).delete()
        tenant.delete()
    line("targets_fanout", **figures, ansible_source="RESULTS.md#2")


if __name__ == "__main__":
    main()
