"""The executor interface every protocol implements."""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field

Emit = Callable[[str, str], None]  # (stream, text)


class ExecutorError(Exception):
    """A failure to reach or use a target, with a message fit for the run's error column."""


@dataclass(frozen=True)
class TargetSpec:
    """What an executor needs to know about a target (secrets already decrypted, never logged)."""

    id: int
    name: str
    hostname: str
    port: int
    protocol: str
    os: str = "linux"
    credential_kind: str = ""
    username: str = ""
    secret: str = field(default="", repr=False)
    passphrase: str = field(default="", repr=False)
    winrm_transport: str = "ntlm"
    winrm_scheme: str = "https"
    verify_tls: bool = True

    def context(self) -> dict:
        return {"name": self.name, "hostname": self.hostname, "port": self.port, "os": self.os, "id": self.id}


class Connection(abc.ABC):
    """An open session to one target."""

    @abc.abstractmethod
    async def exec(self, command: str, *, shell: str, timeout: float, emit: Emit, env: dict[str, str] | None = None) -> int:
        """Run a command, stream output through `emit`, return the exit code. `env` holds the
        values the command refers to as variables (templating.Script): delivered as data."""

    @abc.abstractmethod
    async def copy(self, content: bytes, path: str, *, mode: int, timeout: float) -> None:
        """Write `content` to `path` on the target (atomically where the protocol allows)."""

    async def close(self) -> None:
        return None


class Executor(abc.ABC):
    protocol: str

    @abc.abstractmethod
    async def connect(self, target: TargetSpec, *, timeout: float) -> Connection:
        """Open a session or raise ExecutorError."""

    async def aclose(self) -> None:
        return None


def executor_for(protocol: str, *, concurrency: int = 10) -> Executor:
    if protocol == "ssh":
        from .ssh import SSHExecutor

        return SSHExecutor()
    if protocol == "winrm":
        from .winrm import WinRMExecutor

        return WinRMExecutor(max_threads=concurrency)
    raise ExecutorError(f"no executor for protocol {protocol!r}")
