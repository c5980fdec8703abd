"""PROXY protocol in a real ftpd process, driven by hand-built headers (no HAProxy needed).

The "balancer" is a socket bound to 127.0.0.5, the only trusted address; the headers name client
addresses such as 192.0.2.x that never connect themselves. Checked: the greeting waits for the
header, the real IP reaches the logs and the per-IP limit, the data connection check compares
the real IPs of both headers (a thief behind the same balancer is refused), untrusted peers'
headers are not honoured, ``required`` closes a headerless trusted peer, v2 LOCAL is accepted.
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
from typing import Any

import pytest
import trustme

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


def wait_log(server: Any, pattern: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not re.search(pattern, server.log()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{pattern!r} not in log:\n{server.log()}")
        time.sleep(0.05)


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


def test_implicit_tls_with_proxy_is_refused_at_start(tmp_path: Any) -> None:
    from ftpd.config import Config, ConfigError, validate

    with pytest.raises(ConfigError, match="implicit_tls_port"):
        validate(Config(proxy_protocol="required", implicit_tls_port=990))
    with pytest.raises(ConfigError, match="proxy_trusted"):
        validate(Config(proxy_protocol="optional", proxy_trusted="10.0.0.0/33"))


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
