"""The run engine: every target of a run concurrently (bounded by the job's concurrency), steps
in order per target, per-step timeouts, cancel and a run deadline, output streamed to the
database in batches.

Two threads, one rule: the asyncio loop (SSH sessions, WinRM and HTTP on thread pools) never
touches the ORM; it reports into a `Recorder`. The calling thread (the Celery task) flushes the
recorder every `TARGETS_FLUSH_SECONDS` — at once when a step ends, so a worker killed a moment
later leaves each finished step's outcome in the database — in one transaction (bulk insert of
output chunks, bulk update of steps, heartbeat, counts) and reads the cancel flag. So a run over
1,000 targets costs a handful of queries per second, not one per output line.

A dropped database connection does not fail the run: each write is retried on a new connection
for up to `TARGETS_DB_RETRY_SECONDS` (`with_db`), the batch kept until it is stored.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from .choices import OnFailure, Protocol, RunStatus, StepStatus, StepType
from .definition import DEFAULT_STEP_TIMEOUT, escape_for
from .executors import ExecutorError, TargetSpec, executor_for
from .executors import http as http_executor
from .models import JobRun, JobRunOutput, JobRunStep, Target
from .templating import TemplateError, UnsafeValue, render, render_script

log = logging.getLogger(__name__)
TRUNCATED = "\n[... output truncated: {cap} bytes stored, the rest was dropped ...]\n"
STEP_PROTOCOL = {
    StepType.SSH_EXEC: Protocol.SSH, StepType.SSH_COPY: Protocol.SSH,
    StepType.WINRM_EXEC: Protocol.WINRM, StepType.WINRM_COPY: Protocol.WINRM,
}
FINAL_FIELDS = ["status", "exit_code", "rendered", "stdout", "stderr", "error", "started_at", "finished_at"]
LIVE_FIELDS = ["status", "rendered", "started_at"]
DB_ERRORS = (OperationalError, InterfaceError)
OUTCOME_COALESCE_SECONDS = 0.05  # a finished step is stored within this (plus the write)


def with_db(fn, *, what: str):
    """fn() on the database; when the connection drops, reconnect and call it again (backoff
    0.1 s → 2 s) for up to TARGETS_DB_RETRY_SECONDS, then raise. fn must be idempotent (one
    transaction, or a read)."""
    deadline = time.monotonic() + settings.TARGETS_DB_RETRY_SECONDS
    delay = 0.1
    while True:
        try:
            return fn()
        except DB_ERRORS as exc:
            connection.close()  # the broken connection; the next query opens a new one
            if time.monotonic() + delay > deadline:
                raise
            log.warning("run engine: database error while %s (%r); reconnecting in %.1f s", what, exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


def failure_reason(exc: BaseException) -> str:
    """The one-line reason users see when the runner itself fails (the traceback is logged)."""
    if isinstance(exc, DB_ERRORS):
        return "The runner lost its database connection and could not record this run; details are in the worker log."
    return f"The runner failed ({type(exc).__name__}); details are in the worker log."


# -- recording ---------------------------------------------------------------------------------
@dataclass
class StepState:
    id: int
    status: str = StepStatus.PENDING
    exit_code: int | None = None
    rendered: str = ""
    error: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    out: list = field(default_factory=lambda: {"stdout": [], "stderr": []})
    size: dict = field(default_factory=lambda: {"stdout": 0, "stderr": 0})
    truncated: dict = field(default_factory=lambda: {"stdout": False, "stderr": False})


class Recorder:
    """Thread-safe sink for step state and output; drained by the flushing thread."""

    def __init__(self, step_ids: list[int], cap: int):
        self.cap = cap
        self.lock = threading.Lock()
        self.states = {sid: StepState(sid) for sid in step_ids}
        self.counts = Counter({StepStatus.PENDING: len(step_ids)})
        self.dirty: set[int] = set()
        self.chunks: list[tuple[int, str, str, datetime]] = []
        self.step_ended = threading.Event()  # wakes the flushing thread: store an outcome at once

    def update(self, step_id: int, **fields) -> None:
        with self.lock:
            state = self.states[step_id]
            if "status" in fields and fields["status"] != state.status:
                self.counts[state.status] -= 1
                self.counts[fields["status"]] += 1
            for key, value in fields.items():
                setattr(state, key, value)
            self.dirty.add(step_id)
        if fields.get("finished_at") is not None:
            self.step_ended.set()

    def emit(self, step_id: int, stream: str, text: str) -> None:
        if not text:
            return
        with self.lock:
            state = self.states[step_id]
            if state.truncated[stream]:
                return
            room = self.cap - state.size[stream]
            if len(text.encode("utf-8", "replace")) > room:
                text = text.encode("utf-8", "replace")[:max(room, 0)].decode("utf-8", "ignore") + TRUNCATED.format(cap=self.cap)
                state.truncated[stream] = True
            state.size[stream] += len(text.encode("utf-8", "replace"))
            state.out[stream].append(text)
            now = timezone.now()
            last = self.chunks[-1] if self.chunks else None
            if last and last[0] == step_id and last[1] == stream:
                self.chunks[-1] = (step_id, stream, last[2] + text, last[3])  # coalesce within a batch
            else:
                self.chunks.append((step_id, stream, text, now))

    def pending_ids(self) -> list[int]:
        with self.lock:
            return [s.id for s in self.states.values() if s.status in (StepStatus.PENDING, StepStatus.RUNNING)]

    def drain(self):
        with self.lock:
            chunks, self.chunks = self.chunks, []
            rows = []
            for sid in self.dirty:
                s = self.states[sid]
                final = s.finished_at is not None
                rows.append((final, JobRunStep(
                    id=sid, status=s.status, exit_code=s.exit_code, rendered=s.rendered, error=s.error,
                    started_at=s.started_at, finished_at=s.finished_at,
                    stdout="".join(s.out["stdout"]) if final else "", stderr="".join(s.out["stderr"]) if final else "",
                )))
            self.dirty = set()
            counts = {k: v for k, v in self.counts.items() if v}
        return rows, chunks, counts


def flush(run_id: int, recorder: Recorder) -> dict:
    """Store what the recorder gathered; the batch is written again on a new connection if the
    old one dropped (the transaction rolled back, so nothing is written twice)."""
    rows, chunks, counts = recorder.drain()
    with_db(lambda: _write(run_id, rows, chunks, counts), what=f"recording run {run_id}")
    return counts


def _write(run_id: int, rows, chunks, counts) -> None:
    with transaction.atomic():
        if chunks:
            JobRunOutput.objects.bulk_create(
                [JobRunOutput(run_id=run_id, step_id=sid, stream=stream, data=text, created_at=at) for sid, stream, text, at in chunks],
                batch_size=1000,
            )
        final = [r for is_final, r in rows if is_final]
        live = [r for is_final, r in rows if not is_final]
        if final:
            JobRunStep.objects.bulk_update(final, FINAL_FIELDS, batch_size=500)
        if live:
            JobRunStep.objects.bulk_update(live, LIVE_FIELDS, batch_size=500)
        JobRun.objects.filter(pk=run_id).update(heartbeat_at=timezone.now(), counts=counts)


# -- planning ----------------------------------------------------------------------------------
@dataclass
class PlanTarget:
    spec: TargetSpec
    steps: list[tuple[int, int]]  # (step row id, step index)


@dataclass
class Plan:
    run_id: int
    steps: list[dict]
    params: dict
    concurrency: int
    on_failure: str
    check_mode: bool
    deadline_seconds: float
    targets: list[PlanTarget]


def target_spec(target: Target) -> TargetSpec:
    cred = target.credential
    return TargetSpec(
        id=target.pk, name=target.name, hostname=target.hostname, port=target.effective_port, protocol=target.protocol,
        os=target.os, credential_kind=cred.kind if cred else "", username=cred.username if cred else "",
        secret=cred.get_secret() if cred else "", passphrase=cred.get_passphrase() if cred else "",
        winrm_transport=target.winrm_transport, winrm_scheme=target.winrm_scheme, verify_tls=target.verify_tls,
    )


def build_plan(run: JobRun) -> Plan:
    version = run.version
    rows = list(JobRunStep.objects.filter(run=run).order_by("target_id", "step_index").values_list("id", "target_id", "step_index"))
    target_ids = sorted({t for _, t, _ in rows if t is not None})
    targets = {t.pk: t for t in Target.objects.filter(pk__in=target_ids).select_related("credential")}
    by_target: dict[int, list[tuple[int, int]]] = {}
    orphans = []
    for sid, tid, index in rows:
        if tid in targets:
            by_target.setdefault(tid, []).append((sid, index))
        else:
            orphans.append(sid)
    if orphans:  # the target was deleted after the run was queued
        JobRunStep.objects.filter(pk__in=orphans).update(status=StepStatus.FAILED, error="The target no longer exists.", finished_at=timezone.now())
    elapsed = (timezone.now() - (run.started_at or timezone.now())).total_seconds()
    return Plan(
        run_id=run.pk, steps=version.steps, params=run.params, concurrency=version.concurrency, on_failure=version.on_failure,
        check_mode=run.check_mode, deadline_seconds=max(1.0, version.run_timeout_seconds - elapsed),
        targets=[PlanTarget(target_spec(targets[tid]), steps) for tid, steps in by_target.items()],
    )


# -- execution ---------------------------------------------------------------------------------
class Stopped(Exception):
    """The run was cancelled or hit its deadline while a step was waiting."""


def render_step(step: dict, context: dict) -> tuple[dict, str]:
    out = dict(step)
    for name in ("content", "path", "url", "body"):
        if isinstance(step.get(name), str):
            out[name] = render(step[name], context, escape=escape_for(step, name))
    if step.get("headers"):
        out["headers"] = {k: render(v, context, escape="header") for k, v in step["headers"].items()}
    kind = step["type"]
    if kind in (StepType.SSH_EXEC, StepType.WINRM_EXEC):  # values travel as data in out["env"]
        name = "command" if kind == StepType.SSH_EXEC else "script"
        script = render_script(step[name], context, shell=escape_for(step, name))
        out[name], out["env"], shown = script.text, script.env, script.shown(escape_for(step, name))
    elif kind in (StepType.SSH_COPY, StepType.WINRM_COPY):
        shown = f"copy {len(out['content'].encode())} bytes to {out['path']}"
    else:
        shown = f"{out.get('method', 'GET')} {out['url']}"
    return out, shown


class Orchestrator:
    def __init__(self, plan: Plan, recorder: Recorder, *, connect_timeout: float):
        self.plan = plan
        self.recorder = recorder
        self.connect_timeout = connect_timeout
        self.cancel_flag = threading.Event()
        self.done = threading.Event()
        self.stop_reason: str | None = None
        self.crash: str | None = None

    # called from the flushing thread
    def request_cancel(self) -> None:
        self.cancel_flag.set()

    def run(self) -> None:
        try:
            asyncio.run(self.main())
        except BaseException as exc:  # the flushing thread logs it and stores a short reason
            self.crash = f"{type(exc).__name__}: {exc}"[:300]
            log.error("run %s: the run engine crashed:\n%s", self.plan.run_id, traceback.format_exc())
        finally:
            self.done.set()
            self.recorder.step_ended.set()

    async def main(self) -> None:
        self.stop = asyncio.Event()
        self.sem = asyncio.Semaphore(self.plan.concurrency)
        self.executors: dict = {}
        watcher = asyncio.create_task(self._watch())
        try:
            await asyncio.gather(*(self.run_target(t) for t in self.plan.targets))
        finally:
            watcher.cancel()
            for ex in self.executors.values():
                await ex.aclose()

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.plan.deadline_seconds
        while not self.stop.is_set():
            if self.cancel_flag.is_set():
                self.stop_reason = "cancel"
                self.stop.set()
            elif loop.time() >= deadline:
                self.stop_reason = "timeout"
                self.stop.set()
            await asyncio.sleep(0.1)

    async def race(self, coro):
        task = asyncio.ensure_future(coro)
        stopper = asyncio.ensure_future(self.stop.wait())
        done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            stopper.cancel()
            return task.result()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        raise Stopped()

    def _stopped_status(self):
        if self.stop_reason == "timeout":
            return StepStatus.TIMED_OUT, "The run exceeded its timeout."
        return StepStatus.CANCELLED, "The run was cancelled."

    def _finish(self, sid: int, status: str, error: str = "", exit_code: int | None = None, **extra) -> None:
        self.recorder.update(sid, status=status, error=error[:4000], exit_code=exit_code, finished_at=timezone.now(), **extra)

    async def run_target(self, pt: PlanTarget) -> None:
        async with self.sem:
            spec = pt.spec
            kinds = {self.plan.steps[i]["type"] for _, i in pt.steps}
            needs = spec.protocol if any(STEP_PROTOCOL.get(k) == spec.protocol for k in kinds) else None
            conn = None
            try:
                if self.stop.is_set():
                    for sid, _ in pt.steps:
                        self._finish(sid, *self._stopped_status())
                    return
                if needs:  # check mode connects too (it proves the target is reachable)
                    if needs not in self.executors:
                        self.executors[needs] = executor_for(needs, concurrency=self.plan.concurrency)
                    try:
                        conn = await self.race(self.executors[needs].connect(spec, timeout=self.connect_timeout))
                    except Stopped:
                        for sid, _ in pt.steps:
                            self._finish(sid, *self._stopped_status())
                        return
                    except Exception as exc:
                        message = str(exc) if isinstance(exc, ExecutorError) else f"connect failed: {exc!r}"
                        first, *rest = pt.steps
                        self._finish(first[0], StepStatus.FAILED, message, started_at=timezone.now())
                        for sid, _ in rest:
                            self._finish(sid, StepStatus.SKIPPED, "Not run: the target could not be reached.")
                        return
                failed = False
                for sid, index in pt.steps:
                    if self.stop.is_set():
                        self._finish(sid, *self._stopped_status())
                    elif failed and self.plan.on_failure == OnFailure.STOP_TARGET:
                        self._finish(sid, StepStatus.SKIPPED, "Not run: an earlier step failed on this target.")
                    else:
                        ok = await self.run_step(sid, self.plan.steps[index], spec, conn)
                        failed = failed or not ok
            finally:
                if conn is not None:
                    await conn.close()

    async def run_step(self, sid: int, step: dict, spec: TargetSpec, conn) -> bool:
        kind = step["type"]
        wanted = STEP_PROTOCOL.get(kind)
        if wanted and wanted != spec.protocol:
            self._finish(sid, StepStatus.SKIPPED, f"{kind} does not apply to a {spec.protocol} target.")
            return True
        context = {**self.plan.params, "target": spec.context(), "run": {"id": self.plan.run_id}}
        try:
            rendered, shown = render_step(step, context)
        except (TemplateError, UnsafeValue) as exc:
            self._finish(sid, StepStatus.FAILED, f"Parameter templating failed: {exc}", started_at=timezone.now())
            return False
        if self.plan.check_mode:
            now = timezone.now()
            self.recorder.update(sid, status=StepStatus.CHECKED, rendered=shown, started_at=now, finished_at=now)
            return True
        self.recorder.update(sid, status=StepStatus.RUNNING, rendered=shown, started_at=timezone.now())
        timeout = float(step.get("timeout", DEFAULT_STEP_TIMEOUT))

        def emit(stream: str, text: str) -> None:
            self.recorder.emit(sid, stream, text)

        try:
            if kind in (StepType.SSH_EXEC, StepType.WINRM_EXEC):
                shell = step.get("shell", "") if kind == StepType.SSH_EXEC else step.get("shell", "powershell")
                body = rendered["command"] if kind == StepType.SSH_EXEC else rendered["script"]
                code = await self.race(asyncio.wait_for(conn.exec(body, shell=shell, timeout=timeout, emit=emit, env=rendered["env"]), timeout))
                ok = code == 0
            elif kind in (StepType.SSH_COPY, StepType.WINRM_COPY):
                mode = int(step.get("mode", "0644"), 8)
                await self.race(asyncio.wait_for(conn.copy(rendered["content"].encode(), rendered["path"], mode=mode, timeout=timeout), timeout))
                code, ok = 0, True
            else:
                code, ok = await self.race(asyncio.wait_for(http_executor.request(rendered, spec, timeout=timeout, emit=emit), timeout))
        except Stopped:
            self._finish(sid, *self._stopped_status())
            return False
        except TimeoutError:
            self._finish(sid, StepStatus.TIMED_OUT, f"The step timed out after {timeout:g} s.")
            return False
        except ExecutorError as exc:
            self._finish(sid, StepStatus.FAILED, str(exc))
            return False
        except Exception as exc:
            log.exception("step %s failed", sid)
            self._finish(sid, StepStatus.FAILED, f"{type(exc).__name__}: {exc}")
            return False
        error = "" if ok else (f"Exit code {code}." if kind != StepType.HTTP_REQUEST else f"Unexpected HTTP status {code}.")
        self._finish(sid, StepStatus.SUCCEEDED if ok else StepStatus.FAILED, error, exit_code=code)
        return ok


@dataclass
class Outcome:
    status: str
    error: str
    counts: dict


def execute(run: JobRun) -> Outcome:
    """Run a claimed run to the end; returns its final status (the caller stores it)."""
    plan = with_db(lambda: build_plan(run), what=f"planning run {run.pk}")
    step_ids = [sid for pt in plan.targets for sid, _ in pt.steps]
    recorder = Recorder(step_ids, settings.TARGETS_OUTPUT_CAP_BYTES)
    orch = Orchestrator(plan, recorder, connect_timeout=settings.TARGETS_CONNECT_TIMEOUT)
    thread = threading.Thread(target=orch.run, name=f"run-{run.pk}", daemon=True)
    thread.start()
    interval = settings.TARGETS_FLUSH_SECONDS
    next_check = 0.0
    try:
        while not orch.done.is_set():
            if recorder.step_ended.wait(interval):
                orch.done.wait(OUTCOME_COALESCE_SECONDS)  # steps ending together: one write
            recorder.step_ended.clear()
            flush(run.pk, recorder)
            if time.monotonic() < next_check:
                continue
            next_check = time.monotonic() + interval
            # Cancelled on request, or ended by the reaper (this worker was taken for dead): stop.
            if not orch.cancel_flag.is_set() and with_db(
                lambda: JobRun.objects.filter(pk=run.pk).filter(Q(cancel_requested_at__isnull=False) | ~Q(status=RunStatus.RUNNING)).exists(),
                what=f"reading run {run.pk}",
            ):
                orch.request_cancel()
    except BaseException:
        orch.request_cancel()  # nothing may go on running on the hosts unrecorded
        thread.join(10)
        raise
    thread.join()
    if orch.crash:
        for sid in recorder.pending_ids():
            recorder.update(sid, status=StepStatus.FAILED, error="The run engine stopped.", finished_at=timezone.now())
    counts = flush(run.pk, recorder)
    if orch.crash:
        return Outcome(RunStatus.FAILED, f"The run engine crashed ({orch.crash}); details are in the worker log.", counts)
    if orch.stop_reason == "cancel":
        return Outcome(RunStatus.CANCELLED, "Cancelled on request.", counts)
    if orch.stop_reason == "timeout":
        return Outcome(RunStatus.TIMED_OUT, f"The run exceeded its timeout of {run.version.run_timeout_seconds} s.", counts)
    bad = counts.get(StepStatus.FAILED, 0) + counts.get(StepStatus.TIMED_OUT, 0)
    return Outcome(RunStatus.FAILED if bad else RunStatus.SUCCEEDED, "", counts)
