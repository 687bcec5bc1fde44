"""WinRM executor on pywinrm. pywinrm is synchronous, so each call runs on a bounded thread pool
owned by the executor (one per run, sized by the job's concurrency). Output is read with
`get_command_output_raw` in a loop, so it streams and a timeout or cancel can stop it between
receives (the command is then terminated with a WS-Man Signal).

Values a script refers to: PowerShell sets them from base64 in a prelude (`$env:OPS_1 = …`);
cmd gets them in the environment of a shell opened for that command, read with delayed
expansion (`cmd /v:on`, `!OPS_1!`), never with `%…%`, whose result cmd parses again."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from ..templating import powershell_prelude, quote_powershell
from .base import Connection, Emit, Executor, ExecutorError, TargetSpec

COPY_CHUNK = 1200  # bytes per PowerShell command (the encoded command line stays under 8 KiB)


def encode_powershell(script: str) -> str:
    return base64.b64encode(script.encode("utf-16-le")).decode("ascii")


def ps_literal(text: str) -> str:
    return quote_powershell(text)


class WinRMConnection(Connection):
    def __init__(self, executor: WinRMExecutor, protocol, shell_id: str):
        self.executor = executor
        self.protocol = protocol
        self.shell_id = shell_id

    def _run_blocking(self, command: str, args: list[str], emit: Emit, stop: threading.Event, deadline: float,
                      env: dict[str, str] | None = None) -> int:
        if not env:
            return self._receive(self.shell_id, command, args, emit, stop, deadline)
        shell_id = self.protocol.open_shell(env_vars=env)
        try:
            return self._receive(shell_id, command, args, emit, stop, deadline)
        finally:
            with contextlib.suppress(Exception):
                self.protocol.close_shell(shell_id)

    def _receive(self, shell_id: str, command: str, args: list[str], emit: Emit, stop: threading.Event, deadline: float) -> int:
        from winrm.exceptions import WinRMOperationTimeoutError

        command_id = self.protocol.run_command(shell_id, command, args)
        try:
            while True:
                if stop.is_set() or time.monotonic() > deadline:
                    raise TimeoutError("stopped")
                try:
                    out, err, code, done = self.protocol.get_command_output_raw(shell_id, command_id)
                except WinRMOperationTimeoutError:
                    continue
                if out:
                    emit("stdout", out.decode("utf-8", "replace"))
                if err:
                    emit("stderr", err.decode("utf-8", "replace"))
                if done:
                    return code
        finally:
            with contextlib.suppress(Exception):
                self.protocol.cleanup_command(shell_id, command_id)

    async def _call(self, command: str, args: list[str], emit: Emit, timeout: float, env: dict[str, str] | None = None) -> int:
        stop = threading.Event()
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self.executor.pool, self._run_blocking, command, args, emit, stop, time.monotonic() + timeout, env)
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except (TimeoutError, asyncio.CancelledError):
            stop.set()
            raise
        except ExecutorError:
            raise
        except Exception as exc:
            raise ExecutorError(f"WinRM command failed: {exc}") from None

    async def exec(self, command: str, *, shell: str, timeout: float, emit: Emit, env: dict[str, str] | None = None) -> int:
        if shell == "cmd":
            return await self._call("cmd", ["/v:on", "/c", command] if env else ["/c", command], emit, timeout, env)
        script = powershell_prelude(env or {}) + command
        return await self._call("powershell", ["-NoProfile", "-NonInteractive", "-EncodedCommand", encode_powershell(script)], emit, timeout)

    async def copy(self, content: bytes, path: str, *, mode: int, timeout: float) -> None:
        dest = ps_literal(path)
        tmp = ps_literal(path + ".opsportal.tmp")
        chunks = [content[i:i + COPY_CHUNK] for i in range(0, len(content), COPY_CHUNK)] or [b""]
        sink: list[str] = []
        deadline = time.monotonic() + timeout
        for index, chunk in enumerate(chunks):
            b64 = base64.b64encode(chunk).decode()
            mode_word = "Create" if index == 0 else "Append"
            script = (
                f"$ErrorActionPreference='Stop'; $b=[Convert]::FromBase64String('{b64}'); "
                f"$f=[IO.File]::Open({tmp},[IO.FileMode]::{mode_word}); try {{ $f.Write($b,0,$b.Length) }} finally {{ $f.Close() }}"
            )
            code = await self.exec(script, shell="powershell", timeout=max(1.0, deadline - time.monotonic()), emit=lambda s, t: sink.append(t))
            if code != 0:
                await self.exec(f"Remove-Item -Force -ErrorAction SilentlyContinue {tmp}", shell="powershell", timeout=30, emit=lambda s, t: None)
                raise ExecutorError(f"copy to {path} failed (exit {code}): {''.join(sink)[-500:]}")
        code = await self.exec(f"$ErrorActionPreference='Stop'; Move-Item -Force {tmp} {dest}", shell="powershell", timeout=max(1.0, deadline - time.monotonic()), emit=lambda s, t: sink.append(t))
        if code != 0:
            raise ExecutorError(f"copy to {path} failed (exit {code}): {''.join(sink)[-500:]}")

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(Exception):
            await loop.run_in_executor(self.executor.pool, self.protocol.close_shell, self.shell_id)


class WinRMExecutor(Executor):
    protocol = "winrm"

    def __init__(self, *, max_threads: int = 10):
        self.pool = ThreadPoolExecutor(max_workers=max(1, min(max_threads, 64)), thread_name_prefix="winrm")

    async def connect(self, target: TargetSpec, *, timeout: float) -> Connection:
        from winrm.protocol import Protocol

        endpoint = f"{target.winrm_scheme}://{target.hostname}:{target.port}/wsman"
        transport = {"winrm_basic": "basic", "winrm_kerberos": "kerberos"}.get(target.credential_kind, target.winrm_transport or "ntlm")

        def open_shell():
            protocol = Protocol(
                endpoint=endpoint, transport=transport, username=target.username, password=target.secret,
                server_cert_validation="validate" if target.verify_tls else "ignore",
                read_timeout_sec=max(int(timeout) + 10, 30), operation_timeout_sec=max(int(timeout), 20),
            )
            return protocol, protocol.open_shell()

        loop = asyncio.get_running_loop()
        try:
            protocol, shell_id = await asyncio.wait_for(loop.run_in_executor(self.pool, open_shell), timeout + 15)
        except Exception as exc:
            raise ExecutorError(f"{endpoint}: cannot open a WinRM shell: {exc or type(exc).__name__}") from None
        return WinRMConnection(self, protocol, shell_id)

    async def aclose(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
