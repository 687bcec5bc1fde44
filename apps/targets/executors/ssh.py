"""SSH executor on asyncssh: many targets concurrently in one event loop; no local temp files
(keys are imported from memory); copies land in a remote temp file with mode 0600 that is
renamed into place, and removed if anything fails.

A command's values arrive as an `export NAME='…'` line before it (sshd's AcceptEnv would refuse
the SSH env request); `shell` sh or bash runs the script with that interpreter, else the login shell."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shlex

import asyncssh

from ..templating import sh_prelude
from .base import Connection, Emit, Executor, ExecutorError, TargetSpec

READ_SIZE = 65536


class SSHConnection(Connection):
    def __init__(self, conn: asyncssh.SSHClientConnection):
        self.conn = conn

    async def exec(self, command: str, *, shell: str, timeout: float, emit: Emit, env: dict[str, str] | None = None) -> int:
        line = f"exec {shell} -c {shlex.quote(command)}" if shell in ("sh", "bash") else command
        proc = await self.conn.create_process(sh_prelude(env or {}) + line, encoding="utf-8", errors="replace")
        try:
            async def pump(reader, stream):
                while True:
                    data = await reader.read(READ_SIZE)
                    if not data:
                        return
                    emit(stream, data)

            async with asyncio.timeout(timeout):
                await asyncio.gather(pump(proc.stdout, "stdout"), pump(proc.stderr, "stderr"), proc.wait_closed())
            status = proc.exit_status
            if status is None:
                return 255 if proc.exit_signal else 0
            return status
        finally:
            if proc.exit_status is None:
                proc.close()  # timeout or cancel: closing the channel hangs up the remote command

    async def copy(self, content: bytes, path: str, *, mode: int, timeout: float) -> None:
        tmp = f"{path}.opsportal-{secrets.token_hex(6)}.tmp"

        async def do():
            async with self.conn.start_sftp_client() as sftp:
                try:
                    async with sftp.open(tmp, "wb", attrs=asyncssh.SFTPAttrs(permissions=0o600)) as fh:
                        await fh.write(content)
                    await sftp.chmod(tmp, mode)
                    await sftp.posix_rename(tmp, path)
                except BaseException:
                    with contextlib.suppress(Exception):
                        await sftp.remove(tmp)
                    raise

        try:
            await asyncio.wait_for(do(), timeout)
        except (asyncssh.SFTPError, OSError) as exc:
            raise ExecutorError(f"copy to {path} failed: {exc}") from exc

    async def close(self) -> None:
        self.conn.close()
        with contextlib.suppress(TimeoutError, Exception):
            await asyncio.wait_for(self.conn.wait_closed(), 5)


class SSHExecutor(Executor):
    protocol = "ssh"

    async def connect(self, target: TargetSpec, *, timeout: float) -> Connection:
        options: dict = {
            "username": target.username or None,
            "known_hosts": None,  # like AWX's default: host keys are not pinned (see docs/targets.md)
            "agent_path": None,
            "config": [],
            "connect_timeout": timeout,
            "login_timeout": timeout,
        }
        if target.credential_kind == "ssh_key":
            try:
                key = asyncssh.import_private_key(target.secret, target.passphrase or None)
            except (asyncssh.KeyImportError, ValueError) as exc:
                raise ExecutorError(f"the credential's private key cannot be read: {exc}") from None
            options.update(client_keys=[key], password=None, preferred_auth="publickey")
        else:
            options.update(client_keys=None, password=target.secret, preferred_auth="password,keyboard-interactive")
        try:
            conn = await asyncssh.connect(target.hostname, target.port, **options)
        except asyncssh.PermissionDenied:
            raise ExecutorError(f"{target.hostname}:{target.port}: authentication failed for {target.username!r}") from None
        except (OSError, asyncssh.Error, TimeoutError) as exc:
            raise ExecutorError(f"{target.hostname}:{target.port}: cannot connect: {exc or type(exc).__name__}") from None
        return SSHConnection(conn)

