"""A worker process's background asyncio loop: one loop on a daemon thread, shared by every task
thread of the process, for concurrent network I/O (monitoring's checks, notifications' sends).

`setup()` runs on the loop before the constructor returns (aiohttp wants its session made on the
running loop); `teardown()` runs on it at `close()`. A forked child or changed settings get a new
loop (`per_process`): the parent's thread and sockets do not survive a fork.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from typing import TypeVar


class LoopThread:
    def __init__(self, name: str, *, key: tuple = ()):
        self.key = (os.getpid(), *key)
        self.loop = asyncio.new_event_loop()
        self.configure(self.loop)
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), name=name, daemon=True)
        self.thread.start()
        ready.wait()

    def configure(self, loop: asyncio.AbstractEventLoop) -> None:
        """Before the thread starts (e.g. the loop's default executor)."""

    async def setup(self) -> None:
        """On the loop, before the constructor returns."""

    async def teardown(self) -> None:
        """On the loop, at close()."""

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.setup())
        finally:
            ready.set()  # the caller never waits forever, even if setup failed
        self.loop.run_forever()

    def run(self, coro):
        """Run a coroutine on the loop and wait for its result (from any thread but the loop's)."""
        if threading.current_thread() is self.thread:
            coro.close()
            raise RuntimeError(f"{type(self).__name__}.run called from its own loop")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def close(self) -> None:
        if self.thread.is_alive():
            asyncio.run_coroutine_threadsafe(self.teardown(), self.loop).result(10)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)


L = TypeVar("L", bound=LoopThread)


class per_process:
    """Holds one LoopThread for this process and these settings; `get(key)` makes a new one after
    a fork or when `key` changes (closing the old one if it is this process's)."""

    def __init__(self, factory: Callable[[tuple], L]):
        self.factory, self.current, self.lock = factory, None, threading.Lock()

    def get(self, key: tuple = ()) -> L:
        want = (os.getpid(), *key)
        current = self.current
        if current is not None and current.key == want:
            return current
        with self.lock:
            if self.current is None or self.current.key != want:
                old, self.current = self.current, self.factory(key)
                if old is not None and old.key[0] == os.getpid():
                    old.close()
            return self.current
