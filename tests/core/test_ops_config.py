"""Configuration: every variable may come from a file named by NAME_FILE (Docker/K8s secrets)."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PRINT = (
    "import json;from django.conf import settings as s;"
    "print(json.dumps({'db': s.DATABASES['default']['NAME'], 'host': s.DATABASES['default']['HOST'],"
    "'redis': s.REDIS_URL, 'email': s.EMAIL_HOST, 'email_user': s.EMAIL_HOST_USER, 'level': s.LOG_LEVEL}))"
)


def _settings(tmp_path, **env):
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "EMAIL_URL", "LOG_LEVEL")}
    base.update(PORTAL_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="config.settings", **env)
    return subprocess.run(
        [sys.executable, "-c", "import django;django.setup();" + PRINT], cwd=ROOT, capture_output=True, text=True, env=base
    )


def test_file_variants_are_read_for_urls_and_plain_values(tmp_path):
    files = {
        "DATABASE_URL": "postgres://u:p@db.example:5432/fromfile\n",  # secret files usually end in a newline
        "REDIS_URL": "redis://cache.example:6379/3\n",
        "EMAIL_URL": "smtp://mailer:pw@smtp.example:587\n",
        "LOG_LEVEL": "WARNING\n",
    }
    env = {}
    for name, value in files.items():
        (tmp_path / name).write_text(value)
        env[f"{name}_FILE"] = str(tmp_path / name)
    out = _settings(tmp_path, **env)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got == {"db": "fromfile", "host": "db.example", "redis": "redis://cache.example:6379/3",
                   "email": "smtp.example", "email_user": "mailer", "level": "WARNING"}


def test_unreadable_file_fails_at_startup_naming_the_variable(tmp_path):
    out = _settings(tmp_path, DATABASE_URL_FILE=str(tmp_path / "missing"))
    assert out.returncode != 0
    assert "DATABASE_URL_FILE" in out.stderr


# Declared but reached by name, not by an import: INSTALLED_APPS/middleware strings, commands, kombu's needs.
USED_WITHOUT_IMPORT = {"django-axes", "django-prometheus", "django-storages", "drf-spectacular-sidecar", "gunicorn", "honcho", "packaging", "whitenoise"}


def _third_party_imports():
    import ast
    import re
    from importlib.metadata import packages_distributions

    dists = packages_distributions()
    used = {}
    for root in ("apps", "config"):
        for path in (ROOT / root).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in ("apps", "config"):
                        used[top] = {re.sub(r"[-_.]+", "-", d).lower() for d in dists.get(top, [])}
    return used


def _declared(text):
    import re

    names = set()
    for line in text.splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            names.add(re.sub(r"[-_.]+", "-", re.split(r"[=<>\[;]", line)[0]).lower())
    return names


def test_runtime_requirements_are_exactly_what_is_imported():
    declared = _declared((ROOT / "requirements/base.txt").read_text())
    used = _third_party_imports()
    undeclared = sorted(m for m, d in used.items() if not d & declared)
    imported = set().union(*used.values())
    unused = sorted(declared - imported - USED_WITHOUT_IMPORT)
    assert not undeclared, f"imported by apps/ or config/ but not in requirements/base.txt: {undeclared}"
    assert not unused, f"pinned in requirements/base.txt but never imported: {unused}"
