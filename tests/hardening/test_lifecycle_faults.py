"""Fault injection at every lifecycle state: whatever ends a session, everything comes back.

An in-process server (so its counters can be read) is driven by many raw connections, each
brought to one state of the session lifecycle (``ftpd/server/lifecycle.py``): PROXY header,
greeting, login, TLS handshake (explicit and implicit), ready with a passive port open, waiting
for a data connection, and a download and an upload in progress. Then one fault hits them all:

- ``reset``: the client vanishes (RST, SO_LINGER 0) on every socket it has;
- ``timeout``: the client goes silent, and the server's timeouts (header, handshake, login, idle,
  data) must end each session by themselves;
- ``exception``: our own code raises where that state's next step runs (a performer, a transfer,
  the IO entry points); the session answers 451 and carries on, or is dropped;
- ``shutdown``: the server shuts down with all of them open.

Afterwards every session slot, per-IP and per-user count, channel, passive port, receive buffer,
implicit-TLS hand-off, task and file descriptor is back at its starting value.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trustme

from ftpd.config import Config
from ftpd.server import data as datamod
from ftpd.server import proxyhdr
from ftpd.server.control import ControlChannel
from ftpd.server.data import PassivePool
from ftpd.server.host import SessionHost
from ftpd.server.server import Server
from ftpd.server.transfer import TransferTask

ROUNDS = 4  # connections per state and fault
USER, PASSWORD = "u", "p"
PROXY_PEER = "127.0.0.2"  # the "balancer": its connections start with a PROXY header
BIG = 16 * 1024 * 1024
TIMEOUT = 1.0  # every server timeout in these tests


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    d = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    ca.cert_pem.write_to_path(str(d / "ca.pem"))
    leaf.private_key_pem.write_to_path(str(d / "key.pem"))
    leaf.cert_chain_pems[0].write_to_path(str(d / "cert.pem"))
    for blob in leaf.cert_chain_pems[1:]:
        blob.write_to_path(str(d / "cert.pem"), append=True)
    return d / "ca.pem", d / "cert.pem", d / "key.pem"


class Probe:
    """A server in this process, and the figures that must come back to their start."""

    def __init__(self, srv: Server, port: int, implicit: int) -> None:
        self.srv = srv
        self.port = port
        self.implicit = implicit

    def figures(self) -> dict[str, int]:
        h = self.srv.host
        implicit = self.srv._implicit
        return {
            "slots": h.slots_open,
            "channels": len(h.channels),
            "sessions": h.counters.total(),
            "per_ip": h.counters.ip_count("127.0.0.1") + h.counters.ip_count(PROXY_PEER),
            "per_user": h.counters.user_count(USER),
            "passive_ports": len(h.pasv_pool.in_use),
            "receive_buffers": datamod.BUFFERS.out,
            "handoffs": len(implicit.handoffs) if implicit is not None else 0,
            "tasks": len(asyncio.all_tasks()),
            "fds": _fds(),
        }

    async def settled(self, start: dict[str, int], timeout: float = 15.0) -> dict[str, int]:
        """Wait for every figure to be back at ``start``; the last figures seen."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            now = self.figures()
            if now == start or loop.time() > deadline:
                return now
            await asyncio.sleep(0.05)


def _config(root: Path, pki: tuple[Path, Path, Path], implicit: int) -> Config:
    first = 65300 + (os.getpid() % 10) * 20
    return Config(
        host="127.0.0.1",
        port=0,
        root=str(root),
        user=USER,
        password=PASSWORD,
        login_fail_delay=0,
        max_per_ip=0,
        pasv_ports=f"{first}-{first + 19}",
        tls="explicit",
        tls_cert=str(pki[1]),
        tls_key=str(pki[2]),
        tls_require_session_reuse=False,
        implicit_tls_port=implicit,
        tls_handshake_timeout=TIMEOUT,
        login_timeout=TIMEOUT,
        idle_timeout=TIMEOUT,
        data_timeout=TIMEOUT,
        proxy_protocol="optional",
        proxy_trusted=f"{PROXY_PEER}/32",
        proxy_timeout=TIMEOUT,
        log_level="warning",
    )


@pytest.fixture
async def probe(tmp_path: Path, pki: tuple[Path, Path, Path]) -> AsyncIterator[Probe]:
    root = tmp_path / "home"
    root.mkdir()
    (root / "big.bin").write_bytes(b"x" * BIG)
    implicit = _free_port()
    srv = Server(_config(root, pki, implicit))
    addrs = await srv.start()
    p = Probe(srv, addrs[0][1], implicit)
    p.fds_before_start = _fds() - 2  # type: ignore[attr-defined]  # minus the two listeners
    try:
        yield p
    finally:
        if srv._sweeper is not None and not srv._sweeper.done():
            await srv.shutdown(0)


