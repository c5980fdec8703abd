"""Explicit FTPS and source-address binding.

pyftpdlib's TLS_FTPHandler needs PyOpenSSL, which this environment does not have, so the TLS
client path is exercised against tests/load/fakeftp.py (AUTH TLS, PBSZ 0, PROT P, TLS data
connections, records session resumption and peer addresses) and against ftpd's own FTPS, with a
CA made by trustme.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from fakeftp import FakeFtp
from loadtool import assert_sane, run_load, server_args

from ftpd.load.client import FtpClient, client_context


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ftps(ca: trustme.CA) -> Iterator[FakeFtp]:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
    server = FakeFtp(tls=ctx, file_size=300_000).start()
    yield server
    server.stop()


def _args(server: FakeFtp) -> list[str]:
    return ["--port", str(server.port), "--user", "user", "--password", "pass"]


async def test_client_tls_download_and_upload(
    ftps: FakeFtp, ca: trustme.CA, tmp_path: Path
) -> None:
    cafile = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    ctx = client_context(str(cafile))
    s = FtpClient()
    greeting = await s.connect(("127.0.0.1", ftps.port), 2, None, ctx, "127.0.0.1")
    assert greeting == (220, "fake FTP server\nready")
    await s.start_tls()
    await s.login("user", "pass")
    assert await s.download("RETR x", expected=300_000) == 300_000
    assert await s.upload("STOR y", 2_500_000, epsv=True) == 2_500_000
    await s.quit()
    assert ftps.tls_sessions == 1
    # Both data connections were TLS and resumed the control connection's session.
    assert [(d.command, d.tls, d.resumed, d.nbytes) for d in ftps.data] == [
        ("RETR", True, True, 300_000),
        ("STOR", True, True, 2_500_000),
    ]


def test_cli_tls_with_cafile(ftps: FakeFtp, ca: trustme.CA, tmp_path: Path) -> None:
    cafile = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    rc, r, log = run_load(
        ["retr", "-c", "2", *_args(ftps), "--tls", "--cafile", str(cafile), "--file", "/f"]
        + ["--duration", "1"],
        tmp_path,
    )
    assert rc == 0, log
    assert_sane(r, "retr")
    assert r["errors"] == {} and r["counts"]["retr"] >= 2
    assert r["bytes"]["retr"] == 300_000 * r["counts"]["retr"]
    # The set-up session and the two workers' sessions all went through AUTH TLS.
    assert ftps.tls_sessions == 3
    assert ftps.data and all(d.tls and d.resumed for d in ftps.data)


def test_cli_tls_verification(ftps: FakeFtp, tmp_path: Path) -> None:
    # The certificate's CA is unknown to the system store: refused, and counted as such...
    rc, r, log = run_load(["hold", "3", *_args(ftps), "--tls", "--duration", "0.5"], tmp_path)
    assert rc == 1, log
    assert r["errors"] == {"establish SSLCertVerificationError": 3}
    # ...unless the operator says --insecure.
    rc, r, log = run_load(
        ["hold", "3", *_args(ftps), "--tls", "--insecure", "--duration", "0.5"], tmp_path
    )
    assert rc == 0, log
    assert r["sessions"]["alive_at_end"] == 3


def test_source_addresses_round_robin(tmp_path: Path) -> None:
    server = FakeFtp(file_size=5000).start()
    try:
        rc, r, log = run_load(
            ["small", "-c", "6", *_args(server), "--file", "/f", "--count", "12"]
            + ["--source-addresses", "127.0.0.2-127.0.0.4", "--procs", "2"],
            tmp_path,
        )
    finally:
        server.stop()
    assert rc == 0, log
    assert r["counts"] == {"establish": 6, "retr": 12}
    # Set-up session from the first address, then the workers' six sessions spread over all.
    workers = server.control_peers[1:]
    assert sorted(set(workers)) == ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    assert all(workers.count(a) == 2 for a in set(workers))
    # A data connection comes from the same address as its control connection (servers
    # refuse foreign data connections, RFC 2577).
    assert len(server.data) == 12
    assert all(d.data_peer == d.control_peer for d in server.data)


def test_ftpd_explicit_tls_with_session_reuse(
    ftpd_factory: Any, ca: trustme.CA, tmp_path: Path
) -> None:
    cert = ca.issue_cert("127.0.0.1")
    cert_file, key_file, ca_file = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    ca.cert_pem.write_to_path(str(ca_file))
    # ftpd requires data connections to resume the control connection's TLS session.
    server = ftpd_factory(
        tls="required",
        tls_cert=str(cert_file),
        tls_key=str(key_file),
        tls_require_session_reuse=True,
    )
    rc, r, log = run_load(
        ["small", "-c", "4", *server_args(server), "--tls", "--cafile", str(ca_file)]
        + ["--mix", "retr=1,stor=1", "--duration", "1.5", "--epsv"],
        tmp_path,
    )
    assert rc == 0, log
    assert_sane(r, "small")
    assert r["errors"] == {}
    assert r["counts"]["retr"] > 4 and r["counts"]["stor"] > 4
    assert r["bytes"]["retr"] == 4096 * r["counts"]["retr"]
    assert not list(server.root.glob("ftpd-load-*"))
