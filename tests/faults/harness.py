"""Throwaway services and portal processes for the fault-injection tests.

The shared PostgreSQL (5432) and Redis (6379) are used by everyone else's tests at the same time,
so nothing here ever stops or fills them: each test starts its OWN redis-server (another loopback
port, no persistence) and, where PostgreSQL itself is restarted, its OWN cluster (initdb in a
temp dir, trust auth, another port). The portal runs as real processes: gunicorn for the web,
`celery worker` for the worker, each with the environment a deployment would give it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.peers import program

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def pg_bin() -> Path:
    """PostgreSQL's server binaries (the newest /usr/lib/postgresql/<version>/bin); skips naming the
    package when they are missing."""
    return Path(program("initdb")).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


class RedisServer:
    """A private redis-server: `stop()` / `start()` on the same port simulate an outage."""

    def __init__(self, tmp: Path, port: int | None = None):
        self.port = port or free_port()
        self.tmp = tmp
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.proc = subprocess.Popen(
            [program("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.tmp), "--logfile", str(self.tmp / f"redis-{self.port}.log")],
        )
        wait_port(self.port)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()  # abrupt, as a crash; nothing to save (--save "")
            self.proc.wait(10)
        self.proc = None


class PostgresCluster:
    """A private PostgreSQL cluster (initdb, trust auth) that a test may restart at will."""

    def __init__(self, tmp: Path):
        self.dir = tmp / "pgdata"
        self.port = free_port()
        self.log = tmp / "pg.log"
        subprocess.run([pg_bin() / "initdb", "-D", self.dir, "-U", "postgres", "--auth=trust", "-E", "UTF8"],
                       check=True, capture_output=True, **_as_postgres_user())
        self.ctl("start", "-w", "-o", f"-p {self.port} -k {tmp} -c listen_addresses=127.0.0.1 -c fsync=off")

    def ctl(self, *args):
        subprocess.run([pg_bin() / "pg_ctl", "-D", self.dir, "-l", self.log, *args], check=True, capture_output=True, **_as_postgres_user())

    def url(self, db: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}"

    def restart(self) -> None:
        self.ctl("restart", "-w", "-m", "fast")

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.ctl("stop", "-m", "immediate")


def _as_postgres_user() -> dict:
    # initdb refuses to run as root: drop to the `postgres` system user when we are root.
    if os.geteuid() != 0:
        return {}
    import pwd

    pw = pwd.getpwnam("postgres")

    def demote():
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)

    return {"preexec_fn": demote}


def chown_to_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")


def portal_env(*, database_url: str, redis_url: str, **extra) -> dict:
    """The environment of a portal process (web or worker) pointing at the given services."""
    from django.conf import settings

    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_ALLOW_ASYNC_UNSAFE",)}
    env.update(
        DJANGO_ENV="test", DATABASE_URL=database_url, REDIS_URL=redis_url, CELERY_BROKER_URL=redis_url,
        CELERY_TASK_ALWAYS_EAGER="false", SECRET_KEY=settings.SECRET_KEY, AXES_ENABLED="false",
        API_THROTTLE_AUTH="100000/min", API_THROTTLE_USER="100000/min", API_THROTTLE_ANON="100000/min",
        PYTHONUNBUFFERED="1",
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


class Proc:
    """A portal subprocess in its own process group, its output in a log file."""

    def __init__(self, args: list[str], env: dict, log: Path):
        self.log = log
        self._fh = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=self._fh, stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def kill9(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(15)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self._fh.close()

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]


def start_worker(env: dict, log: Path, queues: str = "default,jobs,notifications,monitoring", name: str = "w1") -> Proc:
    return Proc([str(BIN / "celery"), "-A", "config", "worker", "-P", "threads", "-c", "4", "-Q", queues,
                 "-n", f"{name}@%h", "--without-gossip", "--without-mingle", "-l", "INFO"], env, log)


def worker_ready(worker: Proc, timeout: float = 30.0) -> None:
    """Wait for the worker's own "ready." line (it consumes from then on)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if " ready." in worker.output():
            return
        if worker.proc.poll() is not None:
            break
        time.sleep(0.2)
    raise RuntimeError(f"worker not ready within {timeout}s:\n{worker.output()}")


def start_web(env: dict, log: Path, workers: int = 2, threads: int = 4) -> tuple[Proc, str]:
    port = free_port()
    proc = Proc([str(BIN / "gunicorn"), "config.wsgi:application", "-b", f"127.0.0.1:{port}", "-w", str(workers),
                 "--threads", str(threads), "--timeout", "60", "--graceful-timeout", "5", "--preload"], env, log)
    wait_port(port, timeout=30)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while _answer(base + "/api/v1/users/me") != 401:  # the app is loaded and answering
        if time.monotonic() > deadline:
            raise RuntimeError("gunicorn did not answer /ping/:\n" + proc.output())
        time.sleep(0.2)
    return proc, base


