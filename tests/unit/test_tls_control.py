"""ftpd's TLS layer for control connections (``ftpd.server.tls_control``) on loopback TCP.

The server side is the layer on a real listening socket of the event loop (uvloop and asyncio's
own), the client a blocking ``ssl`` socket in a thread that verifies the certificate. Covered:
the handshake (implicit: TLS from the first byte; explicit: the plain transport taken over after a
reply, as AUTH TLS does), application data both ways in several records, close_notify both ways
(each side sees a clean end, not a truncation), the handshake timeout, a reset and garbage mid
handshake (the waiter fails, the app hears nothing), and flow control both ways. Session tickets
are ``test_tls_tickets.py``'s.
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
from support.tlslayer import (
    BIG,
    DEADLINE,
    LOOPS,
    App,
    Server,
    connect,
    recv_exactly,
    runner,
    tls_connect,
)

from ftpd.server.tls_control import TlsControl


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
    return runner(request.param)


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
