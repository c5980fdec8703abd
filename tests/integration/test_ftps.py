"""FTPS (RFC 4217) against a real ftpd process: explicit ``AUTH TLS`` and the implicit listener.

The client is ftplib: stock ``FTP_TLS`` (whose data connections never resume the control
connection's TLS session, python/cpython#63699) and ``ResumingFTP_TLS`` below, which resumes it the
way curl, lftp and FileZilla do, so that the default ``tls_require_session_reuse = true`` is tested
with a client that passes it and with one that fails it (``522``). Certificates come from
``trustme`` (a throw-away CA per module); every client verifies the server's certificate.

Also here: the command sequence rules (AUTH/PBSZ/PROT/CCC reply codes, ``tls = required``), TLS
1.0/1.1 refused, handshakes that stall or send garbage (no CPU spent, closed after
``tls_handshake_timeout``), an upload without the client's close_notify never committed, an
upload from a client that never reads its data connection (lftp, rclone) arriving whole, and a
bad certificate stopping start-up with exit status 2.
"""

from __future__ import annotations

import ftplib
import io
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme
from support.env import require_ipv6
from support.proc import cpu_seconds, fds
from support.waits import wait_log, wait_until

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 10.0  # ftplib's socket timeout (s): a hang fails the test instead of blocking it
# Binary on purpose (every byte value, CR, LF), and larger than a socket buffer and a TLS record.
PAYLOAD = bytes(range(256)) * 1024 + b"end\r\nline\nbare\r"


# --- certificates and clients -----------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    """A throw-away CA and a server certificate for 127.0.0.1, ::1 and localhost."""

    ca: Path
    cert: Path
    key: Path

    def client_context(self) -> ssl.SSLContext:
        """A client context trusting only this CA (hostname checks on)."""
        return ssl.create_default_context(cafile=str(self.ca))


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "::1", "localhost")
    ca.cert_pem.write_to_path(str(d / "ca.pem"))
    leaf.private_key_pem.write_to_path(str(d / "key.pem"))
    with open(d / "cert.pem", "wb") as f:
        for blob in leaf.cert_chain_pems:
            f.write(blob.bytes())
    return Pki(ca=d / "ca.pem", cert=d / "cert.pem", key=d / "key.pem")


class ResumingFTP_TLS(ftplib.FTP_TLS):
    """``FTP_TLS`` whose data connections resume the control connection's TLS session.

    The stdlib wraps each data socket without ``session=`` and so never resumes; passing the
    control connection's session is all it takes. ``reused`` records, per data connection,
    whether the client saw the session resumed.
    """

    reused: list[bool]

    def ntransfercmd(
        self, cmd: str, rest: int | str | None = None
    ) -> tuple[socket.socket, int | None]:
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:  # type: ignore[attr-defined]
            conn = self.context.wrap_socket(  # type: ignore[attr-defined]
                conn,
                server_hostname=self.host,
                session=self.sock.session,  # type: ignore[union-attr]
            )
            self.__dict__.setdefault("reused", []).append(conn.session_reused)
        return conn, size


class ImplicitFTP_TLS(ResumingFTP_TLS):
    """Implicit FTPS: TLS from the first byte (ftplib has no such mode of its own)."""

    def connect(
        self, host: str = "", port: int = 0, timeout: float = TIMEOUT, source_address: Any = None
    ) -> str:
        self.host, self.port, self.timeout = host, port, timeout
        raw = socket.create_connection((host, port), timeout)
        self.sock = self.context.wrap_socket(raw, server_hostname=host)  # type: ignore[attr-defined]
        self.af = self.sock.family
        self.file = self.sock.makefile("r", encoding=self.encoding)
        self.welcome = self.getresp()
        return self.welcome


