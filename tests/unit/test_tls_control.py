"""ftpd's TLS layer for control connections (``ftpd.server.tls_control``) on loopback TCP.

The server side is the layer on a real listening socket of the event loop (uvloop and asyncio's
own), the client a blocking ``ssl`` socket in a thread that verifies the certificate. Covered:
the handshake (implicit: TLS from the first byte; explicit: the plain transport taken over after a
reply, as AUTH TLS does), application data both ways in several records, close_notify both ways
(each side sees a clean end, not a truncation), the handshake timeout, a reset and garbage mid
handshake (the waiter fails, the app hears nothing), and flow control both ways.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trustme

from ftpd.server.tls_control import TlsControl

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {"asyncio": asyncio.new_event_loop}
try:
    import uvloop

    LOOPS["uvloop"] = uvloop.new_event_loop
except ImportError:  # pragma: no cover - uvloop is a runtime dependency
    pass

DEADLINE = 10.0  # every wait of these tests is bounded by this
BIG = bytes(range(256)) * 400  # 100 KiB: several TLS records, more than one socket read


@pytest.fixture(scope="module")
def contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    leaf.configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return server, client


@pytest.fixture(params=sorted(LOOPS))
def run(request: pytest.FixtureRequest) -> Callable[[Awaitable[Any]], Any]:
    factory = LOOPS[request.param]

    def runner(coro: Awaitable[Any]) -> Any:
        async def bounded() -> Any:
            async with asyncio.timeout(DEADLINE * 2):
                return await coro

        with asyncio.Runner(loop_factory=factory) as r:
            return r.run(bounded())

    return runner


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


def rst_close(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_handshake_and_data_both_ways(run: Any, contexts: Any) -> None:
    server_ctx, client_ctx = contexts

    async def main() -> None:
        async with Server(server_ctx) as srv:
            client = await asyncio.to_thread(tls_connect, client_ctx, srv.port)
            try:
                layer, app = await srv.accepted()
                assert await app.made is layer  # told once the handshake is done
                assert layer.secure and layer.handshake is None and layer.timer is None
                info = layer.get_extra_info
                assert info("ssl_object") is layer.obj and info("sslcontext") is server_ctx
                assert info("cipher")[0] == client.cipher()[0]  # type: ignore[index]
                assert info("peercert") is None  # no client certificate asked for
                assert info("compression") is None
                assert info("peername") == client.getsockname()
                assert info("sockname") == ("127.0.0.1", srv.port)
                assert info("socket").getpeername() == client.getsockname()
                assert info("nothing", "default") == "default"

                await asyncio.to_thread(client.sendall, BIG)
                await app.until(lambda: len(app.data) >= len(BIG))
                assert bytes(app.data) == BIG
                layer.write(b"220 ")
                layer.write(BIG)  # several records, one write of ciphertext
                got = await asyncio.to_thread(recv_exactly, client, 4 + len(BIG))
                assert got == b"220 " + BIG
                assert not layer.is_closing() and layer.get_protocol() is app
            finally:
                client.close()

    run(main())


def test_explicit_attach_after_a_plain_reply(run: Any, contexts: Any) -> None:
    """AUTH TLS: the plain transport's reply goes first, then the layer takes it over."""
    server_ctx, client_ctx = contexts

    async def main() -> None:
        layers: asyncio.Queue[tuple[TlsControl, App]] = asyncio.Queue()

        class Plain(asyncio.Protocol):
            def connection_made(self, transport: Any) -> None:
                self.transport = transport

            def data_received(self, data: bytes) -> None:
                assert data == b"AUTH TLS\r\n"
                self.transport.write(b"234 AUTH TLS successful.\r\n")
                app = App()
                layer = TlsControl(server_ctx, app, DEADLINE)
                app.transport = layer  # as ControlChannel.start_tls does
                self.transport.pause_reading()  # resumed by attach: the handshake needs bytes
                layer.attach(self.transport)
                layers.put_nowait((layer, app))

        srv = await asyncio.get_running_loop().create_server(Plain, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]

        def client_side() -> ssl.SSLSocket:
            sock = connect(port)
            sock.sendall(b"AUTH TLS\r\n")
            assert recv_exactly(sock, 26) == b"234 AUTH TLS successful.\r\n"
            tls = client_ctx.wrap_socket(
                sock, server_hostname="127.0.0.1", suppress_ragged_eofs=False
            )
            tls.sendall(b"USER x\r\n")
            return tls

        try:
            client = await asyncio.to_thread(client_side)
            layer, app = await layers.get()
            assert layer.handshake is None or await layer.handshake is None
            await app.until(lambda: bytes(app.data) == b"USER x\r\n")
            assert not app.made.done()  # explicit: the app was connected before
            layer.write(b"331 Password.\r\n")
            assert await asyncio.to_thread(recv_exactly, client, 15) == b"331 Password.\r\n"
            client.close()
        finally:
            srv.close()

    run(main())


