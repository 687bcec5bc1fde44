"""Executors: one interface (`base.Executor`) per protocol — `ssh`, `winrm`, `http`.

They take plain values (`TargetSpec`, never ORM rows) so they run inside the runner's asyncio
loop without touching the database."""

from .base import Connection, ExecutorError, TargetSpec, executor_for

__all__ = ["Connection", "ExecutorError", "TargetSpec", "executor_for"]
