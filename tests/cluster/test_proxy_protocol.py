"""PROXY protocol in a real ftpd process, driven by hand-built headers (no HAProxy needed).

The "balancer" is a socket bound to 127.0.0.5, the only trusted address; the headers name client
addresses such as 192.0.2.x that never connect themselves. Checked: the greeting waits for the
header, the real IP reaches the logs and the per-IP limit, the data connection check compares
the real IPs of both headers (a thief behind the same balancer is refused), untrusted peers'
headers are not honoured, ``required`` closes a headerless trusted peer, v2 LOCAL is accepted.

The implicit FTPS listener behind the balancer: the header and the TLS ClientHello leave in one
``send()`` (so the server must read exactly the header from the raw socket), on control and PROT P
data connections, with v1 and v2, under asyncio and uvloop. Also covered: headers in pieces
(waited for without polling), refusals (direct TLS under ``required``, broken headers, the
header timeout), untrusted peers, ``optional``, the bound on connections waiting for their
header, and shutdown while some wait.
"""

from __future__ import annotations

import ftplib
import io
import ipaddress
import re
import socket
import ssl
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme
from support.proc import cpu_seconds, fds, settle_fds
from support.waits import wait_until

from ftpd.proto.proxy import V2_SIGNATURE

BALANCER = "127.0.0.5"
PASV = "65340-65349"


def v2(src: str, sport: int = 40000, dst: str = "127.0.0.1", dport: int = 21) -> bytes:
    body = struct.pack(
        "!4s4sHH", ipaddress.ip_address(src).packed, ipaddress.ip_address(dst).packed, sport, dport
    )
    return V2_SIGNATURE + struct.pack("!BBH", 0x21, 0x11, len(body)) + body


def v2_local() -> bytes:
    return V2_SIGNATURE + struct.pack("!BBH", 0x20, 0x00, 0)


class Client:
    """A minimal line-based FTP client over a socket from a chosen source address."""

    def __init__(self, host: str, port: int, source: str = BALANCER, header: bytes = b"") -> None:
        self.sock = socket.create_connection((host, port), timeout=10, source_address=(source, 0))
        if header:
            self.sock.sendall(header)
        self.buf = b""

    def reply(self) -> str:
        while True:
            m = re.search(rb"^(\d{3}) [^\r\n]*\r\n", self.buf, re.M)
            if m:
                self.buf = self.buf[m.end() :]
                return m.group(0).decode().strip()
            data = self.sock.recv(4096)
            if not data:
                raise ConnectionError(f"closed; pending {self.buf!r}")
            self.buf += data

    def cmd(self, line: str) -> str:
        self.sock.sendall(line.encode() + b"\r\n")
        return self.reply()

    def login(self, server: Any) -> None:
        assert self.cmd(f"USER {server.user}").startswith("331")
        assert self.cmd(f"PASS {server.password}").startswith("230")

    def closed(self) -> bool:
        try:
            return self.sock.recv(4096) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()


def wait_log(server: Any, pattern: str, timeout: float = 5.0, count: int = 1) -> None:
    """Wait until the regular expression ``pattern`` matches ``count`` times in the log."""
    found = wait_until(lambda: len(re.findall(pattern, server.log())) >= count, timeout)
    assert found, f"{pattern!r} not in log:\n{server.log()}"


@pytest.fixture
def required(ftpd_factory: Any) -> Any:
    return ftpd_factory(
        proxy_protocol="required",
        proxy_trusted=f"{BALANCER}/32",
        proxy_timeout=1,
        max_per_ip=1,
        pasv_ports=PASV,
    )