def test_client_close_notify_is_answered(run: Any, contexts: Any) -> None:
    server_ctx, client_ctx = contexts

    async def main() -> None:
        async with Server(server_ctx) as srv:
            client, layer, app = await srv.session(client_ctx)
            # unwrap() sends the client's close_notify and returns once ours came back.
            plain = await asyncio.to_thread(client.unwrap)
            async with asyncio.timeout(DEADLINE):
                assert await app.lost is None
            assert app.eofs == 1 and layer.is_closing()
            assert await asyncio.to_thread(plain.recv, 10) == b""  # then a FIN
            plain.close()
            assert layer.get_protocol() is None  # no channel <-> transport cycle left

    run(main())


def test_server_close_sends_close_notify(run: Any, contexts: Any) -> None:
    server_ctx, client_ctx = contexts

    async def main() -> None:
        async with Server(server_ctx) as srv:
            client, layer, app = await srv.session(client_ctx)
            try:
                layer.write(b"221 Goodbye.\r\n")
                layer.close()
                layer.write(b"never sent")  # after close: dropped
                # A clean end: with suppress_ragged_eofs off, a FIN without close_notify raises.
                got = await asyncio.to_thread(recv_exactly, client, 100)
                assert got == b"221 Goodbye.\r\n"
                async with asyncio.timeout(DEADLINE):
                    assert await app.lost is None
                assert app.eofs == 0
            finally:
                client.close()

    run(main())


def test_plain_eof_after_handshake_is_eof(run: Any, contexts: Any) -> None:
    """A FIN without close_notify: the app's eof_received, then connection_lost."""
    server_ctx, client_ctx = contexts

    async def main() -> None:
        async with Server(server_ctx) as srv:
            client, layer, app = await srv.session(client_ctx)
            client.shutdown(socket.SHUT_WR)
            async with asyncio.timeout(DEADLINE):
                await app.lost
            assert app.eofs == 1
            client.close()

    run(main())


def test_handshake_timeout(run: Any, contexts: Any) -> None:
    server_ctx, _ = contexts

    async def main() -> None:
        async with Server(server_ctx, timeout=0.3) as srv:
            sock = await asyncio.to_thread(connect, srv.port)  # and says nothing
            try:
                layer, app = await srv.accepted()
                assert layer.handshake is not None
                with pytest.raises(TimeoutError):
                    async with asyncio.timeout(DEADLINE):
                        await layer.handshake
                assert await asyncio.to_thread(sock.recv, 10) == b""  # closed by the server
                assert not app.made.done() and not app.lost.done()  # the app never heard
                assert layer.timer is None and layer.is_closing()
            finally:
                sock.close()

    run(main())


def test_reset_mid_handshake(run: Any, contexts: Any) -> None:
    server_ctx, _ = contexts

    async def main() -> None:
        async with Server(server_ctx) as srv:
            sock = await asyncio.to_thread(connect, srv.port)
            layer, app = await srv.accepted()
            sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # half a ClientHello
            rst_close(sock)
            assert layer.handshake is not None
            with pytest.raises(ConnectionError):
                async with asyncio.timeout(DEADLINE):
                    await layer.handshake
            assert layer.timer is None  # the handshake timer is gone with the connection
            assert not app.made.done() and not app.lost.done()

    run(main())


def test_garbage_handshake_fails_at_once(run: Any, contexts: Any) -> None:
    server_ctx, _ = contexts

    async def main() -> None:
        async with Server(server_ctx) as srv:
            sock = await asyncio.to_thread(connect, srv.port)
            try:
                layer, app = await srv.accepted()
                sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
                assert layer.handshake is not None
                with pytest.raises(ssl.SSLError):
                    async with asyncio.timeout(DEADLINE):
                        await layer.handshake
                # Closed (OpenSSL's alert, if any, then a FIN), well before the timeout.
                assert await asyncio.to_thread(recv_exactly, sock, 4096) != b"GET"
                assert not app.made.done()
            finally:
                sock.close()

    run(main())


