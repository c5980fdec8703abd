"""An ``ftpd.api.Server`` in a thread of its own, for synchronous code (tests, scripts).

``ThreadedServer(config).start()`` runs a fresh event loop in a daemon thread, starts the server
there and returns once it listens (or raises what start-up raised). ``stop()`` closes it
gracefully and joins the thread. ``call(fn, *args)`` runs ``fn`` in the server's loop and returns
its result (awaited if it is a coroutine), which is how code in the test's thread touches
anything the server owns (a ``MemoryFS``, the fault switches, the event queue).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from ftpd.api import FileSystemFactory, Server
from ftpd.auth.base import Authenticator
from ftpd.config import Config

__all__ = ["ThreadedServer"]

T = TypeVar("T")

START_TIMEOUT = 30.0


class ThreadedServer:
    """See the module docstring; a context manager too (``with ThreadedServer(cfg) as s:``)."""

    def __init__(
        self,
        config: Config,
        *,
        authenticator: Authenticator | None = None,
        filesystem: FileSystemFactory | None = None,
        setup: Callable[[Server], None] | None = None,
    ) -> None:
        self.server = Server(config, authenticator=authenticator, filesystem=filesystem)
        if setup is not None:
            setup(self.server)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> ThreadedServer:
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="ftpd-test-server", daemon=True
        )
        self._thread.start()
        ready.result(START_TIMEOUT)  # start-up's exception, if any, is raised here
        return self

    def _run(self, ready: concurrent.futures.Future[None]) -> None:
        loop = self._loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._main(ready))
        finally:
            loop.close()

    async def _main(self, ready: concurrent.futures.Future[None]) -> None:
        self._stop = asyncio.Event()
        try:
            await self.server.start()
        except BaseException as exc:
            ready.set_exception(exc)
            return
        ready.set_result(None)
        await self._stop.wait()
        await self.server.close(grace=1.0)

    def stop(self, timeout: float = 15.0) -> None:
        """Close the server (421 to its sessions) and wait for its thread."""
        loop, thread, stop = self._loop, self._thread, self._stop
        if loop is None or thread is None or stop is None or not thread.is_alive():
            return
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout)
        if thread.is_alive():
            raise RuntimeError("the ftpd test server did not stop in time")

    def __enter__(self) -> ThreadedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ access
    def call(self, fn: Callable[..., Any], *args: Any, timeout: float = 30.0) -> Any:
        """Run ``fn(*args)`` in the server's loop; its result (a coroutine's is awaited)."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("server not started")

        async def run() -> Any:
            result = fn(*args)
            return await result if inspect.isawaitable(result) else result

        return asyncio.run_coroutine_threadsafe(run(), loop).result(timeout)

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        return self.server.url