def test_real_ip_for_logs_limits_and_data(required: Any) -> None:
    srv = required
    a = Client(srv.host, srv.port, header=v2("192.0.2.7", 40001))
    assert a.reply().startswith("220")
    a.login(srv)
    wait_log(srv, r"192\.0\.2\.7:40001 user login ok")
    # max_per_ip = 1 counts the real client, not the balancer: a second session of the same
    # client is refused, another client through the same balancer is not.
    b = Client(srv.host, srv.port, header=v2("192.0.2.7", 40002))
    assert b.reply().startswith("421")
    c = Client(srv.host, srv.port, header=v2("192.0.2.8", 40003))
    assert c.reply().startswith("220")
    c.close()

    # Data: the passive port gets its own header; a thief behind the balancer names another IP.
    a.cmd("TYPE I")
    m = re.search(r"\|(\d+)\|", a.cmd("EPSV"))
    assert m is not None
    port = int(m.group(1))
    thief = socket.create_connection((srv.host, port), timeout=5, source_address=(BALANCER, 0))
    thief.sendall(v2("198.51.100.9", 50000))
    data = socket.create_connection((srv.host, port), timeout=5, source_address=(BALANCER, 0))
    data.sendall(v2("192.0.2.7", 40009) + b"payload after the header")
    data.shutdown(socket.SHUT_WR)
    assert a.cmd("STOR f.bin").startswith("150")
    assert a.reply().startswith("226")
    assert (srv.root / "f.bin").read_bytes() == b"payload after the header"
    assert thief.recv(10) == b""  # refused: closed without taking the transfer
    wait_log(srv, r"refused data connection from foreign 198\.51\.100\.9")
    a.close()
    thief.close()
    data.close()


def test_data_connection_header_in_pieces(required: Any) -> None:
    """A data connection's header split over several segments, the upload's first bytes in the
    last one: the server waits for the rest (readability, no polling) and takes exactly the
    header, so the file holds every payload byte."""
    srv = required
    a = Client(srv.host, srv.port, header=v2("192.0.2.7", 40011))
    assert a.reply().startswith("220")
    a.login(srv)
    a.cmd("TYPE I")
    m = re.search(r"\|(\d+)\|", a.cmd("EPSV"))
    assert m is not None
    header = v2("192.0.2.7", 40019)
    data = socket.create_connection(
        (srv.host, int(m.group(1))), timeout=5, source_address=(BALANCER, 0)
    )
    data.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    data.sendall(header[:5])
    time.sleep(0.2)  # the header in pieces, some time apart: the behaviour under test
    data.sendall(header[5:20])
    time.sleep(0.2)
    data.sendall(header[20:] + b"payload")
    data.shutdown(socket.SHUT_WR)
    assert a.cmd("STOR pieces.bin").startswith("150")
    assert a.reply().startswith("226")
    assert (srv.root / "pieces.bin").read_bytes() == b"payload"
    data.close()
    a.close()


def test_required_closes_headerless_and_broken(required: Any) -> None:
    srv = required
    plain = Client(srv.host, srv.port)  # trusted, sends nothing: no greeting, closed at timeout
    plain.sock.settimeout(5)
    t0 = time.monotonic()
    assert plain.closed()
    assert 0.8 < time.monotonic() - t0 < 4
    bad = Client(srv.host, srv.port, header=b"USER x\r\n")
    assert bad.closed()
    broken = Client(srv.host, srv.port, header=b"PROXY TCP4 1.2.3.4 nonsense\r\n")
    assert broken.closed()
    wait_log(srv, "no PROXY header")
    # v2 LOCAL (HAProxy's health checks): a session of the balancer itself.
    hc = Client(srv.host, srv.port, header=v2_local())
    assert hc.reply().startswith("220")
    assert hc.cmd("QUIT").startswith("221")


def test_untrusted_header_is_just_bytes(required: Any) -> None:
    srv = required
    # 127.0.0.1 is not trusted here: its PROXY line is an unknown command, and the session
    # stays the socket peer's.
    c = Client(
        srv.host, srv.port, source="127.0.0.1", header=b"PROXY TCP4 192.0.2.50 127.0.0.1 1 2\r\n"
    )
    assert c.reply().startswith("220")
    assert c.reply().startswith("500")
    c.login(srv)
    wait_log(srv, r"127\.0\.0\.1:\d+ user login ok")
    assert "192.0.2.50" not in srv.log()
    c.close()


