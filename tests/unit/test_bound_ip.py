"""A session's local address: the listener's own when it is bound to one address (no
``getsockname`` per connection), the connection's when it listens on a wildcard. Either way PASV
names the address the client reached, where its data connection must go."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from support.server import pasv_block

from ftpd.config import Config
from ftpd.server import server as servermod


async def _line(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.readline(), 5)


async def _pasv_from(srv: servermod.Server, port: int, address: str) -> tuple[str, str]:
    """(the session's local_ip, the address PASV gives) for a client connecting to ``address``."""
    reader, writer = await asyncio.open_connection(address, port)
    try:
        assert (await _line(reader)).startswith(b"220")
        for line, code in ((b"USER u\r\n", b"331"), (b"PASS p\r\n", b"230"), (b"PASV\r\n", b"227")):
            writer.write(line)
            reply = await _line(reader)
            assert reply.startswith(code), reply
        nums = reply.split(b"(")[1].split(b")")[0].decode().split(",")
        (ch,) = srv.host.channels
        return ch.session.local_ip, ".".join(nums[:4])
    finally:
        writer.close()


@pytest.mark.parametrize(
    ("listen", "connect", "bound"),
    [
        ("127.0.0.1", "127.0.0.1", "127.0.0.1"),
        ("0.0.0.0", "127.0.0.2", None),  # a wildcard: the address the client reached
        ("0.0.0.0", "127.0.0.3", None),
    ],
)
async def test_local_address(tmp_path: Path, listen: str, connect: str, bound: str | None) -> None:
    with pasv_block() as ports:
        cfg = Config(root=str(tmp_path), user="u", password="p", host=listen, port=0,
                     login_fail_delay=0, log_level="warning",
                     pasv_ports=f"{ports[0]}-{ports[-1]}")  # fmt: skip
        srv = servermod.Server(cfg)
        port = (await srv.start())[0][1]
        try:
            assert srv.host.bound_ip == bound
            assert await _pasv_from(srv, port, connect) == (connect, connect)
        finally:
            await srv.shutdown()
