"""Issue 16, items 1 and 2: a session's slot is given back on every exit path.

1. A reset during the TLS handshake (after ``AUTH TLS``, or on the implicit-TLS port) and a
   handshake that merely times out must release the admission slot and the per-IP count; the
   implicit-TLS port counts against ``max_per_ip`` from accept, not from the end of the handshake.
2. A client that stops reading (a tiny receive window, a flood of commands whose replies it never
   reads) is aborted at its timeout and its slot freed at once: ``close()`` must not wait for a
   write buffer that will never drain.

Each test ends with a well-behaved login from the *same* address as the abuse, which fails with
``421 Too many connections`` while a leaked slot is still counted.
"""

from __future__ import annotations

import socket
import ssl
import time
from pathlib import Path
from typing import Any

import pytest
import trustme
from support.client import Closed, Ctl
from support.proc import fds, settle_fds
from support.waits import wait_until

MAX_PER_IP = 3
EXTRA = 5  # abuse max_per_ip + EXTRA times: any leak locks the address out


def _rst(s: socket.socket) -> None:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()


def _can_login(srv: Any) -> bool:
    """A normal session from 127.0.0.1 gets its greeting and logs in (no 421)."""
    try:
        c = Ctl(srv.host, srv.port, timeout=5, greet=False)
    except OSError:
        return False
    try:
        if c.reply().code != 220:
            return False
        c.login(srv.user, srv.password)
        return c.cmd("NOOP").code == 200
    except (Closed, OSError, AssertionError):
        return False
    finally:
        c.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    d = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    ca.cert_pem.write_to_path(str(d / "ca.pem"))
    leaf.private_key_pem.write_to_path(str(d / "key.pem"))
    with open(d / "cert.pem", "wb") as f:
        for blob in leaf.cert_chain_pems:
            f.write(blob.bytes())
    return d / "ca.pem", d / "cert.pem", d / "key.pem"


def _client_hello(ca: Path) -> bytes:
    ctx = ssl.create_default_context(cafile=str(ca))
    obj = ctx.wrap_bio(ssl.MemoryBIO(), out := ssl.MemoryBIO(), server_hostname="127.0.0.1")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return out.read()


def _tls_srv(servers: Any, pki: tuple[Path, Path, Path], loop: str, handshake: float = 1) -> Any:
    _, cert, key = pki
    port = _free_port()
    s = servers(
        tls="explicit",
        tls_cert=str(cert),
        tls_key=str(key),
        implicit_tls_port=port,
        tls_handshake_timeout=handshake,
        max_per_ip=MAX_PER_IP,
        loop=loop,
        log_level="warning",
    )
    s.implicit_port = port
    return s


