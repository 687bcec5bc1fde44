"""Apps above tenants contribute demo rows from `<app>/demo.py` (a `seed(orgs, stdout)` function),
found by name so tenants imports none of them."""

import importlib
import importlib.util

from django.apps import apps


def run_app_seeders(*, orgs, stdout) -> None:
    for config in apps.get_app_configs():
        if not config.name.startswith("apps.") or config.name == "apps.tenants":
            continue
        name = f"{config.name}.demo"
        if importlib.util.find_spec(name) is None:
            continue
        module = importlib.import_module(name)
        seed = getattr(module, "seed", None)
        if seed is not None:
            seed(orgs=orgs, stdout=stdout)
