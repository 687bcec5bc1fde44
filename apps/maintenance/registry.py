"""The registry of maintenance tasks that apps contribute.

Each app that owns data to purge writes `<app>/maintenance.py`:

    from apps.maintenance.registry import register

    @register("purge_check_results", description="...", crontab="15 3 * * *")
    def purge_check_results(ctx):       # ctx: TaskContext (dry_run, batch_size, progress, params)
        ...
        return {"monitoring_checkresult": removed}   # rows (that would be) removed per table

A task may also return a `TaskOutcome` to report bytes freed and details. Modules are found
by `autodiscover()` through the installed app configs, so apps/maintenance never imports a
domain app by name.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class TaskContext:
    """What a running task receives."""

    dry_run: bool = False
    batch_size: int = 5000
    params: dict = field(default_factory=dict)
    progress: Callable[[int, int | None], None] = lambda done, total: None


@dataclass
class TaskOutcome:
    rows_removed: dict[str, int] = field(default_factory=dict)
    bytes_freed: int = 0
    details: dict = field(default_factory=dict)


@dataclass(frozen=True)
class MaintenanceTask:
    name: str
    func: Callable[[TaskContext], dict | TaskOutcome]
    description: str = ""
    crontab: str | None = None  # default beat schedule ("m h dom mon dow", UTC); None = manual only
    app_label: str = ""


_tasks: dict[str, MaintenanceTask] = {}
_discovered = False


def register(name: str, func: Callable | None = None, *, description: str = "", crontab: str | None = None):
    """Register a maintenance task (usable as a decorator or a plain call)."""

    def decorator(f):
        _tasks[name] = MaintenanceTask(
            name=name, func=f, description=description or (f.__doc__ or "").strip().split("\n")[0],
            crontab=crontab, app_label=f.__module__.split(".")[1] if f.__module__.startswith("apps.") else "",
        )
        return f

    return decorator(func) if func is not None else decorator


def autodiscover() -> None:
    """Import every installed app's `maintenance` module (once)."""
    global _discovered
    if _discovered:
        return
    from django.apps import apps

    for config in apps.get_app_configs():
        if importlib.util.find_spec(f"{config.name}.maintenance") is not None:
            importlib.import_module(f"{config.name}.maintenance")
    _discovered = True


def get(name: str) -> MaintenanceTask | None:
    autodiscover()
    return _tasks.get(name)


def all_tasks() -> list[MaintenanceTask]:
    autodiscover()
    return sorted(_tasks.values(), key=lambda t: t.name)