def test_flow_control(run: Any, contexts: Any) -> None:
    """The plain transport's pause/resume_writing reach the app; pause/resume_reading stop and
    restart the bytes that reach it."""
    server_ctx, client_ctx = contexts

    async def main() -> None:
        async with Server(server_ctx) as srv:
            client, layer, app = await srv.session(client_ctx)
            try:
                layer.set_write_buffer_limits(high=64 * 1024, low=16 * 1024)
                assert layer.get_write_buffer_limits() == (16 * 1024, 64 * 1024)
                sent = 0
                for _ in range(2000):  # the client reads nothing: the buffer fills
                    if app.paused:
                        break
                    layer.write(BIG)
                    sent += len(BIG)
                    await asyncio.sleep(0)
                assert app.paused == 1 and layer.get_write_buffer_size() > 16 * 1024
                got = await asyncio.to_thread(recv_exactly, client, sent)
                assert len(got) == sent
                await app.until(lambda: app.resumed == 1)

                layer.pause_reading()
                assert not layer.is_reading()
                await asyncio.to_thread(client.sendall, b"NOOP\r\n")
                await asyncio.sleep(0.2)  # a negative check: nothing may arrive while paused
                assert not app.data
                layer.resume_reading()
                await app.until(lambda: bytes(app.data) == b"NOOP\r\n")
            finally:
                client.close()

    run(main())


def bio_client(ctx: ssl.SSLContext, port: int, first: bytes) -> tuple[socket.socket, bytes]:
    """A client whose Finished and first command leave in one segment (TLS 1.3 allows it)."""
    sock = connect(port)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="127.0.0.1")
    while True:
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            if out.pending:
                sock.sendall(out.read())
            data = sock.recv(65536)
            assert data, "closed during the handshake"
            inc.write(data)
    obj.write(first)
    sock.sendall(out.read())  # the client's Finished and the command together
    while True:
        try:
            return sock, obj.read(100)
        except ssl.SSLWantReadError:
            data = sock.recv(65536)
            assert data, "closed before the reply"
            inc.write(data)


def test_data_with_the_finished_message(run: Any, contexts: Any) -> None:
    """A command in the segment that completes the handshake reaches the app after
    ``connection_made`` (the greeting), in the same turn."""
    server_ctx, client_ctx = contexts

    async def main() -> None:
        async with Server(server_ctx) as srv:
            task = asyncio.create_task(
                asyncio.to_thread(bio_client, client_ctx, srv.port, b"USER x\r\n")
            )
            layer, app = await srv.accepted()
            await app.until(lambda: bytes(app.data) == b"USER x\r\n")
            assert await app.made is layer
            layer.write(b"331 Password.\r\n")
            sock, reply = await task
            sock.close()
            assert reply == b"331 Password.\r\n"

    run(main())


def test_nothing_sent_before_the_handshake(run: Any, contexts: Any) -> None:
    """Writes before the handshake is done are dropped, never sent in plain text."""
    server_ctx, client_ctx = contexts

    async def main() -> None:
        async with Server(server_ctx) as srv:
            sock = await asyncio.to_thread(connect, srv.port)
            layer, app = await srv.accepted()
            for _ in range(1000):  # connection_made: the layer has its plain transport
                if layer.raw is not None:
                    break
                await asyncio.sleep(0.001)
            assert layer.raw is not None
            layer.write(b"421 too early\r\n")
            assert layer.get_write_buffer_size() == 0
            tls = await asyncio.to_thread(
                client_ctx.wrap_socket, sock, server_hostname="127.0.0.1"
            )  # a handshake that sees no stray bytes
            await app.made
            layer.write(b"220 ok\r\n")
            assert await asyncio.to_thread(recv_exactly, tls, 8) == b"220 ok\r\n"
            tls.close()

    run(main())


# --- TLS 1.3 session tickets on demand (ftpd.server.tickets) -------------------------------------


@pytest.fixture
def server_config(tmp_path: Any) -> Any:
    """A Config whose certificate and key are a trustme leaf's, and the CA's client context."""
    from ftpd.config import Config

    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    leaf.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    leaf.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    client = ssl.create_default_context()
    ca.configure_trust(client)
    cfg = Config(tls_cert=str(tmp_path / "cert.pem"), tls_key=str(tmp_path / "key.pem"))
    client.ca = ca  # type: ignore[attr-defined]  # for another client context of the same CA
    return cfg, client