def free_port() -> int:
    """A port for the implicit listener (the factory gives only the control port 0)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tls_server(factory: Callable[..., Any], pki: Pki, **overrides: object) -> Any:
    cfg: dict[str, object] = {"tls": "explicit", "tls_cert": pki.cert, "tls_key": pki.key}
    cfg.update(overrides)
    srv = factory(**cfg)
    (srv.root / "hello.bin").write_bytes(PAYLOAD)
    return srv


def connect(
    srv: Any, pki: Pki, cls: type[ftplib.FTP_TLS] = ResumingFTP_TLS, port: int | None = None
) -> ftplib.FTP_TLS:
    ftp = cls(context=pki.client_context(), timeout=TIMEOUT)
    ftp.connect(srv.host, port or srv.port)
    return ftp


def login(
    srv: Any,
    pki: Pki,
    cls: type[ftplib.FTP_TLS] = ResumingFTP_TLS,
    port: int | None = None,
    prot_p: bool = True,
) -> ftplib.FTP_TLS:
    """Connect, AUTH TLS (unless implicit), USER/PASS, and PBSZ 0 + PROT P."""
    ftp = connect(srv, pki, cls, port)
    ftp.login(srv.user, srv.password)
    if prot_p:
        ftp.prot_p()
    return ftp


def code(ftp: ftplib.FTP, cmd: str) -> str:
    """The reply code of ``cmd``, whatever it is."""
    try:
        return ftp.sendcmd(cmd)[:3]
    except ftplib.Error as exc:
        return str(exc)[:3]


def failed_transfer(ftp: ftplib.FTP, cmd: str, send: bytes = b"") -> tuple[str, bytes]:
    """Run a transfer command that is expected to fail; (final reply code, bytes received)."""
    got = b""
    try:
        conn = ftp.transfercmd(cmd)
    except ftplib.Error as exc:
        return str(exc)[:3], got  # refused before 150
    except OSError:
        conn = None  # the data TLS handshake failed on our side; the reply is still to come
    if conn is not None:
        try:
            if send:
                conn.sendall(send)
            while chunk := conn.recv(65536):
                got += chunk
        except OSError:
            pass
        finally:
            conn.close()
    try:
        return ftp.getresp()[:3], got
    except ftplib.Error as exc:
        return str(exc)[:3], got


def feat_lines(ftp: ftplib.FTP) -> set[str]:
    return {line.strip() for line in ftp.sendcmd("FEAT").splitlines()[1:-1]}


def home_files(root: Path) -> set[str]:
    """Everything under a server's home (hidden temporary upload files included)."""
    return {str(p.relative_to(root)) for p in root.rglob("*")}


# --- the workflow ------------------------------------------------------------------------------


def workflow(ftp: ftplib.FTP, root: Path, tag: str, rounds: int = 1) -> None:
    """LIST, NLST, RETR and STOR through ``ftp``; results checked on the server's disk."""
    for i in range(rounds):
        lines: list[str] = []
        ftp.retrlines("LIST", lines.append)
        assert any(line.endswith(" hello.bin") for line in lines), lines
        assert "hello.bin" in ftp.nlst()
        got = bytearray()
        ftp.retrbinary("RETR hello.bin", got.extend)
        assert bytes(got) == PAYLOAD
        up = f"{tag}-{i}\r\n".encode() + PAYLOAD[::-1]
        name = f"up-{tag}-{i}.bin"
        ftp.storbinary(f"STOR {name}", io.BytesIO(up))
        assert (root / name).read_bytes() == up


def test_stock_ftplib_with_reuse_off(ftpd_factory: Any, pki: Pki) -> None:
    """Stock ``FTP_TLS`` never resumes: with the requirement off, all of it works under PROT P."""
    srv = tls_server(ftpd_factory, pki, tls_require_session_reuse=False)
    ftp = login(srv, pki, cls=ftplib.FTP_TLS)
    assert isinstance(ftp.sock, ssl.SSLSocket)
    workflow(ftp, srv.root, "stock", rounds=2)
    ftp.quit()


@pytest.mark.parametrize("passive", [True, False], ids=["PASV", "PORT"])
def test_prot_p_transfers_resume_the_session(ftpd_factory: Any, pki: Pki, passive: bool) -> None:
    """Reuse required (the default): a resuming client passes, passive and active (PORT), over
    many data connections in a row, each resuming the control connection's TLS 1.3 session."""
    srv = tls_server(ftpd_factory, pki, log_level="debug")
    ftp = login(srv, pki)
    ftp.set_pasv(passive)
    assert ftp.sock.version() == "TLSv1.3"  # type: ignore[union-attr]
    workflow(ftp, srv.root, "resume", rounds=3)  # 12 data connections
    reused: list[bool] = ftp.reused  # type: ignore[attr-defined]
    assert len(reused) == 12 and all(reused), reused
    ftp.quit()
    log = srv.log()
    assert log.count(f"<- {'PASV' if passive else 'PORT'}") == 12
    assert "did not resume" not in log


