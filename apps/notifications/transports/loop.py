"""The process's send loop: one asyncio loop on a daemon thread where a batch's sends run
concurrently (`Transport.send_async`), with ONE aiohttp session on it — a keep-alive pool per
endpoint (scheme, host, port) shared by every batch of the process, at most
NOTIFICATIONS_SEND_CONCURRENCY connections each (a send waits for a free one). Transports that
block (SMTP, Apprise) run on the loop's executor, as many threads as that setting.

Made afresh after a fork (its thread and sockets are the parent's) or when the setting changes.
Code on the loop never touches the ORM: callers hand in plain messages and get outcomes back.
"""

from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import aiohttp
from django.conf import settings


class SendLoop:
    def __init__(self, concurrency: int):
        self.key = (os.getpid(), concurrency)
        self.concurrency = concurrency
        self.loop = asyncio.new_event_loop()
        self.loop.set_default_executor(ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="notify-send"))
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), name="notify-send-loop", daemon=True)
        self.thread.start()
        ready.wait()

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)

        async def start():  # aiohttp wants its session made on the running loop
            # no cookie jar: one tenant's receiver must not hand state to the next delivery
            connector = aiohttp.TCPConnector(limit=0, limit_per_host=self.concurrency, ttl_dns_cache=60, keepalive_timeout=60)
            self.session = aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
                                                 timeout=aiohttp.ClientTimeout(total=None))
            _sessions[self.loop] = self.session

        try:
            self.loop.run_until_complete(start())
        finally:
            ready.set()  # the caller never waits forever, even if the session could not be made
        self.loop.run_forever()

    def run(self, coro):
        """Run a coroutine on the loop and wait for its result (from any thread but the loop's)."""
        if threading.current_thread() is self.thread:
            coro.close()
            raise RuntimeError("SendLoop.run called from the send loop itself")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def close(self) -> None:
        if self.thread.is_alive():
            asyncio.run_coroutine_threadsafe(self.session.close(), self.loop).result(10)
            _sessions.pop(self.loop, None)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)


_current: SendLoop | None = None
_lock = threading.Lock()
_sessions: dict[asyncio.AbstractEventLoop, aiohttp.ClientSession] = {}


def session() -> aiohttp.ClientSession:
    """The session of the send loop the calling coroutine runs on."""
    return _sessions[asyncio.get_running_loop()]


def send_loop() -> SendLoop:
    """This process's send loop (a forked child, or a changed concurrency setting, gets a new one)."""
    global _current
    key = (os.getpid(), settings.NOTIFICATIONS_SEND_CONCURRENCY)
    current = _current
    if current is not None and current.key == key:
        return current
    with _lock:
        if _current is None or _current.key != key:
            old, _current = _current, SendLoop(settings.NOTIFICATIONS_SEND_CONCURRENCY)
            if old is not None and old.key[0] == os.getpid():
                old.close()
        return _current