def test_optional_accepts_both(ftpd_factory: Any) -> None:
    srv = ftpd_factory(
        proxy_protocol="optional",
        proxy_trusted=f"{BALANCER}/32",
        proxy_timeout=0.5,
        pasv_ports=PASV,
    )
    with_header = Client(srv.host, srv.port, header=b"PROXY TCP4 192.0.2.60 127.0.0.1 4321 21\r\n")
    assert with_header.reply().startswith("220")
    with_header.login(srv)
    wait_log(srv, r"192\.0\.2\.60:4321 user login ok")
    without = Client(srv.host, srv.port)  # a direct client: greeted after the header timeout
    assert without.reply().startswith("220")
    without.login(srv)
    wait_log(srv, rf"{re.escape(BALANCER)}:\d+ user login ok")
    with_header.close()
    without.close()


def test_bad_trusted_cidr_is_refused_at_start() -> None:
    from ftpd.config import Config, ConfigError, validate

    with pytest.raises(ConfigError, match="proxy_trusted"):
        validate(Config(proxy_protocol="optional", proxy_trusted="10.0.0.0/33"))
    validate(Config(proxy_protocol="required", proxy_trusted="10.0.0.5/32",
                    implicit_tls_port=990))  # a supported pair


class ProxiedFTPS(ftplib.FTP_TLS):
    """ftplib's FTPS client behind a hand-made balancer: every connection (control and data)
    comes from 127.0.0.5 and starts with a PROXY v2 header naming the real client; the TLS
    ClientHello of a PROT P data connection follows the header on the same socket."""

    real = "192.0.2.44"

    def connect(self, host: str = "", port: int = 0, timeout: float = 10, *args: Any) -> str:
        self.host, self.port, self.timeout = host, port, timeout
        self.sock = socket.create_connection((host, port), timeout, source_address=(BALANCER, 0))
        self.sock.sendall(v2(self.real, 40100))
        self.af = self.sock.family
        self.file = self.sock.makefile("r", encoding=self.encoding)
        self.welcome = self.getresp()
        return self.welcome

    def ntransfercmd(self, cmd: str, rest: Any = None) -> tuple[socket.socket, int | None]:
        host, port = self.makepasv()
        conn = socket.create_connection((host, port), self.timeout, source_address=(BALANCER, 0))
        conn.sendall(v2(self.real, 40101))
        resp = self.sendcmd(cmd)
        if resp[0] != "1":
            conn.close()
            raise ftplib.error_reply(resp)
        return self.context.wrap_socket(conn, server_hostname=self.host), None


def test_ftps_prot_p_behind_proxy(ftpd_factory: Any, tmp_path: Any) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    srv = ftpd_factory(
        tls="required",
        tls_cert=str(cert_path),
        tls_key=str(key_path),
        tls_require_session_reuse=False,  # stock ftplib never resumes
        proxy_protocol="required",
        proxy_trusted=f"{BALANCER}/32",
        pasv_ports=PASV,
    )
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    ftp = ProxiedFTPS(context=ctx)
    assert ftp.connect(srv.host, srv.port).startswith("220")
    ftp.auth()
    ftp.login(srv.user, srv.password)
    ftp.prot_p()
    ftp.storbinary("STOR tls.bin", io.BytesIO(b"secret" * 10000))
    buf = io.BytesIO()
    ftp.retrbinary("RETR tls.bin", buf.write)
    assert buf.getvalue() == b"secret" * 10000
    ftp.quit()
    log = srv.log()
    assert "192.0.2.44:40100 user login ok" in log and "refused" not in log


# --- implicit FTPS behind the balancer -----------------------------------------------------------
# TLS from the first byte, but the PROXY header comes before the ClientHello. The server must read
# exactly the header from the raw socket: one byte more and the handshake stalls.


@dataclass(frozen=True)
class Pki:
    ca: trustme.CA
    cert: Path
    key: Path

    def context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        self.ca.configure_trust(ctx)
        return ctx


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    leaf.private_key_pem.write_to_path(str(d / "key.pem"))
    leaf.private_key_and_cert_chain_pem.write_to_path(str(d / "cert.pem"))
    return Pki(ca, d / "cert.pem", d / "key.pem")