def test_pasv_before_prot_p_still_resumes(ftpd_factory: Any, pki: Pki) -> None:
    """PASV first, PROT P after it (legal, if unusual): the control handshake sent no ticket
    and that PASV was not under PROT P, so the ticket this data connection resumes with goes
    out with the 150. Reuse is required (the default): without that ticket it would get 522."""
    srv = tls_server(ftpd_factory, pki)
    ftp = login(srv, pki, prot_p=False)
    assert ftp.sock.version() == "TLSv1.3"  # type: ignore[union-attr]
    ftp.voidcmd("TYPE I")
    host, port = ftp.makepasv()
    ftp.prot_p()
    raw = socket.create_connection((host, port), timeout=TIMEOUT)
    assert ftp.sendcmd("RETR hello.bin").startswith("150")
    data = ftp.context.wrap_socket(  # type: ignore[attr-defined]
        raw, server_hostname=srv.host, session=ftp.sock.session  # type: ignore[union-attr]
    )
    try:
        assert data.session_reused
        got = bytearray()
        while chunk := data.recv(65536):
            got += chunk
        assert bytes(got) == PAYLOAD
    finally:
        data.close()
    assert ftp.voidresp().startswith("226")
    ftp.quit()


def test_tls12_resumes_too(ftpd_factory: Any, pki: Pki) -> None:
    """TLS 1.2 resumes by session ID from the server's cache (not tickets)."""
    srv = tls_server(ftpd_factory, pki)
    ctx = pki.client_context()
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ftp = ResumingFTP_TLS(context=ctx, timeout=TIMEOUT)
    ftp.connect(srv.host, srv.port)
    ftp.login(srv.user, srv.password)
    ftp.prot_p()
    assert ftp.sock.version() == "TLSv1.2"  # type: ignore[union-attr]
    workflow(ftp, srv.root, "tls12", rounds=2)
    assert all(ftp.reused), ftp.reused  # type: ignore[attr-defined]
    ftp.quit()


def test_not_resumed_data_connection_gets_522(ftpd_factory: Any, pki: Pki) -> None:
    srv = tls_server(ftpd_factory, pki)
    ftp = login(srv, pki, cls=ftplib.FTP_TLS)  # stock: never resumes
    assert failed_transfer(ftp, "RETR hello.bin")[0] == "522"
    assert failed_transfer(ftp, "LIST")[0] == "522"
    reply, _ = failed_transfer(ftp, "STOR refused.bin", send=b"x" * 1000)
    assert reply == "522"
    assert not (srv.root / "refused.bin").exists()
    assert home_files(srv.root) == {"hello.bin"}
    assert code(ftp, "NOOP") == "200"  # the session goes on
    wait_log(srv, "did not resume the TLS session")
    ftp.quit()


@pytest.mark.parametrize("tls12", [False, True], ids=["TLS1.3", "TLS1.2"])
@pytest.mark.parametrize("passive", [True, False], ids=["PASV", "PORT"])
def test_stock_ftplib_sees_the_522_of_a_data_connection_not_resumed(
    ftpd_factory: Any, pki: Pki, tls12: bool, passive: bool
) -> None:
    """Stock ``FTP_TLS`` used as an application does (retrbinary, storbinary, nlst, mlsd) under
    the default ``tls_require_session_reuse``: each refused transfer is the ``522`` error that
    says why, not an SSL error (``SHUTDOWN_WHILE_IN_INIT``) or a reset, and the session goes on.
    The server completes the handshake and closes the data connection with close_notify first."""
    srv = tls_server(ftpd_factory, pki)
    ctx = pki.client_context()
    if tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ftp = ftplib.FTP_TLS(context=ctx, timeout=TIMEOUT)
    ftp.connect(srv.host, srv.port)
    ftp.login(srv.user, srv.password)
    ftp.prot_p()
    ftp.set_pasv(passive)
    big = os.urandom(4 * 1024 * 1024)  # far more than the socket buffers hold
    attempts: list[Callable[[], object]] = [
        lambda: ftp.retrbinary("RETR hello.bin", lambda b: None),
        lambda: ftp.storbinary("STOR small.bin", io.BytesIO(b"x" * 1000)),
        lambda: ftp.storbinary("STOR big.bin", io.BytesIO(big)),
        lambda: ftp.nlst(),
        lambda: list(ftp.mlsd()),
        lambda: ftp.retrlines("LIST", lambda line: None),
    ]
    for attempt in attempts:
        with pytest.raises(ftplib.error_perm, match="^522 .*not resumed"):
            attempt()
        assert ftp.voidcmd("NOOP").startswith("200")
    assert home_files(srv.root) == {"hello.bin"}
    ftp.quit()


