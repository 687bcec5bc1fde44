"""Apps import only from layers below them (DESIGN.md, "Layers"); news travels up as events."""

import ast
from pathlib import Path

import pytest

APPS = Path(__file__).resolve().parent.parent / "apps"
LAYER = {
    "core": 1,
    "tenants": 2,
    # Both are layer 3 in DESIGN.md; notifications registers its purges with maintenance (as every
    # app does), so within the layer maintenance stands lower.
    "maintenance": 3,
    "notifications": 3.5,
    "tickets": 4,
    "targets": 4,
    "monitoring": 4,
    # on-call schedules: reads tenants, publishes to notifications; alerts (5) escalates to it (docs/oncall.md)
    "oncall": 4,
    "alerts": 5,
    "deployments": 5,
    "dashboard": 6,
}


def _imported_apps(path: Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if len(parts) >= 2 and parts[0] == "apps":
                yield parts[1], node.lineno


@pytest.mark.parametrize("app", sorted(p.name for p in APPS.iterdir() if p.is_dir() and (p / "apps.py").exists()))
def test_app_imports_only_lower_layers(app):
    assert app in LAYER, f"apps/{app} has no layer in DESIGN.md; add it to LAYER here and to the design"
    wrong = []
    for path in (APPS / app).rglob("*.py"):
        if "migrations" in path.parts:
            continue
        for other, line in _imported_apps(path):
            if other != app and LAYER.get(other, 99) >= LAYER[app]:
                wrong.append(f"{path.relative_to(APPS.parent)}:{line} imports apps.{other}")
    assert not wrong, "upward or sideways imports:\n" + "\n".join(wrong)
