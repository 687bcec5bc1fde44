"""Split one suite run into N shards that run at the same time (`tests/run_shards.py`).

Every shard collects the whole suite and keeps its own part: `TEST_SHARD=k/N` (k from 0). The
parts are balanced on the durations measured in an earlier run (`tests/durations.json`: seconds
per test module, and how many tests it had), longest first onto the least loaded shard. A module
stays whole (its module- and session-scoped fixtures are built once) unless it alone is a large
part of a shard; then its tests are dealt out one by one. A module missing from the file counts
one second per test. The split depends only on what was collected and on the file, so every
shard computes the same one and each test runs in exactly one shard.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path

DURATIONS = Path(__file__).resolve().parent / "durations.json"
UNKNOWN_SECONDS_PER_TEST = 1.0


def parse(spec: str) -> tuple[int, int]:
    """`"k/N"` → (k, N), with 0 ≤ k < N."""
    try:
        k, n = (int(part) for part in spec.split("/"))
    except ValueError:
        raise ValueError(f"TEST_SHARD must look like k/N (e.g. 0/2), not {spec!r}") from None
    if not 0 <= k < n:
        raise ValueError(f"TEST_SHARD {spec!r}: k must be between 0 and N-1")
    return k, n


def module_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def assign(nodeids: list[str], shards: int, durations: dict[str, dict]) -> list[int]:
    """The shard of every node id (same order), balancing the expected seconds."""
    by_module: dict[str, list[int]] = defaultdict(list)
    for i, nodeid in enumerate(nodeids):
        by_module[module_of(nodeid)].append(i)
    weight = {}
    for module in by_module:
        known = durations.get(module)
        per_test = known["seconds"] / max(known["tests"], 1) if known else UNKNOWN_SECONDS_PER_TEST
        weight[module] = per_test
    total = sum(weight[m] * len(items) for m, items in by_module.items())
    split_above = total / shards / 4  # a module bigger than a quarter of a shard is dealt out test by test
    units: list[tuple[float, str, list[int]]] = []
    for module, items in by_module.items():
        if weight[module] * len(items) > split_above:
            units.extend((weight[module], nodeids[i], [i]) for i in items)
        else:
            units.append((weight[module] * len(items), module, items))
    units.sort(key=lambda unit: (-unit[0], unit[1]))
    load = [0.0] * shards
    result = [0] * len(nodeids)
    for seconds, _name, items in units:
        target = min(range(shards), key=lambda s: (load[s], s))
        load[target] += seconds
        for i in items:
            result[i] = target
    return result


def load_durations() -> dict[str, dict]:
    try:
        return json.loads(DURATIONS.read_text())
    except FileNotFoundError:
        return {}


def select(items: list, config) -> None:
    """pytest hook body: keep this shard's items, deselect the rest."""
    spec = os.environ.get("TEST_SHARD")
    if not spec:
        return
    k, n = parse(spec)
    shard_of = assign([item.nodeid for item in items], n, load_durations())
    keep, drop = [], []
    for item, shard in zip(items, shard_of, strict=True):
        (keep if shard == k else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