def test_plaintext_data_connection_under_prot_p_fails_cleanly(ftpd_factory: Any, pki: Pki) -> None:
    """A client that asked for PROT P but speaks plain text on the data connection gets 522, never
    the file in clear, and no upload is stored."""
    srv = tls_server(ftpd_factory, pki)
    ftp = login(srv, pki)
    plain = ftplib.FTP.ntransfercmd  # the data socket without TLS

    conn, _ = plain(ftp, "RETR hello.bin")
    conn.sendall(b"this is not a TLS ClientHello\r\n")
    got = b""
    try:
        while chunk := conn.recv(65536):
            got += chunk
    except OSError:
        pass
    conn.close()
    with pytest.raises(ftplib.error_perm, match="^522"):
        ftp.voidresp()
    assert PAYLOAD[:64] not in got and len(got) < 1024, "file data sent in clear"

    conn, _ = plain(ftp, "STOR plain.bin")
    try:
        conn.sendall(PAYLOAD)
    except OSError:
        pass
    conn.close()
    with pytest.raises(ftplib.error_perm, match="^522"):
        ftp.voidresp()
    assert home_files(srv.root) == {"hello.bin"}
    assert code(ftp, "NOOP") == "200"
    workflow(ftp, srv.root, "after")  # the session is still fully usable
    ftp.quit()


def test_data_handshake_that_never_starts_times_out(ftpd_factory: Any, pki: Pki) -> None:
    srv = tls_server(ftpd_factory, pki, tls_handshake_timeout=1.5)
    ftp = login(srv, pki)
    conn, _ = ftplib.FTP.ntransfercmd(ftp, "RETR hello.bin")  # connects, never says ClientHello
    t0 = time.monotonic()
    conn.settimeout(TIMEOUT)
    try:
        assert conn.recv(100) == b""  # closed by the server
    except ConnectionResetError:
        pass
    waited = time.monotonic() - t0
    conn.close()
    with pytest.raises(ftplib.error_perm, match="^522"):
        ftp.voidresp()
    assert 1.0 <= waited < 6.0, waited
    ftp.quit()


# --- the implicit listener -----------------------------------------------------------------------


def test_implicit_ftps(ftpd_factory: Any, pki: Pki) -> None:
    port = free_port()
    srv = tls_server(ftpd_factory, pki, implicit_tls_port=port)
    ftp = login(srv, pki, cls=ImplicitFTP_TLS, port=port)
    assert isinstance(ftp.sock, ssl.SSLSocket)
    assert code(ftp, "AUTH TLS") == "503"  # already under TLS
    assert {"PBSZ", "PROT"} <= feat_lines(ftp)
    workflow(ftp, srv.root, "implicit", rounds=2)
    assert all(ftp.reused), ftp.reused  # type: ignore[attr-defined]
    ftp.quit()
    # data is protected there without PBSZ/PROT too (aioftp's client never sends them)
    ftp = login(srv, pki, cls=ImplicitFTP_TLS, port=port, prot_p=False)
    ftp._prot_p = True  # type: ignore[attr-defined]  # wrap data connections, PROT never sent
    got = bytearray()
    ftp.retrbinary("RETR hello.bin", got.extend)
    assert bytes(got) == PAYLOAD and ftp.reused == [True]  # type: ignore[attr-defined]
    ftp.quit()
    # the explicit port goes on speaking plain text first
    with socket.create_connection((srv.host, srv.port), TIMEOUT) as s:
        assert s.recv(100).startswith(b"220 ")


def test_implicit_listener_with_tls_off_can_protect_data(ftpd_factory: Any, pki: Pki) -> None:
    """``implicit_tls_port`` with ``tls`` left at ``off``: either start-up refuses the combination
    (exit 2), or the implicit sessions can use PBSZ/PROT P (otherwise their data goes in clear)."""
    port = free_port()
    try:
        srv = tls_server(ftpd_factory, pki, tls="off", implicit_tls_port=port)
    except RuntimeError as exc:  # the factory: "ftpd exited (2): <log>"
        assert str(exc).startswith("ftpd exited (2)"), exc
        return
    ftp = login(srv, pki, cls=ImplicitFTP_TLS, port=port, prot_p=False)
    assert {"PBSZ", "PROT"} <= feat_lines(ftp)
    assert code(ftp, "PBSZ 0") == "200"
    assert code(ftp, "PROT P") == "200"
    ftp.prot_p()  # the same again, through ftplib, so that it wraps its data connections
    workflow(ftp, srv.root, "implicit-only")
    ftp.quit()


# --- the command sequence -------------------------------------------------------------------------


def test_feat_lists_tls_only_when_configured(ftpd_factory: Any, pki: Pki) -> None:
    plain = ftpd_factory()
    ftp = ftplib.FTP()
    ftp.connect(plain.host, plain.port, timeout=TIMEOUT)
    assert not {"AUTH TLS", "PBSZ", "PROT"} & feat_lines(ftp)
    # FileZilla and curl probe AUTH TLS / AUTH SSL and must be able to carry on in plain text
    assert code(ftp, "AUTH TLS")[0] == "5"
    assert code(ftp, "AUTH SSL")[0] == "5"
    ftp.login(plain.user, plain.password)
    assert code(ftp, "PBSZ 0")[0] == "5" and code(ftp, "PROT P")[0] == "5"
    ftp.quit()

    srv = tls_server(ftpd_factory, pki)
    ftp = connect(srv, pki)
    assert {"AUTH TLS", "PBSZ", "PROT"} <= feat_lines(ftp)
    ftp.quit()


