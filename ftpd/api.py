"""ftpd as a library: an FTP server inside an application's own event loop.

::

    async with Server(Config(port=0, root="/srv/ftp", password="secret")) as server:
        print("serving on", server.url)
        await server.serve_forever()

``Server`` wraps the server the command line runs (``ftpd.server.server``) with the same
``Config``, and adds what an application plugs in: an ``Authenticator`` (who may log in; the
users file / single user / anonymous store of the configuration when none is given), a
``filesystem`` factory (the storage a logged-in account sees; local disk at the account's home
when none is given, e.g. ``MemoryFS``), and event callbacks (``subscribe``). It leaves the
application's loop as it found it: no signal handlers, no default executor, no logging set-up.

``serve(config)`` is the blocking form: a loop of its own, until SIGINT or SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

from ftpd.auth.base import Account, Authenticator
from ftpd.config import Config, validate
from ftpd.events import EventBus, EventCallback, EventFS, EventKind, ObserverBridge, origin
from ftpd.fs.base import FileSystem
from ftpd.server.server import Server as _CoreServer

__all__ = ["FileSystemFactory", "Layer", "Server", "SessionHandle", "serve"]

log = logging.getLogger("ftpd")

FileSystemFactory = Callable[[Account], FileSystem]


class SessionHandle:
    """What a filesystem layer may do to the session it serves (``ftpd.testing``'s faults)."""

    __slots__ = ("_ch",)

    def __init__(self, ch: Any) -> None:
        self._ch = ch

    def abort(self) -> None:
        """Reset the control connection at once, without a reply."""
        self._ch.transport.abort()


# A layer over each session's filesystem: (fs, session) -> fs (fault injection in ftpd.testing).
Layer = Callable[[FileSystem, SessionHandle], FileSystem]


class Server:
    """An FTP server running in the current event loop.

    ``async with Server(config) as server`` starts it (the listeners are bound when the block is
    entered: ``server.host``, ``server.port``, ``server.url``) and closes it gracefully on the
    way out. ``start()`` and ``close()`` do the same by hand.
    """

    def __init__(
        self,
        config: Config | None = None,
        *,
        authenticator: Authenticator | None = None,
        filesystem: FileSystemFactory | None = None,
        on_event: EventCallback | None = None,
    ) -> None:
        self.config = config if config is not None else Config(port=0)
        validate(self.config)
        self._authenticator = authenticator
        self._filesystem = filesystem
        self.events = EventBus()
        if on_event is not None:
            self.events.subscribe(on_event)
        self._layers: list[Layer] = []
        self._core: _CoreServer | None = None
        self._addresses: list[tuple[str, int]] = []
        self._closed: asyncio.Event | None = None

    # ------------------------------------------------------------------ configuration
    def subscribe(self, callback: EventCallback, *kinds: EventKind) -> None:
        """Call ``await callback(event)`` for each event of ``kinds`` (every kind if none)."""
        self.events.subscribe(callback, kinds)

    def on(self, *kinds: EventKind) -> Callable[[EventCallback], EventCallback]:
        """Decorator form of ``subscribe``: ``@server.on(EventKind.UPLOAD)``."""

        def register(callback: EventCallback) -> EventCallback:
            self.subscribe(callback, *kinds)
            return callback

        return register

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Bind the listeners and start serving (``RuntimeError`` if already started)."""
        if self._core is not None:
            raise RuntimeError("server already started")
        core = _CoreServer(
            self.config, self._authenticator, session_fs=self._session_fs, embedded=True
        )
        core.observer.listeners.append(ObserverBridge(self.events))
        self._core = core
        self._closed = asyncio.Event()
        try:
            self._addresses = await core.start()
        except BaseException:
            self._core = None
            await core.shutdown(0)
            raise

    async def close(self, grace: float | None = None) -> None:
        """Stop accepting, say 421 to idle sessions, let running transfers finish for ``grace``
        seconds (``config.shutdown_grace`` by default), then deliver queued events. Idempotent."""
        core, self._core = self._core, None
        if core is None:
            return
        grace = self.config.shutdown_grace if grace is None else grace
        try:
            await core.shutdown(grace)
            # The sessions' connection_lost (their LOGOUT events) comes a turn or so after the
            # 421 is flushed: wait for it, briefly, before the events are delivered.
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 1.0
            while core.host.channels and loop.time() < deadline:
                await asyncio.sleep(0.005)
        finally:
            await self.events.close(max(grace, 1.0))
            if self._closed is not None:
                self._closed.set()

    async def serve_forever(self) -> None:
        """Wait until ``close()`` is called (from another task)."""
        if self._closed is None:
            raise RuntimeError("server not started")
        await self._closed.wait()

    async def __aenter__(self) -> Server:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # ------------------------------------------------------------------ where it listens
    @property
    def addresses(self) -> list[tuple[str, int]]:
        """Every bound control listener as (host, port), after ``start``."""
        if not self._addresses:
            raise RuntimeError("server not started")
        return list(self._addresses)

    @property
    def host(self) -> str:
        return self.addresses[0][0]

    @property
    def port(self) -> int:
        return self.addresses[0][1]

    @property
    def url(self) -> str:
        """``ftp://host:port/`` (IPv6 hosts in brackets)."""
        host = self.host
        return f"ftp://[{host}]:{self.port}/" if ":" in host else f"ftp://{host}:{self.port}/"

    async def wait_events(self) -> None:
        """Wait until every event so far has been delivered to its callbacks (tests use it)."""
        await self.events.drain()

    @property
    def sessions(self) -> int:
        """Control connections open now."""
        return len(self._core.host.channels) if self._core is not None else 0

    def drop_sessions(self) -> int:
        """Cut every control connection now, without a reply (a reset); returns how many."""
        channels = list(self._core.host.channels) if self._core is not None else []
        for ch in channels:
            SessionHandle(ch).abort()
        return len(channels)

    # ------------------------------------------------------------------ per session
    def add_layer(self, layer: Layer) -> None:
        """Wrap every session's filesystem in ``layer(fs, session)`` from the next login on
        (advanced: how ``ftpd.testing`` injects faults; layers apply in the order added)."""
        self._layers.append(layer)

    def _session_fs(self, ch: Any, account: Account) -> FileSystem:
        """The filesystem a session gets at login (the core server's ``session_fs`` hook)."""
        core = self._core
        assert core is not None
        fs = (
            self._filesystem(account) if self._filesystem is not None else core.host.fs_for(account)
        )
        for layer in self._layers:
            fs = layer(fs, SessionHandle(ch))
        if self.events.active:
            where = origin(ch, account)
            bus = self.events

            def emit(kind: EventKind, **fields: Any) -> None:
                if bus.wants(kind):
                    bus.emit(where.event(kind, **fields))

            fs = EventFS(fs, emit)
        return fs


def serve(
    config: Config,
    *,
    authenticator: Authenticator | None = None,
    filesystem: FileSystemFactory | None = None,
    subscribers: Iterable[tuple[EventCallback, Iterable[EventKind]]] = (),
    on_ready: Callable[[Server], None] | None = None,
) -> int:
    """Serve in a new event loop until SIGINT or SIGTERM; returns 0 after a graceful close."""

    async def main() -> int:
        server = Server(config, authenticator=authenticator, filesystem=filesystem)
        for callback, kinds in subscribers:
            server.subscribe(callback, *kinds)
        loop = asyncio.get_running_loop()
        async with server:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, lambda: asyncio.ensure_future(server.close()))
            log.info("serving on %s", server.url)
            if on_ready is not None:
                on_ready(server)
            await server.serve_forever()
        return 0

    return asyncio.run(main())