def implicit_server(factory: Any, pki: Pki, mode: str = "required", **overrides: Any) -> Any:
    """A server whose implicit FTPS listener is behind the (hand-made) balancer; ``tls_port``."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg: dict[str, Any] = dict(
        tls="explicit", tls_cert=pki.cert, tls_key=pki.key, implicit_tls_port=port,
        proxy_protocol=mode, proxy_trusted=f"{BALANCER}/32", proxy_timeout=1, pasv_ports=PASV,
    )  # fmt: skip
    cfg.update(overrides)
    srv = factory(**cfg)
    srv.tls_port = port
    (srv.root / "hello.txt").write_bytes(PAYLOAD)
    return srv


PAYLOAD = b"implicit FTPS behind a balancer\r\n" * 2000


def v1(src: str, sport: int, dport: int) -> bytes:
    return f"PROXY TCP4 {src} 127.0.0.1 {sport} {dport}\r\n".encode()


class TlsConn:
    """TLS over a plain socket through memory BIOs, so that the first flight (the ClientHello)
    leaves in the SAME send() call as ``prefix`` (the PROXY header): one segment, as a balancer
    often forwards them. ``sendall``/``recv`` like a socket, for ``Client``."""

    def __init__(
        self, sock: socket.socket, ctx: ssl.SSLContext, prefix: bytes = b"", session: Any = None
    ) -> None:
        self.raw = sock
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(
            self.incoming, self.outgoing, server_hostname="127.0.0.1", session=session
        )
        first = True
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                pass
            out = self.outgoing.read()
            if first:
                assert sock.send(prefix + out) == len(prefix) + len(out)  # one send() call
                first = False
            elif out:
                sock.sendall(out)
            data = sock.recv(65536)
            if not data:
                raise ConnectionResetError("closed during the TLS handshake")
            self.incoming.write(data)
        self._flush()

    def _flush(self) -> None:
        out = self.outgoing.read()
        if out:
            self.raw.sendall(out)

    def sendall(self, data: bytes) -> None:
        self.tls.write(data)
        self._flush()

    def recv(self, size: int = 65536) -> bytes:
        while True:
            try:
                return self.tls.read(size)
            except ssl.SSLWantReadError:
                self._flush()
                data = self.raw.recv(65536)
                if data:
                    self.incoming.write(data)
                else:
                    self.incoming.write_eof()
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""

    def close(self) -> None:
        self.raw.close()


class ImplicitClient(Client):
    """``Client`` on the implicit port: [header +] ClientHello in one send, then FTP over TLS."""

    def __init__(
        self,
        pki: Pki,
        port: int,
        source: str = BALANCER,
        header: bytes = b"",
        early: tuple[bytes, ...] = (),
    ) -> None:
        raw = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
        for piece in early:  # parts of the header on their own, some time before the rest
            raw.sendall(piece)
            time.sleep(0.2)  # pieces some time apart: the behaviour under test
        self.ctx, self.source = pki.context(), source
        self.sock = TlsConn(raw, self.ctx, header)  # type: ignore[assignment]
        self.buf = b""

    def transfer(self, cmd: str, header: Any) -> bytes:
        """A passive PROT P download; ``header(port)`` is the data connection's PROXY header
        (the data connection comes from the same source as the control connection)."""
        m = re.search(r"\|(\d+)\|", self.cmd("EPSV"))
        assert m is not None
        port = int(m.group(1))
        raw = socket.create_connection(("127.0.0.1", port), 10, source_address=(self.source, 0))
        tls: TlsConn = self.sock  # type: ignore[assignment]
        data = TlsConn(raw, self.ctx, header(port), session=tls.tls.session)  # resumed, as curl
        assert self.cmd(cmd).startswith("150")
        got = b""
        while chunk := data.recv():
            got += chunk
        data.close()
        assert self.reply().startswith("226")
        return got


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
@pytest.mark.parametrize("version", ["v1", "v2"])
def test_implicit_ftps_behind_proxy(ftpd_factory: Any, pki: Pki, version: str, loop: str) -> None:
    srv = implicit_server(ftpd_factory, pki, loop=loop)
    real = "192.0.2.31" if version == "v1" else "192.0.2.32"

    def header(sport: int, dport: int) -> bytes:
        return v1(real, sport, dport) if version == "v1" else v2(real, sport, dport=dport)

    c = ImplicitClient(pki, srv.tls_port, header=header(40201, srv.tls_port))
    assert c.reply().startswith("220")
    c.login(srv)
    assert c.cmd("PBSZ 0").startswith("200") and c.cmd("PROT P").startswith("200")
    assert c.cmd("TYPE I").startswith("200")
    assert b"hello.txt" in c.transfer("LIST", lambda p: header(40202, p))
    assert c.transfer("RETR hello.txt", lambda p: header(40203, p)) == PAYLOAD
    assert c.cmd("QUIT").startswith("221")
    c.close()
    wait_log(srv, rf"{re.escape(real)}:40201 user login ok")
    log = srv.log()
    assert "refused" not in log and "closing connection" not in log, log
    assert f"{BALANCER}:" not in log  # the balancer never stands in for the client
    assert srv.stop() == 0


def test_implicit_header_in_pieces_waits_without_spinning(ftpd_factory: Any, pki: Pki) -> None:
    srv = implicit_server(ftpd_factory, pki, proxy_timeout=3)
    # 200 connections each holding part of a header: the server waits for readability, with no
    # polling (a 5 ms poll of each costs ~0.3 s of CPU per second here, a busy loop all of it).
    hdr = v2("192.0.2.40", 40300, dport=srv.tls_port)
    waiting = []
    fds0 = fds(srv.pid)
    for _ in range(200):
        s = socket.create_connection(("127.0.0.1", srv.tls_port), source_address=(BALANCER, 0))
        s.sendall(hdr[:9])
        waiting.append(s)
    # Measure only once the server holds all 200 (their accepts cost CPU, legitimately).
    assert wait_until(lambda: fds(srv.pid) >= fds0 + 200, 20), (fds0, fds(srv.pid))
    before = cpu_seconds(srv.pid)
    time.sleep(1.0)  # the window: CPU time, unlike wall time, does not grow with others' load
    assert cpu_seconds(srv.pid) - before < 0.1
    # The rest of the header and the ClientHello together: a session, greeted over TLS.
    clients = [ImplicitClient(pki, srv.tls_port, header=hdr[9:], early=(hdr[:9],))]
    # A header in three sends (v2 fixed part cut, then addresses cut), the last with the ClientHello.
    clients.append(ImplicitClient(pki, srv.tls_port, header=hdr[20:], early=(hdr[:5], hdr[5:20])))
    v1_hdr = v1("192.0.2.41", 40301, srv.tls_port)
    clients.append(
        ImplicitClient(pki, srv.tls_port, header=v1_hdr[15:], early=(v1_hdr[:3], v1_hdr[3:15]))
    )
    for c in clients:
        assert c.reply().startswith("220")
        c.login(srv)
    wait_log(srv, r"192\.0\.2\.41:40301 user login ok")
    assert srv.log().count("192.0.2.40:40300 user login ok") == 2
    for s in waiting:
        s.close()
    for c in clients:
        c.close()


def test_implicit_required_refusals(ftpd_factory: Any, pki: Pki) -> None:
    srv = implicit_server(ftpd_factory, pki)
    # A direct TLS client from the trusted address: its ClientHello is no header: closed at once.
    t0 = time.monotonic()
    with pytest.raises(OSError):
        ImplicitClient(pki, srv.tls_port)
    assert time.monotonic() - t0 < 0.9  # not left to the header timeout
    wait_log(srv, rf"closing connection from {re.escape(BALANCER)}:\d+: no PROXY header")
    # Broken headers (v1 and v2) followed by a ClientHello: aborted, each with its log line.
    with pytest.raises(OSError):
        ImplicitClient(pki, srv.tls_port, header=b"PROXY TCP4 1.2.3.4 nonsense\r\n")
    wait_log(srv, "malformed PROXY v1 line")
    bad_v2 = V2_SIGNATURE + struct.pack("!BBH", 0x31, 0x11, 12) + bytes(12)
    with pytest.raises(OSError):
        ImplicitClient(pki, srv.tls_port, header=bad_v2)
    wait_log(srv, "PROXY v2: unsupported version")
    # A header that never completes, and a peer that sends nothing: closed after proxy_timeout.
    for early in (b"PROXY TCP4 192.0.2.9 ", b""):
        s = socket.create_connection(("127.0.0.1", srv.tls_port), source_address=(BALANCER, 0))
        s.settimeout(5)
        s.sendall(early)
        t0 = time.monotonic()
        assert s.recv(100) == b""
        assert 0.7 < time.monotonic() - t0 < 4
        s.close()
    wait_log(srv, "(?s)no complete PROXY header in time.*no complete PROXY header in time")
    assert "login ok" not in srv.log()


def test_implicit_untrusted_peer_gets_plain_tls(ftpd_factory: Any, pki: Pki) -> None:
    srv = implicit_server(ftpd_factory, pki)
    c = ImplicitClient(pki, srv.tls_port, source="127.0.0.1")  # not trusted: no header phase
    assert c.reply().startswith("220")
    c.login(srv)
    assert c.transfer("RETR hello.txt", lambda p: b"") == PAYLOAD
    c.close()
    wait_log(srv, r"127\.0\.0\.1:\d+ user login ok")
    # An untrusted peer's header is not honoured: it is not TLS, so the handshake fails.
    fd0 = fds(srv.pid)
    with pytest.raises(OSError):
        ImplicitClient(pki, srv.tls_port, source="127.0.0.1", header=v2("192.0.2.66"))
    # The server has dropped that connection (so it has logged whatever it would about it).
    assert settle_fds(srv.pid, fd0) <= fd0
    assert "192.0.2.66" not in srv.log()


def test_implicit_optional_accepts_both(ftpd_factory: Any, pki: Pki) -> None:
    srv = implicit_server(ftpd_factory, pki, mode="optional")
    direct = ImplicitClient(pki, srv.tls_port)  # trusted address, no header: TLS at once
    assert direct.reply().startswith("220")
    direct.login(srv)
    wait_log(srv, rf"{re.escape(BALANCER)}:\d+ user login ok")
    proxied = ImplicitClient(pki, srv.tls_port, header=v1("192.0.2.70", 4321, srv.tls_port))
    assert proxied.reply().startswith("220")
    proxied.login(srv)
    wait_log(srv, r"192\.0\.2\.70:4321 user login ok")
    # v2 LOCAL (a health check): the balancer's own session.
    hc = ImplicitClient(pki, srv.tls_port, header=v2_local())
    assert hc.reply().startswith("220")
    for c in (direct, proxied, hc):
        c.close()


def test_implicit_pending_headers_bounded_and_shutdown(ftpd_factory: Any, pki: Pki) -> None:
    srv = implicit_server(ftpd_factory, pki, backlog=3, proxy_timeout=10)
    stuck = []
    for _ in range(3):  # three trusted connections in the header phase fill it (backlog = 3)
        s = socket.create_connection(("127.0.0.1", srv.tls_port), source_address=(BALANCER, 0))
        s.sendall(b"PROXY ")
        stuck.append(s)
    wait_for = time.monotonic() + 5
    while True:  # the fourth is closed at once, with a log line
        s = socket.create_connection(("127.0.0.1", srv.tls_port), source_address=(BALANCER, 0))
        s.settimeout(5)
        closed = s.recv(10) == b""
        s.close()
        if closed and "connections already waiting for their PROXY header" in srv.log():
            break
        assert time.monotonic() < wait_for
    # Untrusted clients are not held up by them.
    c = ImplicitClient(pki, srv.tls_port, source="127.0.0.1")
    assert c.reply().startswith("220")
    c.login(srv)
    # Shutdown with connections still in the header phase and a session: prompt, clean exit.
    t0 = time.monotonic()
    assert srv.stop() == 0
    assert time.monotonic() - t0 < 5
    log = srv.log()
    assert "Traceback" not in log and "destroyed but it is pending" not in log, log
    for s in stuck:
        s.settimeout(5)
        assert s.recv(10) == b""
        s.close()
    c.close()
