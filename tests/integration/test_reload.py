"""Live reload (issue 19 part 4): SIGHUP and ``ftpd reload`` on a real server, with sessions and
a transfer running across it, a TLS certificate renewed in place, and workers."""

from __future__ import annotations

import ftplib
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import trustme
from integ_helpers import ftp_connect
from support.waits import wait_until

TIMEOUT = 10.0


def write_config(path: Path, **values: object) -> Path:
    lines = []
    for key, value in values.items():
        text = ("true" if value else "false") if isinstance(value, bool) else value
        lines.append(f"{key} = {text if not isinstance(value, str) else repr(value)}\n")
    path.write_text("".join(lines).replace("'", '"'))
    return path


def greeting(srv: Any) -> str:
    with socket.create_connection((srv.host, srv.port), TIMEOUT) as s:
        return s.makefile("rb").readline().decode().strip()


def reload_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ftpd", "reload", *args], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PYTHONPATH": os.getcwd()})  # fmt: skip


def test_reload_through_the_pid_file_keeps_running_transfers(
    ftpd_factory: Any, tmp_path: Path
) -> None:
    pid_file = tmp_path / "ftpd.pid"
    cfg = write_config(tmp_path / "ftpd.toml", banner="before", pid_file=str(pid_file))
    srv = ftpd_factory(config=cfg)
    assert int(pid_file.read_text()) == srv.pid
    assert greeting(srv) == "220 before"
    payload = os.urandom(24 << 20)
    (srv.root / "big.bin").write_bytes(payload)
    ftp = ftp_connect(srv)
    ftp.voidcmd("TYPE I")
    conn = ftp.transfercmd("RETR big.bin")  # a download that runs across the reload
    got = bytearray(conn.recv(1 << 20))

    write_config(cfg, banner="after", pid_file=str(pid_file), max_sessions=7)
    run = reload_cli("--config", str(cfg))
    assert run.returncode == 0, run.stderr
    assert f"process {srv.pid}" in run.stdout
    assert wait_until(lambda: "reloaded configuration: max_sessions, banner" in srv.log())
    assert greeting(srv) == "220 after"  # new sessions: the new settings

    while chunk := conn.recv(1 << 20):
        got += chunk
    conn.close()
    assert ftp.voidresp().startswith("226")
    assert bytes(got) == payload
    assert ftp.voidcmd("NOOP").startswith("200")  # the old session goes on
    ftp.quit()
    srv.stop()
    assert not pid_file.exists()


def test_an_invalid_configuration_is_refused_and_the_old_one_stays(
    ftpd_factory: Any, tmp_path: Path
) -> None:
    cfg = write_config(tmp_path / "ftpd.toml", banner="good")
    srv = ftpd_factory(config=cfg)
    for bad in ('banner = "x"\nmax_per_ip = "lots"\n', "banner = [unclosed\n",
                'banner = "x"\non_upload = "/no/such/hook"\n'):  # fmt: skip
        cfg.write_text(bad)
        before = srv.log().count("reload refused")
        os.kill(srv.pid, signal.SIGHUP)
        assert wait_until(lambda b=before: srv.log().count("reload refused") == b + 1)
        assert greeting(srv) == "220 good"
    lines = [line for line in srv.log().splitlines() if "reload refused" in line]
    assert len(lines) == 3
    assert "max_per_ip" in lines[0] and "not valid TOML" in lines[1] and "on_upload" in lines[2]
    # Keys of the process itself are kept, the others applied, and the log says which.
    write_config(cfg, banner="fine", workers=4, max_download_rate="256K")
    os.kill(srv.pid, signal.SIGHUP)
    assert wait_until(lambda: "reloaded configuration: banner, max_download_rate" in srv.log())
    assert "workers changed but need(s) a restart" in srv.log()
    assert greeting(srv) == "220 fine"
    # New sessions get the new limits: 512 KiB at 256 KiB/s takes about 2 s.
    (srv.root / "half.bin").write_bytes(b"h" * (512 << 10))
    ftp = ftp_connect(srv)
    start = time.monotonic()
    ftp.retrbinary("RETR half.bin", lambda b: None)
    assert 1.7 <= time.monotonic() - start <= 2.6
    ftp.quit()
    assert srv.proc.poll() is None


def _pki(d: Path, name: str) -> tuple[trustme.CA, Path, Path]:
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    leaf.private_key_pem.write_to_path(str(d / f"{name}-key.pem"))
    leaf.cert_chain_pems[0].write_to_path(str(d / f"{name}-cert.pem"))
    ca.cert_pem.write_to_path(str(d / f"{name}-ca.pem"))
    return ca, d / f"{name}-cert.pem", d / f"{name}-key.pem"


def test_a_renewed_certificate_is_used_by_new_sessions_only(
    ftpd_factory: Any, tmp_path: Path
) -> None:
    _, cert_a, key_a = _pki(tmp_path, "a")
    _, cert_b, key_b = _pki(tmp_path, "b")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_bytes(cert_a.read_bytes())
    key.write_bytes(key_a.read_bytes())
    srv = ftpd_factory(tls="explicit", tls_cert=cert, tls_key=key, tls_require_session_reuse=False)
    (srv.root / "f.bin").write_bytes(b"tls" * 100_000)

    def session(ca: Path) -> ftplib.FTP_TLS:
        ftp = ftplib.FTP_TLS(context=ssl.create_default_context(cafile=str(ca)), timeout=TIMEOUT)
        ftp.connect(srv.host, srv.port)
        ftp.login(srv.user, srv.password)
        ftp.prot_p()
        return ftp

    old = session(tmp_path / "a-ca.pem")
    cert.write_bytes(cert_b.read_bytes())  # renewed in place: same paths
    key.write_bytes(key_b.read_bytes())
    os.kill(srv.pid, signal.SIGHUP)
    assert wait_until(lambda: "reloaded configuration" in srv.log())
    new = session(tmp_path / "b-ca.pem")  # verifies against the new CA only
    with pytest.raises(ssl.SSLCertVerificationError):
        session(tmp_path / "a-ca.pem")
    for ftp in (old, new):  # the session from before still transfers under its TLS
        got: list[bytes] = []
        ftp.retrbinary("RETR f.bin", got.append)
        assert b"".join(got) == b"tls" * 100_000
        ftp.quit()
    # A broken new key: refused, the renewed certificate stays in force.
    key.write_text("not a key")
    os.kill(srv.pid, signal.SIGHUP)
    assert wait_until(lambda: "reload refused" in srv.log() and "tls_cert/tls_key" in srv.log())
    session(tmp_path / "b-ca.pem").quit()


def test_workers_reload_together(ftpd_factory: Any, tmp_path: Path) -> None:
    pid_file = tmp_path / "ftpd.pid"
    cfg = write_config(tmp_path / "ftpd.toml", banner="one", pid_file=str(pid_file))
    srv = ftpd_factory(config=cfg, workers=2)
    write_config(cfg, banner="two", pid_file=str(pid_file))
    assert reload_cli("--pid-file", str(pid_file)).returncode == 0
    assert wait_until(lambda: srv.log().count("reloaded configuration: banner") == 2)
    assert "need(s) a restart" not in srv.log()  # the shared port is no "change"
    for _ in range(6):  # whichever worker the kernel picks
        assert greeting(srv) == "220 two"


def test_reload_without_a_pid_file_is_one_line(tmp_path: Path) -> None:
    run = reload_cli("--pid-file", str(tmp_path / "none.pid"))
    assert run.returncode == 2
    assert (
        run.stderr.startswith("ftpd: error: cannot read pid_file") and run.stderr.count("\n") == 1
    )