def read_reply(client: ssl.SSLSocket, expected: bytes) -> None:
    """Read one reply; OpenSSL takes in the NewSessionTicket messages before it."""
    assert recv_exactly(client, len(expected)) == expected


def test_tickets_on_demand(run: Any, server_config: Any) -> None:
    """On CPython with OpenSSL 3 the control handshake issues no ticket; ``issue_ticket`` sends
    one at once, which the client resumes a second connection with. Under TLS 1.2 (session IDs)
    it sends nothing."""
    from ftpd.server import tickets, tls

    cfg, client_ctx = server_config
    ctx = tls.make_context(cfg)
    assert tickets.usable(ctx) and ctx.num_tickets == 0 and tls.on_demand(ctx)
    assert tls.data_tickets(ctx, upload=False) == 0 and tls.data_tickets(ctx, upload=True) == 0

    async def main() -> None:
        async with Server(ctx) as srv:
            client, layer, _app = await srv.session(client_ctx)
            try:
                assert client.version() == "TLSv1.3"
                layer.write(b"200 a\r\n")
                await asyncio.to_thread(read_reply, client, b"200 a\r\n")
                assert client.session is not None and not client.session.has_ticket
                layer.issue_ticket()
                layer.write(b"227 b\r\n")
                await asyncio.to_thread(read_reply, client, b"227 b\r\n")
                session = client.session
                assert session is not None and session.has_ticket
                again = await asyncio.to_thread(
                    lambda: client_ctx.wrap_socket(
                        connect(srv.port), server_hostname="127.0.0.1", session=session
                    )
                )
                try:
                    assert again.session_reused
                    await srv.accepted()  # its layer, so that the next session gets its own
                finally:
                    again.close()
            finally:
                client.close()

            old = ssl.create_default_context()
            client_ctx.ca.configure_trust(old)
            old.maximum_version = ssl.TLSVersion.TLSv1_2
            client, layer, _app = await srv.session(old)
            try:
                assert client.version() == "TLSv1.2"
                layer.issue_ticket()
                assert layer.raw.get_write_buffer_size() == 0  # nothing minted, nothing sent
                layer.write(b"227 c\r\n")
                await asyncio.to_thread(read_reply, client, b"227 c\r\n")
            finally:
                client.close()

    run(main())


def test_tickets_at_the_handshake_where_not_on_demand(
    run: Any, server_config: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where tickets cannot be issued on demand (another Python or layout, an OpenSSL without
    ``SSL_new_session_ticket``), the control handshake issues 8 and a download's data
    connection one, as before; ``issue_ticket`` does nothing."""
    from ftpd.server import tickets, tls

    monkeypatch.setattr(tickets, "_verified", False)
    monkeypatch.setattr(tickets, "_calls", None)
    cfg, client_ctx = server_config
    ctx = tls.make_context(cfg)
    assert ctx.num_tickets == tls.TICKETS == 8 and not tls.on_demand(ctx)
    assert tls.data_tickets(ctx, upload=False) == 1 and tls.data_tickets(ctx, upload=True) == 0

    async def main() -> None:
        async with Server(ctx) as srv:
            client, layer, _app = await srv.session(client_ctx)
            try:
                layer.write(b"200 a\r\n")
                await asyncio.to_thread(read_reply, client, b"200 a\r\n")
                assert client.session is not None and client.session.has_ticket
                assert not tickets.mint(layer.obj)
                layer.issue_ticket()
                assert layer.raw.get_write_buffer_size() == 0
            finally:
                client.close()

    run(main())


def test_tickets_refuse_an_unknown_layout(server_config: Any) -> None:
    """``_ssl_of`` reads no pointer out of an object that is not ``_ssl._SSLSocket`` with the
    expected fields; ``mint`` then does nothing."""
    from types import SimpleNamespace

    from ftpd.server import tickets, tls

    cfg, _client = server_config
    ctx = tls.make_context(cfg)
    assert tickets.usable(ctx)
    calls = tickets._calls
    assert calls is not None
    real = ctx.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_side=True)
    assert tickets._ssl_of(real, calls)
    assert not tickets.mint(real)  # a real object, but its handshake has not happened
    fake: Any = SimpleNamespace(_sslobj=SimpleNamespace(context=ctx))
    assert tickets._ssl_of(fake, calls) is None and not tickets.mint(fake)
