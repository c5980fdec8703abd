"""Driving ftpd's TLS layer for control connections (``ftpd.server.tls_control.TlsControl``) on
loopback TCP, for its tests (``tests/unit/test_tls_control.py``, ``test_tls_tickets.py``).

``LOOPS`` names the event loops each test runs on (asyncio's own and uvloop) and ``runner`` runs a
coroutine on one of them within ``DEADLINE``. ``Server`` listens with the layer on every accepted
connection (TLS from the first byte); ``App`` records what the layer tells the application.
Clients are blocking ``ssl`` sockets in a thread: ``connect``, ``tls_connect``, ``recv_exactly``.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

from ftpd.server.tls_control import TlsControl

__all__ = ["LOOPS", "DEADLINE", "BIG", "runner", "App", "Server", "connect", "tls_connect",
           "recv_exactly"]

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {"asyncio": asyncio.new_event_loop}
try:
    import uvloop

    LOOPS["uvloop"] = uvloop.new_event_loop
except ImportError:  # pragma: no cover - uvloop is a runtime dependency
    pass

DEADLINE = 10.0  # every wait of these tests is bounded by this
BIG = bytes(range(256)) * 400  # 100 KiB: several TLS records, more than one socket read


def runner(loop: str) -> Callable[[Awaitable[Any]], Any]:
    """Run a coroutine to its end on a new loop of the kind ``loop`` (a key of ``LOOPS``), within
    twice ``DEADLINE``."""
    factory = LOOPS[loop]

    def run(coro: Awaitable[Any]) -> Any:
        async def bounded() -> Any:
            async with asyncio.timeout(DEADLINE * 2):
                return await coro

        with asyncio.Runner(loop_factory=factory) as r:
            return r.run(bounded())

    return run


class App(asyncio.Protocol):
    """The channel's part, recorded: what the layer tells the application."""

    def __init__(self) -> None:
        self.transport: Any = None
        self.data = bytearray()
        self.eofs = 0
        self.paused = self.resumed = 0
        self.made = asyncio.get_running_loop().create_future()
        self.lost: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()
        self.changed = asyncio.Event()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.made.set_result(transport)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None, "data before connection_made"
        self.data += data
        self.changed.set()

    def eof_received(self) -> bool:
        self.eofs += 1
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.set_result(exc)

    def pause_writing(self) -> None:
        self.paused += 1
        self.changed.set()

    def resume_writing(self) -> None:
        self.resumed += 1
        self.changed.set()

    async def until(self, cond: Callable[[], bool]) -> None:
        async with asyncio.timeout(DEADLINE):
            while not cond():
                self.changed.clear()
                await self.changed.wait()


class Server:
    """A listener whose every connection runs the layer from the first byte (``greet``)."""

    def __init__(self, ctx: ssl.SSLContext, timeout: float = DEADLINE) -> None:
        self.ctx = ctx
        self.timeout = timeout
        self.layers: asyncio.Queue[tuple[TlsControl, App]] = asyncio.Queue()
        self.srv: asyncio.AbstractServer | None = None

    def _make(self) -> TlsControl:
        app = App()
        layer = TlsControl(self.ctx, app, self.timeout, greet=True)
        self.layers.put_nowait((layer, app))
        return layer

    async def __aenter__(self) -> Server:
        self.srv = await asyncio.get_running_loop().create_server(self._make, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.srv is not None
        self.srv.close()

    @property
    def port(self) -> int:
        assert self.srv is not None
        return int(self.srv.sockets[0].getsockname()[1])

    async def accepted(self) -> tuple[TlsControl, App]:
        async with asyncio.timeout(DEADLINE):
            return await self.layers.get()

    async def session(self, client_ctx: ssl.SSLContext) -> tuple[ssl.SSLSocket, TlsControl, App]:
        """A TLS client connected, its layer accepted and its app told the handshake is done:
        (client, layer, app). The client is closed if the server side never gets there."""
        client = await asyncio.to_thread(tls_connect, client_ctx, self.port)
        try:
            layer, app = await self.accepted()
            async with asyncio.timeout(DEADLINE):
                await app.made
        except BaseException:
            client.close()
            raise
        return client, layer, app


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
    sock.settimeout(DEADLINE)
    return sock


def tls_connect(ctx: ssl.SSLContext, port: int) -> ssl.SSLSocket:
    return ctx.wrap_socket(connect(port), server_hostname="127.0.0.1", suppress_ragged_eofs=False)


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            break
        out += chunk
    return bytes(out)