def test_auth_mechanisms(ftpd_factory: Any, pki: Pki) -> None:
    """RFC 4217 §4 TLS, and the legacy names clients still send (curl tries SSL first)."""
    srv = tls_server(ftpd_factory, pki)
    for mech in ("TLS", "SSL", "TLS-C", "TLS-P", "tls"):
        ftp = connect(srv, pki)
        assert code(ftp, "AUTH KERBEROS_V4") == "504"
        resp = ftp.sendcmd(f"AUTH {mech}")
        assert resp.startswith("234"), resp
        ftp.sock = ftp.context.wrap_socket(ftp.sock, server_hostname=srv.host)  # type: ignore[attr-defined]
        ftp.file = ftp.sock.makefile("r", encoding=ftp.encoding)
        assert code(ftp, f"AUTH {mech}") == "503"  # AUTH twice
        assert code(ftp, "AUTH TLS") == "503"
        ftp.login(srv.user, srv.password)
        ftp.prot_p()
        workflow(ftp, srv.root, f"mech-{mech}")
        ftp.quit()


def test_pbsz_prot_ccc_sequence(ftpd_factory: Any, pki: Pki) -> None:
    srv = tls_server(ftpd_factory, pki)
    ftp = connect(srv, pki)
    ftp.login(srv.user, srv.password, secure=False)  # explicit mode: plain login is allowed...
    assert isinstance(ftp.sock, socket.socket) and not isinstance(ftp.sock, ssl.SSLSocket)
    assert code(ftp, "PBSZ 0") == "503"  # ...but PBSZ/PROT need TLS first
    assert code(ftp, "PROT P") == "503"
    assert code(ftp, "CCC") == "533"
    ftp.quit()

    ftp = connect(srv, pki)
    ftp.auth()
    assert code(ftp, "PROT P") == "503"  # before PBSZ
    assert code(ftp, "PBSZ x") == "501"
    assert code(ftp, "PBSZ 0") == "200"
    assert code(ftp, "PROT S") == "536"
    assert code(ftp, "PROT E") == "536"
    assert code(ftp, "PROT Z") == "504"
    assert code(ftp, "PROT C") == "200"
    ftp.login(srv.user, srv.password)
    assert code(ftp, "CCC") == "534"  # policy: commands never go back to plain text
    lines: list[str] = []
    ftp.retrlines("LIST", lines.append)  # PROT C: a clear data connection
    assert any("hello.bin" in line for line in lines)
    ftp.prot_p()
    workflow(ftp, srv.root, "seq")
    ftp.quit()


def test_required_mode(ftpd_factory: Any, pki: Pki) -> None:
    srv = tls_server(ftpd_factory, pki, tls="required")
    ftp = connect(srv, pki)
    assert code(ftp, "USER " + srv.user) == "530"  # before AUTH
    assert code(ftp, "PASS " + srv.password) in ("503", "530")
    ftp.auth()
    ftp.login(srv.user, srv.password)
    assert code(ftp, "PBSZ 0") == "200"
    ftp.set_pasv(True)
    reply, got = failed_transfer(ftp, "LIST")  # PROT C is the default: refused
    assert reply == "522" and got == b""
    assert code(ftp, "PROT C") == "534"
    ftp.prot_p()
    workflow(ftp, srv.root, "required")
    ftp.quit()


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1], ids=str)
def test_tls_1_0_and_1_1_refused(ftpd_factory: Any, pki: Pki, version: ssl.TLSVersion) -> None:
    # First prove this client can speak the old version at all (against a permissive server), so
    # that the refusal below is the server's doing, not the client's. Where this OpenSSL cannot,
    # only this version's test is skipped (tls_min_version is tested below, without this skip).
    permissive = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    permissive.load_cert_chain(str(pki.cert), str(pki.key))
    permissive.set_ciphers("DEFAULT:@SECLEVEL=0")
    permissive.minimum_version = ssl.TLSVersion.TLSv1

    def old_client() -> ssl.SSLContext:
        ctx = pki.client_context()
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.minimum_version = ctx.maximum_version = version
        return ctx

    with socket.create_server(("127.0.0.1", 0)) as lsock:

        def serve() -> None:
            c, _ = lsock.accept()
            try:
                with permissive.wrap_socket(c, server_side=True) as t:
                    t.sendall(b"ok")
            except (OSError, ssl.SSLError):
                pass

        th = threading.Thread(target=serve, daemon=True)
        th.start()
        try:
            with old_client().wrap_socket(
                socket.create_connection(lsock.getsockname(), TIMEOUT),
                server_hostname="127.0.0.1",
            ) as t:
                assert t.recv(2) == b"ok"
        except ssl.SSLError as exc:
            pytest.skip(f"this OpenSSL cannot speak {version.name} at all: {exc}")
        finally:
            th.join(TIMEOUT)

    port = free_port()
    srv = tls_server(ftpd_factory, pki, implicit_tls_port=port)
    # implicit listener
    with pytest.raises((ssl.SSLError, ConnectionError)):
        old_client().wrap_socket(
            socket.create_connection((srv.host, port), TIMEOUT), server_hostname=srv.host
        ).recv(10)
    # explicit AUTH TLS
    ftp = ftplib.FTP_TLS(context=old_client(), timeout=TIMEOUT)
    ftp.connect(srv.host, srv.port)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        ftp.auth()
    ftp.close()


