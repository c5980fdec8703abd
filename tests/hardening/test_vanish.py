"""Clients that vanish mid-operation: every resource is freed (the server's fd count returns to
its baseline), uploads are not committed, and the server carries on.

Each scenario is repeated ``ROUNDS`` times on one server so that a leak of a single fd per
occurrence shows as ``ROUNDS`` extra fds. A vanishing client closes with RST (SO_LINGER 0), as a
crashed client or a cut cable looks to the server.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trustme
from support.client import Ctl
from support.proc import fds, settle_fds, upload_bytes
from support.waits import wait_until

ROUNDS = 12
BIG = 8 * 1024 * 1024


def _rst(s: socket.socket) -> None:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()


def _check_rounds(srv: Any, figures: Any, name: str, scenario: Callable[[], None]) -> None:
    fd0 = fds(srv.pid)
    for _ in range(ROUNDS):
        scenario()
    peak = fds(srv.pid)
    fd1 = settle_fds(srv.pid, fd0, timeout=8)
    figures.record(
        f"vanish: {name}", rounds=ROUNDS, fds_before=fd0, fds_right_after=peak, fds_settled=fd1
    )
    assert fd1 <= fd0, f"{name}: {fd1 - fd0} fds leaked over {ROUNDS} rounds"
    # The server is still fine: a new session works.
    with Ctl(srv.host, srv.port).login(srv.user, srv.password) as c:
        assert c.cmd("NOOP").code == 200


@pytest.fixture
def srv(servers: Any) -> Any:
    s = servers(data_timeout=5, log_level="warning")
    (s.root / "big.bin").write_bytes(b"0123456789abcde\n" * (BIG // 16))
    (s.root / "old.txt").write_bytes(b"old version\n")
    return s


@pytest.mark.parametrize("mode", ["I", "A"])
def test_vanish_mid_retr(srv: Any, figures: Any, mode: str) -> None:
    def scenario() -> None:
        c = Ctl(srv.host, srv.port).login(srv.user, srv.password)
        c.cmd(f"TYPE {mode}")
        d = c.data_socket()
        assert c.cmd("RETR big.bin").code == 150
        got = 0
        while got < 512 * 1024:
            got += len(d.recv(65536))
        _rst(d)
        _rst(c.sock)

    _check_rounds(srv, figures, f"mid-RETR TYPE {mode}", scenario)


def test_vanish_mid_stor(srv: Any, figures: Any) -> None:
    def scenario() -> None:
        c = Ctl(srv.host, srv.port).login(srv.user, srv.password)
        c.cmd("TYPE I")
        d = c.data_socket()
        assert c.cmd("STOR old.txt").code == 150
        d.sendall(b"new partial content " * 50_000)
        # Vanish once the server is writing the upload (its upload file has data).
        assert wait_until(lambda: upload_bytes(srv.pid, srv.root) > 0, 5)
        _rst(d)
        _rst(c.sock)

    _check_rounds(srv, figures, "mid-STOR", scenario)
    assert (srv.root / "old.txt").read_bytes() == b"old version\n"
    leftovers = [p.name for p in srv.root.iterdir() if p.name.startswith(".ftpd-upload-")]
    assert leftovers == []


def test_vanish_mid_list(srv: Any, figures: Any) -> None:
    d = srv.root / "many"
    d.mkdir()
    for i in range(3000):
        (d / f"file-with-a-longish-name-{i:05d}.txt").touch()

    def scenario() -> None:
        c = Ctl(srv.host, srv.port).login(srv.user, srv.password)
        d = c.data_socket()
        d.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        assert c.cmd("LIST many").code == 150
        d.recv(1000)
        _rst(d)
        _rst(c.sock)

    _check_rounds(srv, figures, "mid-LIST", scenario)


def test_vanish_with_passive_port_open(servers: Any, figures: Any) -> None:
    """EPSV, then the client is gone before any transfer: the listener must be closed and its
    port returned to the pool. The pool has 4 ports, so 12 rounds fail if a port is kept."""
    srv = servers(pasv_count=4, log_level="warning")

    def scenario() -> None:
        before = fds(srv.pid)
        c = Ctl(srv.host, srv.port).login(srv.user, srv.password)
        c.epsv()  # asserts 229: a free port was found
        _rst(c.sock)
        # The server has seen the vanish (control and listener closed) before the next round.
        settle_fds(srv.pid, before, timeout=5)

    _check_rounds(srv, figures, "after EPSV", scenario)


def test_vanish_waiting_for_data_connection(srv: Any, figures: Any) -> None:
    """RETR after EPSV, the data connection never comes, the client is gone."""

    def scenario() -> None:
        c = Ctl(srv.host, srv.port).login(srv.user, srv.password)
        c.epsv()
        c.send_raw(b"RETR old.txt\r\n")
        # NOOP is answered while a transfer waits for its data connection: the RETR is running.
        assert c.cmd("NOOP").code == 200
        _rst(c.sock)

    _check_rounds(srv, figures, "waiting for the data connection", scenario)


# ------------------------------------------------------------------------------ TLS
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _client_hello(ca: Path) -> bytes:
    ctx = ssl.create_default_context(cafile=str(ca))
    obj = ctx.wrap_bio(ssl.MemoryBIO(), out := ssl.MemoryBIO(), server_hostname="127.0.0.1")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return out.read()


@pytest.fixture
def tls_srv(servers: Any, pki: tuple[Path, Path, Path]) -> Any:
    ca, cert, key = pki
    port = _free_port()
    s = servers(
        tls="explicit",
        tls_cert=str(cert),
        tls_key=str(key),
        implicit_tls_port=port,
        tls_handshake_timeout=2,
        data_timeout=5,
        tls_require_session_reuse=False,
        log_level="warning",
    )
    s.implicit_port = port
    (s.root / "big.bin").write_bytes(b"x" * BIG)
    return s


def test_vanish_mid_tls_handshake(tls_srv: Any, pki: tuple[Path, Path, Path], figures: Any) -> None:
    ca = pki[0]
    hello = _client_hello(ca)
    srv = tls_srv

    def auth_then_half_hello() -> None:
        c = Ctl(srv.host, srv.port)
        assert c.cmd("AUTH TLS").code == 234
        c.send_raw(hello[: len(hello) // 2])
        time.sleep(0.01)  # pacing only: the assertions (fds, server alive) hold either way
        _rst(c.sock)

    def implicit_half_hello() -> None:
        s = socket.create_connection((srv.host, srv.implicit_port), timeout=5)
        s.sendall(hello[: len(hello) // 2])
        time.sleep(0.01)  # pacing only: the assertions (fds, server alive) hold either way
        _rst(s)

    def implicit_garbage() -> None:
        s = socket.create_connection((srv.host, srv.implicit_port), timeout=5)
        s.sendall(b"USER anonymous\r\n" + bytes(range(256)))
        _rst(s)

    _check_rounds(srv, figures, "mid-TLS handshake (AUTH TLS)", auth_then_half_hello)
    _check_rounds(srv, figures, "mid-TLS handshake (implicit)", implicit_half_hello)
    _check_rounds(srv, figures, "garbage on the implicit port", implicit_garbage)


def test_silent_tls_handshake_times_out(tls_srv: Any, figures: Any) -> None:
    """AUTH TLS then nothing, and a silent implicit-TLS connection: closed at the handshake
    timeout (2 s), not held for the 60 s login timeout."""
    srv = tls_srv
    fd0 = fds(srv.pid)
    c = Ctl(srv.host, srv.port)
    assert c.cmd("AUTH TLS").code == 234
    s = socket.create_connection((srv.host, srv.implicit_port), timeout=5)
    t0 = time.monotonic()
    assert c.closed(8), "explicit: still open after the handshake timeout"
    s.settimeout(8)
    try:
        assert s.recv(100) == b"", "implicit: data before a handshake"
    except ConnectionResetError:
        pass
    waited = time.monotonic() - t0
    c.close()
    s.close()
    assert waited < 6, waited
    assert settle_fds(srv.pid, fd0) <= fd0


def test_vanish_mid_prot_p_data_handshake(
    tls_srv: Any, pki: tuple[Path, Path, Path], figures: Any
) -> None:
    ca = pki[0]
    srv = tls_srv
    ctx = ssl.create_default_context(cafile=str(ca))
    hello = _client_hello(ca)

    def scenario() -> None:
        c = Ctl(srv.host, srv.port)
        assert c.cmd("AUTH TLS").code == 234
        c.sock = ctx.wrap_socket(c.sock, server_hostname="127.0.0.1")
        c.login(srv.user, srv.password)
        assert c.cmd("PBSZ 0").code == 200
        assert c.cmd("PROT P").code == 200
        d = c.data_socket()
        assert c.cmd("RETR big.bin").code == 150
        d.sendall(hello[:40])
        time.sleep(0.01)  # pacing only: the assertions (fds, server alive) hold either way
        _rst(d)
        _rst(c.sock)

    _check_rounds(srv, figures, "mid-TLS handshake (PROT P data)", scenario)


def test_plaintext_pipelined_after_auth_tls_is_dropped(
    tls_srv: Any, pki: tuple[Path, Path, Path]
) -> None:
    """STARTTLS command injection: commands sent in plain text in the same packet as AUTH TLS
    must not run once the connection is under TLS (they were never protected)."""
    ca = pki[0]
    ctx = ssl.create_default_context(cafile=str(ca))
    srv = tls_srv
    c = Ctl(srv.host, srv.port)
    # More lines than the server queues, so that some are still unread when TLS starts.
    c.send_raw(b"AUTH TLS\r\n" + b"NOOP\r\n" * 40 + b"USER injected\r\nNOOP\r\n")
    assert c.reply().code == 234
    c.sock = ctx.wrap_socket(c.sock, server_hostname="127.0.0.1")
    c.buf = b""
    r = c.cmd("SYST")
    assert r.code == 215, f"a plain-text command ran under TLS: {r}"
    assert c.cmd("PASS x").code == 503  # no USER was taken from the plain-text part
    c.close()
