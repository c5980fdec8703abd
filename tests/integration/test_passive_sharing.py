"""Passive ports as a capacity (issue 23): one port waits for one session per client address.

A real server on loopback, clients bound to distinct loopback source addresses (127.0.0.x).
Checked: two sessions from different addresses handed the same port each get their own file,
byte for byte, while a third address that connects to the port gets nothing and the owners are
still served; a one-port range serves N pending transfers from N addresses at once; the same
address twice gets distinct ports, and 425 once every port already waits for it; behind a PROXY
balancer the data connection's header decides whose it is; a port is listened on again right
after transfers whose accepted sockets sit in TIME_WAIT; workers share the whole range.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
from typing import Any

import pytest
from integ_helpers import write_file
from support.client import TIMEOUT, Ctl, recv_all
from support.waits import wait_until

from ftpd.proto.proxy import V2_SIGNATURE


def _data(srv: Any, port: int, source: str) -> socket.socket:
    return socket.create_connection((srv.host, port), TIMEOUT, source_address=(source, 0))


def _session(srv: Any, source: str) -> Ctl:
    c = Ctl(srv.host, srv.port, source=source).login(srv.user, srv.password)
    assert c.code("TYPE I") == 200
    return c


def _nothing_for(sock: socket.socket) -> bytes:
    try:
        return recv_all(sock)
    except ConnectionResetError:
        return b""


def test_two_addresses_share_one_port_third_gets_nothing(factory: Any) -> None:
    srv = factory(pasv_count=1, data_timeout=10)
    files = {"a.bin": os.urandom(300_000), "b.bin": os.urandom(200_001)}
    for name, data in files.items():
        write_file(srv.root, name, data)
    a = _session(srv, "127.0.0.2")
    b = _session(srv, "127.0.0.3")
    try:
        port = a.epsv()
        assert b.epsv() == port  # the same (only) port waits for both
        # B connects before its RETR (the usual order); A sends RETR first, connects later.
        b_data = _data(srv, port, "127.0.0.3")
        a.send("RETR a.bin")
        # A third address gets nothing, and the owners keep waiting.
        thief = _data(srv, port, "127.0.0.4")
        assert _nothing_for(thief) == b""
        assert wait_until(lambda: "refused data connection from foreign 127.0.0.4" in srv.log())
        assert b.cmd("RETR b.bin").code == 150
        assert recv_all(b_data) == files["b.bin"]
        assert b.reply().code == 226
        a_data = _data(srv, port, "127.0.0.2")
        assert a.reply().code == 150
        assert recv_all(a_data) == files["a.bin"]
        assert a.reply().code == 226
    finally:
        a.close()
        b.close()
    assert srv.stop() == 0


def test_one_port_serves_n_pending_transfers(factory: Any) -> None:
    n = 12
    srv = factory(pasv_count=1, data_timeout=10)
    sources = [f"127.0.0.{10 + i}" for i in range(n)]
    payloads = {s: os.urandom(50_000 + i) for i, s in enumerate(sources)}
    for s, data in payloads.items():
        write_file(srv.root, f"{s}.bin", data)
    sessions = [_session(srv, s) for s in sources]
    try:
        ports = {c.epsv() for c in sessions}
        assert len(ports) == 1, ports
        port = ports.pop()
        for s, c in zip(sources, sessions, strict=True):
            c.send(f"RETR {s}.bin")  # all N wait for their data connection at once
        for s, c in reversed(list(zip(sources, sessions, strict=True))):
            conn = _data(srv, port, s)
            assert c.reply().code == 150
            assert recv_all(conn) == payloads[s], s
            assert c.reply().code == 226
    finally:
        for c in sessions:
            c.close()
    assert srv.stop() == 0


def test_same_address_gets_distinct_ports_then_425(factory: Any) -> None:
    srv = factory(pasv_count=2, data_timeout=10)
    write_file(srv.root, "f.bin", b"x" * 1000)
    one, two, three = (_session(srv, "127.0.0.2") for _ in range(3))
    other = _session(srv, "127.0.0.3")
    try:
        p1, p2 = one.epsv(), two.epsv()
        assert p1 != p2
        assert three.cmd("EPSV").code == 425  # both ports already wait for 127.0.0.2
        assert other.epsv() in (p1, p2)  # another address still has room on them
        # One transfer ends: its port is free for that address again.
        conn = _data(srv, p1, "127.0.0.2")
        assert one.cmd("RETR f.bin").code == 150
        assert recv_all(conn) == b"x" * 1000
        assert one.reply().code == 226
        p3 = three.epsv()
        assert p3 == p1
        conn = _data(srv, p3, "127.0.0.2")
        assert three.cmd("RETR f.bin").code == 150
        assert recv_all(conn) == b"x" * 1000
        assert three.reply().code == 226
    finally:
        for c in (one, two, three, other):
            c.close()
    assert srv.stop() == 0


def test_one_port_reused_at_once_despite_time_wait(factory: Any) -> None:
    """The server closes first after RETR: the accepted socket on the passive port sits in
    TIME_WAIT, and the next PASV must still get that port (SO_REUSEADDR)."""
    srv = factory(pasv_count=1)
    write_file(srv.root, "f.bin", b"y" * 5000)
    c = _session(srv, "127.0.0.1")
    try:
        for _ in range(5):
            conn = c.passive(extended=True)
            assert c.cmd("RETR f.bin").code == 150
            assert recv_all(conn) == b"y" * 5000
            assert c.reply().code == 226
    finally:
        c.close()
    assert srv.stop() == 0


BALANCER = "127.0.0.5"


def _v2(src: str, sport: int) -> bytes:
    body = struct.pack(
        "!4s4sHH",
        ipaddress.ip_address(src).packed,
        ipaddress.ip_address("127.0.0.1").packed,
        sport,
        21,
    )
    return V2_SIGNATURE + struct.pack("!BBH", 0x21, 0x11, len(body)) + body


def _behind_balancer(srv: Any, client: str, sport: int) -> Ctl:
    c = Ctl(srv.host, srv.port, source=BALANCER, greet=False)
    c.send_raw(_v2(client, sport))
    assert c.reply().code == 220
    c.login(srv.user, srv.password)
    assert c.code("TYPE I") == 200
    return c


def test_behind_balancer_data_header_decides(factory: Any) -> None:
    """All connections come from the balancer: the data connections' PROXY headers name the real
    clients, and each gets its own session's data; a header naming a third client gets nothing."""
    srv = factory(
        pasv_count=1,
        proxy_protocol="required",
        proxy_trusted=f"{BALANCER}/32",
        proxy_timeout=2,
    )
    write_file(srv.root, "a.bin", os.urandom(70_000))
    write_file(srv.root, "b.bin", os.urandom(90_000))
    a = _behind_balancer(srv, "192.0.2.1", 40001)
    b = _behind_balancer(srv, "192.0.2.2", 40002)
    try:
        port = a.epsv()
        assert b.epsv() == port
        thief = _data(srv, port, BALANCER)
        thief.sendall(_v2("198.51.100.9", 50000))
        b_data = _data(srv, port, BALANCER)
        b_data.sendall(_v2("192.0.2.2", 40012))
        a_data = _data(srv, port, BALANCER)
        a_data.sendall(_v2("192.0.2.1", 40011))
        assert a.cmd("RETR a.bin").code == 150
        assert b.cmd("RETR b.bin").code == 150
        assert recv_all(a_data) == (srv.root / "a.bin").read_bytes()
        assert recv_all(b_data) == (srv.root / "b.bin").read_bytes()
        assert a.reply().code == 226
        assert b.reply().code == 226
        assert _nothing_for(thief) == b""
        assert wait_until(lambda: "refused data connection from foreign 198.51.100.9" in srv.log())
    finally:
        a.close()
        b.close()
    assert srv.stop() == 0


@pytest.mark.parametrize("workers", [2])
def test_workers_share_the_whole_range(factory: Any, workers: int) -> None:
    """Eight sessions from one address need eight ports of an eight-port range at once: with a
    fixed slice per worker, the kernel's uneven spread of sessions over workers (SO_REUSEPORT
    hashing) would leave one worker short; the shared range serves them all, and a ninth is 425."""
    srv = factory(pasv_count=8, workers=workers)
    sessions = [_session(srv, "127.0.0.2") for _ in range(9)]
    try:
        ports = [c.epsv() for c in sessions[:8]]
        assert len(set(ports)) == 8
        assert sessions[8].cmd("EPSV").code == 425
    finally:
        for c in sessions:
            c.close()
    assert srv.stop() == 0