def test_tls_min_version(ftpd_factory: Any, pki: Pki) -> None:
    """TLS 1.2 is accepted by default and refused with ``tls_min_version = 1.3``."""
    ctx12 = pki.client_context()
    ctx12.maximum_version = ssl.TLSVersion.TLSv1_2
    srv = tls_server(ftpd_factory, pki)
    ftp = ftplib.FTP_TLS(context=ctx12, timeout=TIMEOUT)
    ftp.connect(srv.host, srv.port)
    ftp.auth()
    assert ftp.sock.version() == "TLSv1.2"  # type: ignore[union-attr]
    ftp.quit()
    srv13 = tls_server(ftpd_factory, pki, tls_min_version="1.3")
    ftp = ftplib.FTP_TLS(context=ctx12, timeout=TIMEOUT)
    ftp.connect(srv13.host, srv13.port)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        ftp.auth()
    ftp.close()
    ctx13 = pki.client_context()
    ctx13.minimum_version = ssl.TLSVersion.TLSv1_3
    ftp = ftplib.FTP_TLS(context=ctx13, timeout=TIMEOUT)
    ftp.connect(srv13.host, srv13.port)
    ftp.auth()
    assert ftp.sock.version() == "TLSv1.3"  # type: ignore[union-attr]
    ftp.quit()


# --- handshakes that stall or send garbage -----------------------------------------------------


def is_open(s: socket.socket) -> bool:
    """True while the server has not closed the connection (nothing to read, no EOF)."""
    s.setblocking(False)
    try:
        return bool(s.recv(1, socket.MSG_PEEK))  # data waiting: still open
    except BlockingIOError:
        return True
    except OSError:
        return False


# A TLS record header announcing a 512-byte handshake message, and then nothing.
PARTIAL_HELLO = bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC])


def stalled_connections(srv: Any, port: int, n: int) -> list[tuple[socket.socket, float]]:
    """``n`` handshakes that never finish, each with the time it started: silent on the implicit
    port, a partial ClientHello on it, and AUTH TLS answered 234 on the explicit port, then
    silence."""
    socks = []
    for i in range(n):
        kind = i % 3
        s = socket.create_connection((srv.host, port if kind < 2 else srv.port), TIMEOUT)
        if kind == 1:
            s.sendall(PARTIAL_HELLO)
        elif kind == 2:
            f = s.makefile("rb")
            assert f.readline().startswith(b"220")
            s.sendall(b"AUTH TLS\r\n")
            assert f.readline().startswith(b"234")
            f.close()
        socks.append((s, time.monotonic()))
    return socks