class BrokerClient:
    """Sends tasks to the private broker. (Celery lets a CELERY_BROKER_URL in the environment win
    over any URL given to an app, so the connection is passed explicitly.)"""

    def __init__(self, redis_url: str):
        from celery import Celery
        from kombu import Queue

        from config.celery import QUEUES
        from config.celery import app as portal_app

        self.url = redis_url
        self.app = Celery("faults-client", set_as_current=False)
        self.app.conf.update(task_queues=[Queue(name) for name in QUEUES], task_routes=portal_app.conf.task_routes,
                             task_default_queue="default")

    def send_task(self, name: str, args=None, **options):
        from kombu import Connection

        with Connection(self.url, connect_timeout=2) as conn:
            return self.app.send_task(name, args=args or [], connection=conn, **options)


def _answer(url: str) -> int | None:
    try:
        return http("GET", url, timeout=5)[0]
    except OSError:
        return None


def broker_app(redis_url: str) -> BrokerClient:
    return BrokerClient(redis_url)


def http(method: str, url: str, *, token: str | None = None, body=None, timeout: float = 20.0) -> tuple[int, dict | str]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    request.add_header("Host", "localhost")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    try:
        return status, json.loads(raw or b"null")
    except ValueError:
        return status, raw.decode(errors="replace")[:500]


def jwt_for(user) -> str:
    from rest_framework_simplejwt.tokens import RefreshToken

    return str(RefreshToken.for_user(user).access_token)


class SmtpSink:
    """A real SMTP server (aiosmtpd) on loopback recording every message; `stop()`/`start()` on
    the same port simulate the mail relay being down. With a `spool` folder it queues each message
    to disk first, as a relay does, and answers a write that fails for lack of space the way
    Postfix does (452 4.3.1 Insufficient system storage), keeping no partial file."""

    def __init__(self, port: int | None = None, spool: Path | None = None):
        self.port = port or free_port()
        self.spool = spool
        self.messages: list = []
        self.refused: list[str] = []
        self.controller = None

    def _queue(self, envelope) -> str | None:
        path = self.spool / f"{time.time_ns()}.eml"
        try:
            with open(path, "xb") as fh:
                fh.write(envelope.original_content or envelope.content)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            if exc.errno != errno.ENOSPC:
                raise
            self.refused.append(str(exc))
            return "452 4.3.1 Insufficient system storage"
        return None

    def start(self) -> SmtpSink:
        from aiosmtpd.controller import Controller

        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                if sink.spool is not None:
                    refusal = sink._queue(envelope)
                    if refusal:
                        return refusal
                sink.messages.append(envelope)
                return "250 OK"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller:
            self.controller.stop()
            self.controller = None

    def subjects(self) -> list[tuple[str, str]]:
        from email import message_from_bytes
        from email.header import decode_header, make_header

        out = []
        for env in self.messages:
            subject = str(make_header(decode_header(message_from_bytes(env.content).get("Subject", ""))))
            out.extend((rcpt, subject) for rcpt in env.rcpt_tos)
        return out


class TinyDisk:
    """A real filesystem of a few hundred KiB (tmpfs, mounted for one test; the tests run as root,
    as CI does) standing in for a full data disk: `fill()` takes every free block with a filler
    file, `free()` gives them back. Writes on it fail with the kernel's own ENOSPC."""

    def __init__(self, path: Path, size: str = "512k"):
        self.path = path
        self.size = size
        self.filler = path / ".filler"

    def mount(self) -> TinyDisk:
        self.path.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.size},mode=0755", "tmpfs", str(self.path)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"cannot mount a tmpfs at {self.path} (the fault tests run as root): {done.stderr.strip()}")
        return self

    def unmount(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], capture_output=True)

    def free_bytes(self) -> int:
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize

    def fill(self) -> None:
        block = b"\0" * 4096
        with open(self.filler, "ab", buffering=0) as fh:
            try:
                while True:
                    fh.write(block)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
        assert self.free_bytes() < 4096, self.free_bytes()

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)


def retry_pending_delivery(delivery, *, rounds: int = 3, error=lambda text: True) -> list[float]:
    """Run a pending email delivery's next `rounds` attempts as the sweeper would (each at its
    due time), asserting it stays pending with an error `error(text)` accepts; returns the waits
    (seconds) it was given, which must grow."""
    from datetime import timedelta

    from django.utils import timezone

    from apps.notifications import services
    from apps.notifications.choices import DeliveryStatus

    waits, now = [], timezone.now()
    for _ in range(rounds):
        delivery.refresh_from_db()
        assert delivery.status == DeliveryStatus.PENDING, (delivery.status, delivery.last_error)
        assert error(delivery.last_error), delivery.last_error
        waits.append((delivery.next_attempt_at - now).total_seconds())
        now = delivery.next_attempt_at + timedelta(seconds=1)
        services.deliveries_send(delivery_ids=[delivery.pk], now=now)
    delivery.refresh_from_db()
    assert waits == sorted(waits) and len(set(waits)) == len(waits), waits  # exponential backoff
    return waits


def delivery_admin_pages(client, world, delivery) -> str:
    """The pending changelist must list the delivery; returns its admin detail page (as platform staff)."""
    from django.urls import reverse

    client.force_login(world.user("platform", "admin"))
    page = client.get(reverse("admin:notifications_delivery_changelist") + "?status=pending").content.decode()
    assert f"/{delivery.pk}/change/" in page
    return client.get(reverse("admin:notifications_delivery_change", args=[delivery.pk])).content.decode()