# ------------------------------------------------------------------------------ a raw client
class Conn:
    """One client: its control connection and any data connection, all raw sockets."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.data: list[socket.socket] = []

    async def reply(self) -> int:
        while True:
            line = await asyncio.wait_for(self.reader.readline(), 10)
            if not line:
                raise ConnectionResetError("closed")
            if line[3:4] == b" ":
                return int(line[:3])

    async def cmd(self, line: str) -> int:
        self.writer.write(line.encode() + b"\r\n")
        return await self.reply()

    async def login(self) -> None:
        assert await self.cmd(f"USER {USER}") == 331
        assert await self.cmd(f"PASS {PASSWORD}") == 230

    async def epsv_data(self) -> None:
        self.writer.write(b"EPSV\r\n")
        line = await asyncio.wait_for(self.reader.readline(), 10)
        assert line.startswith(b"229"), line
        port = int(line.split(b"|||")[1].split(b"|")[0])
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a download cannot finish
        s.setblocking(False)
        self.data.append(s)
        await asyncio.get_running_loop().sock_connect(s, ("127.0.0.1", port))

    def sockets(self) -> list[socket.socket]:
        return [self.writer.get_extra_info("socket"), *self.data]

    def reset(self) -> None:
        for s in self.sockets():
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
            except OSError:
                pass
        for s in self.data:
            s.close()
        self.writer.transport.abort()

    async def wait_closed_by_server(self) -> None:
        """Until the server ends the control connection (EOF or reset)."""
        try:
            while await asyncio.wait_for(self.reader.read(65536), 15):
                pass
        except (ConnectionError, TimeoutError):
            pass

    def close(self) -> None:
        for s in self.data:
            s.close()
        self.writer.transport.abort()


async def _connect(p: Probe, *, source: str = "127.0.0.1", implicit: bool = False) -> Conn:
    port = p.implicit if implicit else p.port
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, local_addr=(source, 0), limit=1 << 20
    )
    return Conn(reader, writer)


# ------------------------------------------------------------------------------ the states
async def _proxy_header(p: Probe) -> Conn:
    c = await _connect(p, source=PROXY_PEER)
    c.writer.write(b"PROXY TCP4 192.0.2.7 ")  # a header, not yet complete
    return c


async def _greeting(p: Probe) -> Conn:
    return await _connect(p)  # the 220 is on its way; nothing sent yet


async def _login(p: Probe) -> Conn:
    c = await _connect(p)
    assert await c.reply() == 220
    assert await c.cmd(f"USER {USER}") == 331
    return c


async def _tls_handshake(p: Probe) -> Conn:
    c = await _connect(p)
    assert await c.reply() == 220
    assert await c.cmd("AUTH TLS") == 234
    return c  # and no ClientHello


async def _implicit_handshake(p: Probe) -> Conn:
    return await _connect(p, implicit=True)  # admitted at accept; no ClientHello


async def _ready(p: Probe) -> Conn:
    c = await _connect(p)
    assert await c.reply() == 220
    await c.login()
    assert await c.cmd("EPSV") == 229  # a passive port held
    return c


async def _waiting_for_data(p: Probe) -> Conn:
    c = await _connect(p)
    assert await c.reply() == 220
    await c.login()
    assert await c.cmd("EPSV") == 229
    c.writer.write(b"RETR big.bin\r\n")  # the data connection never comes
    return c


async def _download(p: Probe) -> Conn:
    c = await _connect(p)
    assert await c.reply() == 220
    await c.login()
    assert await c.cmd("TYPE I") == 200
    await c.epsv_data()
    assert await c.cmd("RETR big.bin") == 150  # and the data is never read
    return c


async def _upload(p: Probe) -> Conn:
    c = await _connect(p)
    assert await c.reply() == 220
    await c.login()
    await c.epsv_data()
    assert await c.cmd("STOR up.bin") == 150
    await asyncio.get_running_loop().sock_sendall(c.data[0], b"y" * 300_000)
    return c  # never ends the upload


STATES: dict[str, Callable[[Probe], Awaitable[Conn]]] = {
    "proxy-header": _proxy_header,
    "greeting": _greeting,
    "login": _login,
    "tls-handshake": _tls_handshake,
    "implicit-tls-handshake": _implicit_handshake,
    "ready": _ready,
    "waiting-for-data": _waiting_for_data,
    "download": _download,
    "upload": _upload,
}


async def _open_all(p: Probe) -> list[Conn]:
    conns = []
    for make in STATES.values():
        conns += await asyncio.gather(*(make(p) for _ in range(ROUNDS)))
    return conns


async def _quit_quietly(c: Conn) -> None:
    try:
        c.writer.write(b"QUIT\r\n")
        await c.wait_closed_by_server()
    finally:
        c.close()


# ------------------------------------------------------------------------------ the faults
async def test_reset_in_every_state(probe: Probe) -> None:
    start = probe.figures()
    conns = await _open_all(probe)
    assert probe.figures()["slots"] >= len(conns) - ROUNDS  # (PROXY headers: not admitted yet)
    for c in conns:
        c.reset()
    assert await probe.settled(start) == start


async def test_timeout_in_every_state(probe: Probe) -> None:
    start = probe.figures()
    conns = await _open_all(probe)
    # Silence: every session must be ended by the server's own timeouts.
    await asyncio.gather(*(c.wait_closed_by_server() for c in conns))
    for c in conns:
        c.close()
    assert await probe.settled(start) == start


async def test_exception_in_every_state(probe: Probe, monkeypatch: pytest.MonkeyPatch) -> None:
    start = probe.figures()

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("injected fault")

    async def aboom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("injected fault")

    # Each state's next step fails; the session answers 451 (or is dropped), never hangs.
    with monkeypatch.context() as m:  # the IO layer's entry points: the connection is dropped
        m.setattr(proxyhdr.HeaderBuffer, "feed", boom)
        c = await _proxy_header(probe)
        c.writer.write(b"192.0.2.8 40000 21\r\n")
        await c.wait_closed_by_server()
        c.close()
        m.setattr(SessionHost, "attach", boom)
        for _ in range(ROUNDS):
            c = await _greeting(probe)
            await c.wait_closed_by_server()
            c.close()
    for state, target, name, fault, verb in [
        ("login", SessionHost, "login_now", boom, f"PASS {PASSWORD}"),
        ("tls-handshake", ControlChannel, "start_tls", aboom, "AUTH TLS"),
        ("ready", PassivePool, "open", boom, "EPSV"),
    ]:
        conns = [await _login(probe) for _ in range(ROUNDS)]
        with monkeypatch.context() as m:
            m.setattr(target, name, fault)
            for c in conns:
                if state == "ready":
                    assert await c.cmd(f"PASS {PASSWORD}") == 230
                if state == "tls-handshake":
                    assert await c.cmd(verb) == 234  # then the upgrade fails
                    assert await c.reply() == 451
                else:
                    assert await c.cmd(verb) == 451, state
        await asyncio.gather(*(_quit_quietly(c) for c in conns))
    # A transfer task that raises: 451 as its final reply, and the session goes on.
    with monkeypatch.context() as m:
        m.setattr(TransferTask, "_progress", boom)
        for make in (_download, _upload):
            conns = [await make(probe) for _ in range(ROUNDS)]
            for c in conns:
                if make is _upload:
                    c.data[0].close()
                assert await c.reply() == 451
                assert await c.cmd("NOOP") == 200
            await asyncio.gather(*(_quit_quietly(c) for c in conns))
    # The implicit-TLS hand-off: a failure at admission leaves no hand-off and no fd behind.
    with monkeypatch.context() as m:
        m.setattr(SessionHost, "admit", boom)
        for _ in range(ROUNDS):
            c = await _implicit_handshake(probe)
            await c.wait_closed_by_server()
            c.close()
    assert await probe.settled(start) == start


async def test_shutdown_in_every_state(probe: Probe) -> None:
    conns = await _open_all(probe)
    await probe.srv.shutdown(0.2)
    await asyncio.gather(*(c.wait_closed_by_server() for c in conns))
    for c in conns:
        c.close()
    start = {
        "slots": 0,
        "channels": 0,
        "sessions": 0,
        "per_ip": 0,
        "per_user": 0,
        "passive_ports": 0,
        "receive_buffers": 0,
        "handoffs": 0,
    }
    got = await probe.settled({**probe.figures(), **start, "fds": probe.fds_before_start})  # type: ignore[attr-defined]
    assert {k: got[k] for k in start} == start
    assert got["fds"] == probe.fds_before_start  # type: ignore[attr-defined]