def test_stalled_handshakes_cost_no_cpu_and_time_out(ftpd_factory: Any, pki: Pki) -> None:
    timeout = 3.0
    port = free_port()
    srv = tls_server(ftpd_factory, pki, implicit_tls_port=port, tls_handshake_timeout=timeout)
    fds0 = fds(srv.pid)
    socks = stalled_connections(srv, port, 50)
    try:
        # CPU while all 50 wait (once the server holds them all: accepting costs CPU), ending
        # before the first one's timeout. CPU time does not grow with other processes' load.
        assert wait_until(lambda: fds(srv.pid) >= fds0 + 50, 10), (fds0, fds(srv.pid))
        window = max(0.5, min(2.0, socks[0][1] + timeout - 0.5 - time.monotonic()))
        before = cpu_seconds(srv.pid)
        time.sleep(window)  # the measuring window
        used = cpu_seconds(srv.pid) - before
        assert used < 0.15, f"the server used {used:.2f} s CPU in {window:.1f} s for 50 stalls"
        # each one is closed once its own timeout has passed, not before
        closed: dict[int, float] = {}
        deadline = socks[-1][1] + timeout + 4.0
        while len(closed) < len(socks) and time.monotonic() < deadline:
            for i, (s, _) in enumerate(socks):
                if i not in closed and not is_open(s):
                    closed[i] = time.monotonic()
            time.sleep(0.05)
        assert len(closed) == len(socks), (
            f"{len(socks) - len(closed)} still open after {timeout} s + 4 s"
        )
        lived = [closed[i] - started for i, (_, started) in enumerate(socks)]
        assert min(lived) >= timeout - 0.5, f"closed after {min(lived):.2f} s, before the timeout"
    finally:
        for s, _ in socks:
            s.close()
    # the server is fine afterwards
    ftp = login(srv, pki)
    workflow(ftp, srv.root, "after-stall")
    ftp.quit()


def test_garbage_handshakes_closed_at_once(ftpd_factory: Any, pki: Pki) -> None:
    port = free_port()
    srv = tls_server(ftpd_factory, pki, implicit_tls_port=port, tls_handshake_timeout=30)
    garbage = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + bytes(range(256)) * 4
    before = cpu_seconds(srv.pid)
    t0 = time.monotonic()
    socks = []
    for i in range(30):
        s = socket.create_connection((srv.host, port if i % 2 else srv.port), TIMEOUT)
        if i % 2 == 0:
            f = s.makefile("rb")
            assert f.readline().startswith(b"220")
            s.sendall(b"AUTH TLS\r\n")
            assert f.readline().startswith(b"234")
            f.close()
        s.sendall(garbage)
        socks.append(s)
    try:
        for s in socks:
            s.settimeout(TIMEOUT)
            try:
                while s.recv(4096):  # a TLS alert at most, then EOF
                    pass
            except ConnectionResetError:
                pass
        elapsed = time.monotonic() - t0
        assert elapsed < 5.0, f"garbage handshakes took {elapsed:.1f} s to be closed"
        assert cpu_seconds(srv.pid) - before < 1.0
    finally:
        for s in socks:
            s.close()
    ftp = login(srv, pki)
    workflow(ftp, srv.root, "after-garbage")
    ftp.quit()


# --- uploads that do not end with close_notify ------------------------------------------------------


def cut_upload(ftp: ftplib.FTP, name: str) -> None:
    """Start a PROT P upload, send PAYLOAD, and end the TLS stream without close_notify."""
    ftp.voidcmd("TYPE I")
    conn = ftp.transfercmd(f"STOR {name}")
    assert isinstance(conn, ssl.SSLSocket) and conn.session_reused
    conn.sendall(PAYLOAD)
    # No unwrap(): the TCP stream ends with no close_notify, as when a client dies mid-upload.
    socket.socket.shutdown(conn, socket.SHUT_RDWR)
    conn.close()


def test_upload_without_close_notify_leaves_no_file(ftpd_factory: Any, pki: Pki) -> None:
    srv = tls_server(ftpd_factory, pki)  # atomic uploads: the default
    # the data connection is cut; the control connection stays
    ftp = login(srv, pki)
    cut_upload(ftp, "cut.bin")
    with pytest.raises(ftplib.Error, match="^4"):
        ftp.voidresp()
    assert code(ftp, "NOOP") == "200"
    ftp.quit()
    assert "result=ok" not in wait_log(srv, "STOR /cut.bin")
    assert home_files(srv.root) == {"hello.bin"}, "a truncated TLS upload was kept"
    # the whole client vanishes: data and control connections gone at once
    ftp = login(srv, pki)
    cut_upload(ftp, "gone.bin")
    socket.socket.shutdown(ftp.sock, socket.SHUT_RDWR)  # type: ignore[arg-type]
    ftp.sock.close()  # type: ignore[union-attr]
    assert "result=ok" not in wait_log(srv, "STOR /gone.bin")
    wait_log(srv, "disconnect [", count=2)
    assert home_files(srv.root) == {"hello.bin"}, "a truncated TLS upload was kept"


def test_in_place_upload_without_close_notify_is_not_complete(ftpd_factory: Any, pki: Pki) -> None:
    """With atomic uploads off the bytes received stay (REST can resume them), but the transfer
    is answered 4xx and logged as failed, never 226."""
    srv = tls_server(ftpd_factory, pki, atomic_uploads=False)
    ftp = login(srv, pki)
    cut_upload(ftp, "cut.bin")
    with pytest.raises(ftplib.Error, match="^4"):
        ftp.voidresp()
    ftp.quit()
    assert "result=ok" not in wait_log(srv, "STOR /cut.bin")
    kept = (srv.root / "cut.bin").read_bytes() if (srv.root / "cut.bin").exists() else b""
    assert PAYLOAD.startswith(kept)


