"""The network side of checks: async HTTP(S) with aiohttp and TCP connects, many at once.

Pure asyncio, no ORM: the service hands in `CheckSpec`s and gets `Outcome`s back, then writes
them in bulk. A worker process runs one `CheckEngine`: an asyncio loop on its own thread with
ONE aiohttp session (a keep-alive pool shared by every batch of the process) and one bound on
concurrent checks across all of them; a check's latency is time to response headers + body read.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import re
import socket
import ssl
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiohttp

from apps.core.aioloop import LoopThread, per_process

_TOKEN = re.compile(r"\.?([A-Za-z_][\w-]*)|\[(\d+)\]|\[\"([^\"]+)\"\]")


def parse_json_path(path: str) -> list[str | int]:
    """A small JSONPath subset: `$.a.b[0].c`, `a.b`, `$["key with space"]`."""
    text = (path or "").strip()
    if text.startswith("$"):
        text = text[1:]
    if not text:
        raise ValueError("Give a JSON path such as $.status or $.data.items[0].state.")
    steps: list[str | int] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ValueError(f"Cannot parse JSON path {path!r} at position {pos + 1}.")
        steps.append(m.group(1) if m.group(1) is not None else int(m.group(2)) if m.group(2) is not None else m.group(3))
        pos = m.end()
    return steps


def json_path_value(document, steps):
    value = document
    for step in steps:
        if isinstance(step, int):
            if not isinstance(value, list) or step >= len(value):
                raise KeyError(step)
            value = value[step]
        else:
            if not isinstance(value, dict) or step not in value:
                raise KeyError(step)
            value = value[step]
    return value


@dataclass
class CheckSpec:
    endpoint_id: int
    kind: str
    host: str
    port: int | None
    path: str = "/"
    method: str = "GET"
    verify_tls: bool = True
    timeout: float = 10.0
    expected_status: int = 200
    match_kind: str = ""
    match_keyword: str = ""
    match_json_path: str = ""
    match_json_value: str = ""
    scheduled_at: datetime | None = None


@dataclass
class Outcome:
    endpoint_id: int
    ok: bool
    latency_ms: float | None = None
    status_code: int | None = None
    error: str = ""
    checked_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    tls_expires_at: datetime | None = None
    scheduled_at: datetime | None = None


def _url(spec: CheckSpec) -> str:
    host = f"[{spec.host}]" if ":" in spec.host else spec.host
    port = f":{spec.port}" if spec.port else ""
    return f"{spec.kind}://{host}{port}{spec.path or '/'}"


def _not_after(ssl_object) -> datetime | None:
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    if not der:
        return None
    from cryptography import x509

    return x509.load_der_x509_certificate(der).not_valid_after_utc


def _cert_expiry(resp) -> datetime | None:
    """The peer certificate's notAfter from the response's connection. A small body is read with
    the headers and the connection goes back to the pool at once (`resp.connection` is then
    None), so the protocol the response was read from is asked too; None if neither has it."""
    conn = resp.connection
    protocol = conn.protocol if conn is not None else getattr(resp, "_protocol", None)
    transport = getattr(protocol, "transport", None)
    return _not_after(transport.get_extra_info("ssl_object")) if transport is not None else None


async def fetch_cert_expiry(host: str, port: int | None, timeout: float) -> datetime | None:
    """A TLS handshake of its own (no verification: only the certificate's dates are wanted)
    when the response's connection was already closed."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    async with asyncio.timeout(timeout):
        _, writer = await asyncio.open_connection(host, port or 443, ssl=context, server_hostname=host)
    try:
        return _not_after(writer.get_extra_info("ssl_object"))
    finally:
        writer.close()
        with contextlib.suppress(OSError, TimeoutError, ssl.SSLError):
            await asyncio.wait_for(writer.wait_closed(), 1)


def _match(spec: CheckSpec, body: bytes) -> str:
    """'' if the body matches the endpoint's rule, else a reason."""
    if spec.match_kind in ("keyword", "keyword_absent"):
        found = spec.match_keyword.encode() in body
        if spec.match_kind == "keyword" and not found:
            return f"keyword {spec.match_keyword!r} not found in the response"
        if spec.match_kind == "keyword_absent" and found:
            return f"keyword {spec.match_keyword!r} found in the response"
    elif spec.match_kind == "json_path":
        try:
            value = json_path_value(json.loads(body), parse_json_path(spec.match_json_path))
        except (ValueError, KeyError) as exc:
            return f"JSON path {spec.match_json_path} not found ({exc.__class__.__name__}: {exc})"
        text = json.dumps(value) if isinstance(value, (dict, list, bool)) or value is None else str(value)
        if text != spec.match_json_value:
            return f"JSON path {spec.match_json_path} is {text[:100]!r}, expected {spec.match_json_value!r}"
    return ""


async def check_http(session: aiohttp.ClientSession, spec: CheckSpec, body_limit: int) -> Outcome:
    started = time.perf_counter()
    out = Outcome(endpoint_id=spec.endpoint_id, ok=False, scheduled_at=spec.scheduled_at)
    ssl_ctx: ssl.SSLContext | bool = bool(spec.verify_tls)
    try:
        async with asyncio.timeout(spec.timeout):
            async with session.request(spec.method, _url(spec), ssl=ssl_ctx, allow_redirects=True) as resp:
                out.status_code = resp.status
                if spec.kind == "https":
                    out.tls_expires_at = _cert_expiry(resp)
                body = await resp.content.read(body_limit) if spec.match_kind else b""
                if not spec.match_kind:
                    await resp.release()
        out.latency_ms = round((time.perf_counter() - started) * 1000, 2)
        if spec.kind == "https" and out.tls_expires_at is None and resp.url.scheme == "https":
            with contextlib.suppress(OSError, TimeoutError, ssl.SSLError):
                out.tls_expires_at = await fetch_cert_expiry(resp.url.host or spec.host, resp.url.port, min(spec.timeout, 5.0))
        if out.status_code != spec.expected_status:
            out.error = f"HTTP {out.status_code}, expected {spec.expected_status}"
        else:
            out.error = _match(spec, body)
        out.ok = not out.error
    except TimeoutError:
        out.error = f"timed out after {spec.timeout:g}s"
    except aiohttp.ClientConnectorCertificateError as exc:
        out.error = f"TLS certificate error: {exc.certificate_error}"[:500]
    except aiohttp.ClientError as exc:
        out.error = client_error_text(exc)
    except OSError as exc:
        out.error = f"{exc.__class__.__name__}: {exc}"[:500]
    out.checked_at = datetime.now(UTC)
    return out


def client_error_text(exc: aiohttp.ClientError) -> str:
    """What went wrong, in the words an operator uses (it becomes the endpoint's status reason and
    the title of its alert and ticket): "cannot connect to host:port: Connection refused", not
    aiohttp's repr of the socket call."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        os_error = exc.os_error
        if isinstance(os_error, socket.gaierror) or exc.__class__.__name__ == "ClientConnectorDNSError":
            return f"cannot resolve {exc.host}"[:500]
        reason = os.strerror(os_error.errno) if getattr(os_error, "errno", None) else (str(os_error) or os_error.__class__.__name__)
        return f"cannot connect to {exc.host}:{exc.port}: {reason}"[:500]
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the server closed the connection without answering"
    if isinstance(exc, aiohttp.TooManyRedirects):
        return "too many redirects"
    return f"{exc.__class__.__name__}: {exc}"[:500]


async def check_tcp(spec: CheckSpec) -> Outcome:
    started = time.perf_counter()
    out = Outcome(endpoint_id=spec.endpoint_id, ok=False, scheduled_at=spec.scheduled_at)
    try:
        async with asyncio.timeout(spec.timeout):
            _, writer = await asyncio.open_connection(spec.host, spec.port)
        out.latency_ms = round((time.perf_counter() - started) * 1000, 2)
        out.ok = True
        writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), 1)
    except TimeoutError:
        out.error = f"timed out after {spec.timeout:g}s connecting to {spec.host}:{spec.port}"
    except OSError as exc:
        out.error = f"{exc.__class__.__name__}: {exc.strerror or exc}"[:500]
    out.checked_at = datetime.now(UTC)
    return out


def new_session(concurrency: int, user_agent: str) -> aiohttp.ClientSession:
    """The checks' session: at most `concurrency` connections, idle ones kept alive for reuse,
    no cookie jar (a check must not carry state from one endpoint, or one check, to the next)."""
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=0, ttl_dns_cache=60, keepalive_timeout=75)
    return aiohttp.ClientSession(connector=connector, headers={"User-Agent": user_agent}, cookie_jar=aiohttp.DummyCookieJar(),
                                 timeout=aiohttp.ClientTimeout(total=None))


async def run_checks_async(specs: list[CheckSpec], *, concurrency: int = 100, body_limit: int = 262144,
                           user_agent: str = "opsportal-monitor") -> list[Outcome]:
    semaphore = asyncio.Semaphore(concurrency)
    async with new_session(concurrency, user_agent) as session:

        async def one(spec: CheckSpec) -> Outcome:
            async with semaphore:
                if spec.kind == "tcp":
                    return await check_tcp(spec)
                return await check_http(session, spec, body_limit)

        return list(await asyncio.gather(*(one(s) for s in specs)))


def run_checks(specs: list[CheckSpec], **kwargs) -> list[Outcome]:
    """Check every spec concurrently; returns one outcome per spec (same order)."""
    if not specs:
        return []
    return asyncio.run(run_checks_async(specs, **kwargs))


class CheckEngine(LoopThread):
    """One per worker process: an asyncio loop on a daemon thread, one shared session and one
    semaphore, so every batch the process runs (several at once on a threads pool) reuses the
    same keep-alive connections and never exceeds `concurrency` checks in flight together.
    `submit` hands each outcome to the caller's queue as soon as that check ends."""

    def __init__(self, *, concurrency: int, body_limit: int, user_agent: str):
        self.concurrency, self.body_limit, self.user_agent = concurrency, body_limit, user_agent
        self.tasks: set[asyncio.Task] = set()  # the loop keeps only weak references to tasks
        super().__init__("monitoring-check-engine", key=(concurrency, body_limit, user_agent))

    async def setup(self) -> None:
        self.semaphore = asyncio.Semaphore(self.concurrency)
        self.session = new_session(self.concurrency, self.user_agent)

    async def teardown(self) -> None:
        await self.session.close()

    async def _one(self, spec: CheckSpec, sink: queue.Queue) -> None:
        try:
            async with self.semaphore:
                outcome = await (check_tcp(spec) if spec.kind == "tcp" else check_http(self.session, spec, self.body_limit))
        except Exception as exc:  # a bug in a check must not lose its slot's result
            outcome = Outcome(endpoint_id=spec.endpoint_id, ok=False, scheduled_at=spec.scheduled_at,
                              error=f"the check failed: {exc.__class__.__name__}: {exc}"[:500])
        sink.put(outcome)

    def submit(self, specs: list[CheckSpec], sink: queue.Queue) -> None:
        """Start every spec's check; each Outcome is put on `sink` when it ends (any thread)."""
        def start():
            for spec in specs:
                task = self.loop.create_task(self._one(spec, sink))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)

        self.loop.call_soon_threadsafe(start)


_engines = per_process(lambda key: CheckEngine(concurrency=key[0], body_limit=key[1], user_agent=key[2]))


def engine(*, concurrency: int, body_limit: int, user_agent: str) -> CheckEngine:
    """This process's engine (a forked child, or changed settings, get a new one)."""
    return _engines.get((concurrency, body_limit, user_agent))
