#!/usr/bin/env python
"""Run every benchmark (bench/bench_*.py), one line each (a line per case for scripts with several:
CASES). `python bench/run.py outbox tickets` runs only those whose names contain one of the words."""

import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# scripts with more than one case: each case's environment, a run (and a line) each
CASES = {"bench_alerts": [{}, {"ALERTS_BENCH_CASE": "resend"}]}  # resend: ~3 min (9 rounds 15 s apart)


def main(argv: list[str]) -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    if argv:
        scripts = [s for s in scripts if any(word in s.stem for word in argv)]
    failed = 0
    for script in scripts:
        for case in CASES.get(script.stem, [{}]):
            start = time.monotonic()
            proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env={**os.environ, **case})
            lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
            if proc.returncode != 0 or not lines:
                failed += 1
                label = script.stem + "".join(f" {k}={v}" for k, v in case.items())
                print(f"{label}: FAILED rc={proc.returncode} {proc.stderr.strip().splitlines()[-1:] if proc.stderr else ''}")
            else:
                print(f"{lines[-1]}  ({time.monotonic() - start:.0f}s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