def test_upload_with_close_notify_is_kept(ftpd_factory: Any, pki: Pki) -> None:
    """The counterpart of the test above, by hand: the same bytes, then close_notify (unwrap)."""
    srv = tls_server(ftpd_factory, pki)
    ftp = login(srv, pki)
    ftp.voidcmd("TYPE I")
    conn = ftp.transfercmd("STOR whole.bin")
    conn.sendall(PAYLOAD)
    conn.unwrap().close()  # type: ignore[attr-defined]
    assert ftp.voidresp().startswith("226")
    assert (srv.root / "whole.bin").read_bytes() == PAYLOAD
    ftp.quit()


def test_upload_by_a_client_that_never_reads(ftpd_factory: Any, pki: Pki) -> None:
    """lftp (GnuTLS) never reads an upload's data connection: it sends the file and close_notify
    and closes the socket. Anything the server sent on that connection (a TLS 1.3
    NewSessionTicket after the handshake) is then unread, so the client's kernel answers the close
    with RST and drops what it had not yet sent: the upload must still arrive whole, i.e. the
    server must send nothing the client has to read before its close_notify."""
    srv = tls_server(ftpd_factory, pki)
    ftp = login(srv, pki)
    ftp.voidcmd("TYPE I")
    ctx: ssl.SSLContext = ftp.context  # type: ignore[attr-defined]
    data = PAYLOAD * 4  # 1 MiB: more than the socket buffers hold
    for i in range(3):
        raw, _ = ftplib.FTP.ntransfercmd(ftp, f"STOR blind{i}.bin")
        with raw:
            inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
            obj = ctx.wrap_bio(inc, out, server_hostname=srv.host, session=ftp.sock.session)  # type: ignore[union-attr]
            while True:
                try:
                    obj.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    raw.sendall(out.read())
                    inc.write(raw.recv(65536))
            assert obj.session_reused
            view = memoryview(data)
            while view:
                view = view[obj.write(view[:65536]) :]
                raw.sendall(out.read())
            try:
                obj.unwrap()  # close_notify; the server's is never waited for
            except ssl.SSLWantReadError:
                pass
            raw.sendall(out.read())
        assert ftp.voidresp().startswith("226")
        assert (srv.root / f"blind{i}.bin").read_bytes() == data
    ftp.quit()


# --- start-up -------------------------------------------------------------------------------------


@pytest.mark.parametrize("broken", ["missing-cert", "not-a-cert"])
def test_bad_certificate_stops_startup(tmp_path: Path, pki: Pki, broken: str) -> None:
    cert, key = str(pki.cert), str(pki.key)
    if broken == "missing-cert":
        cert = str(tmp_path / "nope.pem")
    else:
        (tmp_path / "junk.pem").write_text("not a certificate\n")
        cert = key = str(tmp_path / "junk.pem")
    argv = [
        sys.executable,
        "-m",
        "ftpd",
        "--port",
        "0",
        "--root",
        str(tmp_path / "home"),
        "--password",
        "x",
        "--tls",
        "explicit",
        "--tls-cert",
        cert,
        "--tls-key",
        key,
    ]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("FTPD_CONFIG", None)
    p = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=20)
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    errors = [line for line in p.stderr.splitlines() if line.startswith("ftpd: error:")]
    assert len(errors) == 1, p.stderr
    assert "tls_cert" in errors[0]
    assert "Traceback" not in p.stderr
    assert "serving" not in p.stdout


# --- IPv6 ---------------------------------------------------------------------------------------------


def test_explicit_and_implicit_on_ipv6(ftpd_factory: Any, pki: Pki) -> None:
    require_ipv6()  # fails instead under FTPD_REQUIRE_CLIENTS
    with socket.socket(socket.AF_INET6) as s:
        s.bind(("::1", 0))
        port = int(s.getsockname()[1])
    srv = tls_server(ftpd_factory, pki, host="::1", implicit_tls_port=port)
    for cls, p in ((ResumingFTP_TLS, None), (ImplicitFTP_TLS, port)):
        ftp = login(srv, pki, cls=cls, port=p)
        workflow(ftp, srv.root, f"v6-{cls.__name__}")
        assert all(ftp.reused), ftp.reused  # type: ignore[attr-defined]
        ftp.quit()