@pytest.mark.parametrize("loop", ["auto", "asyncio"])
def test_reset_during_auth_tls_handshake_frees_the_slot(
    servers: Any, pki: tuple[Path, Path, Path], loop: str
) -> None:
    """16.1: AUTH TLS, read the 234, RST (half a ClientHello sent, or none)."""
    srv = _tls_srv(servers, pki, loop)
    hello = _client_hello(pki[0])
    fd0 = fds(srv.pid)
    for i in range(MAX_PER_IP + EXTRA):
        c = Ctl(srv.host, srv.port)
        assert c.cmd("AUTH TLS").code == 234
        if i % 2:
            c.send_raw(hello[: len(hello) // 2])
        _rst(c.sock)
    assert wait_until(lambda: _can_login(srv), 3), "address locked out after handshake resets"
    assert settle_fds(srv.pid, fd0) <= fd0


@pytest.mark.parametrize("loop", ["auto", "asyncio"])
def test_auth_tls_handshake_timeout_frees_the_slot(
    servers: Any, pki: tuple[Path, Path, Path], loop: str
) -> None:
    """16.1: AUTH TLS, then silence until tls_handshake_timeout (1 s) ends the handshake."""
    srv = _tls_srv(servers, pki, loop)
    held = []
    for _ in range(MAX_PER_IP):
        c = Ctl(srv.host, srv.port)
        assert c.cmd("AUTH TLS").code == 234
        held.append(c)
    t0 = time.monotonic()
    for c in held:
        assert c.closed(6), "handshake not ended at its timeout"
    # All closed by the handshake timeout: the address has its slots back (each repeated round
    # would lock it out further if a slot leaked).
    for _ in range(2):
        held = [Ctl(srv.host, srv.port) for _ in range(MAX_PER_IP)]
        for c in held:
            assert c.cmd("AUTH TLS").code == 234
        for c in held:
            assert c.closed(6)
            c.close()
    assert wait_until(lambda: _can_login(srv), 3), "address locked out after handshake timeouts"
    assert time.monotonic() - t0 < 20


@pytest.mark.parametrize("loop", ["auto", "asyncio"])
def test_implicit_tls_counts_per_ip_and_frees_on_reset(
    servers: Any, pki: tuple[Path, Path, Path], loop: str
) -> None:
    """16.1: the implicit-TLS port counts against max_per_ip from accept; resets mid-handshake
    (and handshakes that time out) give the slot back."""
    # A handshake timeout long enough for the silent connections to be still there when
    # counted, on a loaded machine.
    srv = _tls_srv(servers, pki, loop, handshake=4)
    hello = _client_hello(pki[0])
    fd0 = fds(srv.pid)
    # max_per_ip silent connections on the implicit port hold the address's slots...
    silent = [socket.create_connection((srv.host, srv.implicit_port)) for _ in range(MAX_PER_IP)]
    # Once the server has accepted them (its fd count shows it), the next connection from this
    # address must be refused. (A probe sent earlier could race them to the last slot.)
    assert wait_until(lambda: fds(srv.pid) >= fd0 + MAX_PER_IP, 3)
    with Ctl(srv.host, srv.port) as c:
        assert c.greeting is not None and c.greeting.code == 421, (
            "handshakes in progress not counted against max_per_ip"
        )
    for s in silent:
        _rst(s)
    # ...and resets mid-handshake, many more than the limit, leak none of them.
    for i in range(MAX_PER_IP + EXTRA):
        s = socket.create_connection((srv.host, srv.implicit_port))
        if i % 2:
            s.sendall(hello[: len(hello) // 2])
        _rst(s)
    assert wait_until(lambda: _can_login(srv), 3), "address locked out after implicit-TLS resets"
    # Silent until the handshake timeout: closed, then counted no more.
    silent = [socket.create_connection((srv.host, srv.implicit_port)) for _ in range(MAX_PER_IP)]
    for s in silent:
        s.settimeout(10)
        try:
            assert s.recv(100) == b""
        except ConnectionResetError:
            pass
        s.close()
    assert wait_until(lambda: _can_login(srv), 3), "address locked out after implicit timeouts"
    assert settle_fds(srv.pid, fd0) <= fd0


def _stuffed(srv: Any, rcvbuf: int = 2048) -> socket.socket:
    """A control connection with a tiny receive window that will never read."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect((srv.host, srv.port))
    return s


def _flood(s: socket.socket, data: bytes, seconds: float = 1.0) -> int:
    """Send ``data`` until the server stops taking it (it stops reading) or ``seconds`` pass."""
    s.setblocking(False)
    sent = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            sent += s.send(data)
        except BlockingIOError:
            time.sleep(0.01)  # retry pace while the server does not read
    return sent


def test_login_timeout_aborts_a_client_that_stops_reading(servers: Any) -> None:
    """16.2: 5,000 HELP, never read; the slot is freed within login_timeout + a small bound."""
    login_timeout = 2
    srv = servers(max_per_ip=1, login_timeout=login_timeout, log_level="warning")
    fd0 = fds(srv.pid)
    s = _stuffed(srv)
    t0 = time.monotonic()
    _flood(s, b"HELP\r\n" * 5000)
    assert wait_until(lambda: _can_login(srv), login_timeout + 4), "slot held past the login timeout"
    assert time.monotonic() - t0 < login_timeout + 5
    s.close()
    assert settle_fds(srv.pid, fd0) <= fd0


def _stuck_on_stat(srv: Any, big: Path) -> tuple[socket.socket, Any]:
    """A logged-in session that asked STAT of ``big`` six times and never reads the replies."""
    s = _stuffed(srv)
    s.settimeout(5)
    f = s.makefile("rb")
    assert f.readline().startswith(b"220")
    s.sendall(f"USER {srv.user}\r\n".encode())
    assert f.readline().startswith(b"331")
    s.sendall(f"PASS {srv.password}\r\n".encode())
    assert f.readline().startswith(b"230")
    # Each reply is ~1.4 MB: the first ones fill the kernel's socket buffers, the rest wait in
    # the server's write buffer, which never drains.
    s.sendall(f"STAT {big.name}\r\n".encode() * 6)
    return s, f


def _big_dir(srv: Any) -> Path:
    big = srv.root / "big"
    big.mkdir()
    for i in range(20000):
        (big / f"entry-with-a-long-name-{i:06d}.txt").touch()
    return big


def test_replies_unread_past_data_timeout_abort_the_session(servers: Any) -> None:
    """16.2: an output buffer over its cap for too long aborts the session, even when the idle
    timeout is far away (here 60 s; the cap holds for data_timeout, 2 s)."""
    srv = servers(max_per_ip=1, idle_timeout=60, data_timeout=2, log_level="warning")
    big = _big_dir(srv)
    fd0 = fds(srv.pid)
    s, f = _stuck_on_stat(srv, big)
    t0 = time.monotonic()
    assert wait_until(lambda: _can_login(srv), 2 + 5), "slot held by a client that stopped reading"
    assert time.monotonic() - t0 < 2 + 6
    f.close()
    s.close()
    assert settle_fds(srv.pid, fd0) <= fd0


def test_idle_timeout_aborts_sessions_that_stop_reading_a_huge_stat(servers: Any) -> None:
    """16.2: logged-in sessions ask STAT of a big directory and stop reading: freed after
    idle_timeout (the replies never drain, so a graceful close would hold them for ever)."""
    idle = 2
    n = 3
    srv = servers(max_per_ip=n, idle_timeout=idle, log_level="warning")
    big = _big_dir(srv)
    fd0 = fds(srv.pid)
    stuck = [_stuck_on_stat(srv, big) for _ in range(n)]
    t0 = time.monotonic()
    assert wait_until(lambda: _can_login(srv), idle + 5), "slots held past the idle timeout"
    assert time.monotonic() - t0 < idle + 6
    for s, f in stuck:
        f.close()
        s.close()
    assert settle_fds(srv.pid, fd0) <= fd0
