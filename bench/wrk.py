"""wrk (Debian's package, /usr/bin/wrk) driven from the benchmarks: one run, its figures and the
CPU it used."""

from __future__ import annotations

import re
import resource
import subprocess
from dataclasses import dataclass

WRK = "/usr/bin/wrk"
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


@dataclass
class WrkResult:
    requests: int
    seconds: float
    rate: float
    p50_ms: float
    p99_ms: float
    errors: int  # socket errors, timeouts and non-2xx/3xx answers
    cpu_s: float  # wrk's own CPU
    output: str


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s|m)", text)
    return float(m.group(1)) * _UNITS[m.group(2)] if m else float("nan")


def run_wrk(url: str, *, seconds: float, connections: int = 32, threads: int = 2, headers: dict | None = None,
            script: str | None = None, script_args: list[str] | None = None, env: dict | None = None,
            timeout: int = 10) -> WrkResult:
    args = [WRK, f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency", "--timeout", f"{timeout}s"]
    for key, value in (headers or {}).items():
        args += ["-H", f"{key}: {value}"]
    if script:
        args += ["-s", script]
    args.append(url)
    if script_args:
        args += ["--", *script_args]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(args, capture_output=True, text=True, check=True, env=env).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", out)
    requests = int(done.group(1))
    elapsed = _ms(done.group(2) + done.group(3)) / 1000
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors += int(non2xx.group(1)) if non2xx else 0
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    return WrkResult(requests, elapsed, requests / elapsed if elapsed else 0.0, _ms(p50.group(1)) if p50 else float("nan"),
                     _ms(p99.group(1)) if p99 else float("nan"), errors, cpu, out)
