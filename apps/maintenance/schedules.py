"""Default beat schedules: one per registered maintenance task that declares a crontab."""

from apps.core.periodic import Schedule


def _schedules():
    from .registry import all_tasks

    return [
        Schedule(name=f"maintenance: {t.name}", task="maintenance.run_task", crontab=t.crontab,
                 kwargs={"task": t.name}, description=t.description)
        for t in all_tasks() if t.crontab
    ]


def __getattr__(name):  # SCHEDULES is computed when read, after every app's maintenance module registered
    if name == "SCHEDULES":
        return _schedules()
    raise AttributeError(name)
