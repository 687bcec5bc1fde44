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
from concurrent.futures import ThreadPoolExecutor

import aiohttp
from django.conf import settings

from apps.core.aioloop import LoopThread, per_process


class SendLoop(LoopThread):
    def __init__(self, concurrency: int):
        self.concurrency = concurrency
        super().__init__("notify-send-loop", key=(concurrency,))

    def configure(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.set_default_executor(ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="notify-send"))

    async def setup(self) -> None:
        # no cookie jar: one tenant's receiver must not hand state to the next delivery
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=self.concurrency, ttl_dns_cache=60, keepalive_timeout=60)
        self.session = aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
                                             timeout=aiohttp.ClientTimeout(total=None))
        _sessions[self.loop] = self.session

    async def teardown(self) -> None:
        _sessions.pop(self.loop, None)
        await self.session.close()


_loops = per_process(lambda key: SendLoop(*key))
_sessions: dict[asyncio.AbstractEventLoop, aiohttp.ClientSession] = {}


def session() -> aiohttp.ClientSession:
    """The session of the send loop the calling coroutine runs on."""
    return _sessions[asyncio.get_running_loop()]


def send_loop() -> SendLoop:
    """This process's send loop (a forked child, or a changed concurrency setting, gets a new one)."""
    return _loops.get((settings.NOTIFICATIONS_SEND_CONCURRENCY,))
