"""TLS 1.3 session tickets on demand (``ftpd.server.tickets``), through ftpd's control TLS layer
on loopback TCP: none at the control handshake, one per ``issue_ticket`` (a PROT P data
connection), resumable; nothing under TLS 1.2; and the fallback where tickets cannot be issued on
demand (8 at the handshake, as before).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trustme
from support.tlslayer import LOOPS, Server, connect, recv_exactly, runner


@pytest.fixture(params=sorted(LOOPS))
def run(request: pytest.FixtureRequest) -> Callable[[Awaitable[Any]], Any]:
    return runner(request.param)


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
