"""The pytest plugin, used as a user would: test files run by pytester, with real clients
(ftplib, raw sockets) against the fixtures' servers, and fault injection observed from the
client's side."""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

# Imported here, in the outer session: pytester's in-process runs drop the modules they import
# afterwards, and cryptography (under trustme) does not survive being imported twice.
import trustme  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
PLUGIN = "ftpd.testing.plugin"
# A user's run: the plugin, and the loop scope a project sets (pytest-asyncio warns where it is
# unset).
USER_ARGS = ("-p", PLUGIN, "-p", "no:cacheprovider", "-o", "asyncio_default_fixture_loop_scope=function")
HEADER = """
import ftplib, io, socket, ssl, time
import pytest
from ftpd.events import EventKind

def login(server, cls=ftplib.FTP, **kw):
    ftp = cls(timeout=10, **kw)
    ftp.connect(server.host, server.port)
    ftp.login(server.user, server.password)
    return ftp
"""


def run(pytester: pytest.Pytester, body: str, *args: str, passed: int) -> pytest.RunResult:
    """Run ``body`` (after HEADER) as a user's test file; all its tests must pass."""
    pytester.makepyfile(test_user=HEADER + textwrap.dedent(body))
    result = pytester.runpytest_inprocess(*USER_ARGS, *args)
    result.assert_outcomes(passed=passed)
    return result


def test_ftp_server_fixture(pytester: pytest.Pytester) -> None:
    run(
        pytester,
        """
        from pathlib import Path
        from urllib.parse import urlsplit

        def test_it(ftp_server):
            assert isinstance(ftp_server.home, Path) and ftp_server.home.is_dir()
            (ftp_server.home / "hello.txt").write_bytes(b"hi")
            ftp = login(ftp_server)
            assert ftp.nlst() == ["hello.txt"]
            ftp.storbinary("STOR up.bin", io.BytesIO(b"x" * 5000))
            ftp.quit()
            assert (ftp_server.home / "up.bin").read_bytes() == b"x" * 5000
            url = urlsplit(ftp_server.url)
            assert (url.scheme, url.hostname, url.port) == ("ftp", "127.0.0.1", ftp_server.port)
            assert (url.username, url.password) == (ftp_server.user, ftp_server.password)
            up = ftp_server.wait_for(EventKind.UPLOAD, path="/up.bin")
            assert up.size == 5000 and up.real_path == str(ftp_server.home / "up.bin")
            assert not ftp_server.anonymous and ftp_server.ca_file is None

        def test_fresh_per_test(ftp_server):
            assert list(ftp_server.home.iterdir()) == []  # function scope: a new home
    """,
        passed=2,
    )


def test_anonymous_and_ipv6_by_marker(pytester: pytest.Pytester) -> None:
    run(
        pytester,
        """
        @pytest.mark.ftpd(anonymous=True, ipv6=True)
        def test_it(ftp_server):
            assert ftp_server.host == "::1" and ftp_server.url.startswith("ftp://user:")
            assert "[::1]" in ftp_server.url
            (ftp_server.home / "pub.txt").write_bytes(b"public")
            ftp = ftplib.FTP(timeout=10)
            ftp.connect("::1", ftp_server.port)
            ftp.login()  # anonymous
            got = io.BytesIO()
            ftp.retrbinary("RETR pub.txt", got.write)
            assert got.getvalue() == b"public"
            with pytest.raises(ftplib.error_perm, match="^550"):
                ftp.storbinary("STOR nope", io.BytesIO(b"x"))  # anonymous is read-only

        def test_default_is_no_anonymous(ftp_server):
            ftp = ftplib.FTP(timeout=10)
            ftp.connect(ftp_server.host, ftp_server.port)
            with pytest.raises(ftplib.error_perm, match="^530"):
                ftp.login()
    """,
        passed=2,
    )


def test_ini_options_and_scope(pytester: pytest.Pytester) -> None:
    body = """
        seen = []

        def test_one(ftp_server):
            seen.append(ftp_server.port)
            ftp = ftplib.FTP(timeout=10)
            ftp.connect(ftp_server.host, ftp_server.port)
            ftp.login()  # anonymous, from the ini file
            ftp_server.faults.refuse_logins(times=None)

        def test_two(ftp_server):
            login(ftp_server).quit()  # faults were cleared between the tests
            assert seen == [ftp_server.port]  # one server for the module
    """
    pytester.makeini("[pytest]\nftpd_anonymous = true\nftpd_scope = module\n")
    run(pytester, body, passed=2)
    pytester.makeini("[pytest]\nftpd_anonymous = true\n")
    run(pytester, body, "--ftpd-scope", "module", passed=2)
    pytester.makepyfile(test_user=HEADER + textwrap.dedent(body))
    result = pytester.runpytest_inprocess(*USER_ARGS)
    result.assert_outcomes(passed=1, failed=1)  # function scope: test_two gets its own server
    result.stdout.fnmatch_lines(["*assert seen == *"])


def test_ftps_server_verifies_with_its_ca(pytester: pytest.Pytester) -> None:
    run(
        pytester,
        """
        def test_it(ftps_server):
            assert ftps_server.tls and ftps_server.ca_file.is_file()
            (ftps_server.home / "secret.txt").write_bytes(b"s3cret")
            ctx = ssl.create_default_context(cafile=str(ftps_server.ca_file))
            ftp = login(ftps_server, ftplib.FTP_TLS, context=ctx)  # AUTH TLS, verified
            ftp.prot_p()
            got = io.BytesIO()
            ftp.retrbinary("RETR secret.txt", got.write)
            assert got.getvalue() == b"s3cret"
            assert ftp.sock.getpeercert()["subjectAltName"]
            ftp.quit()

        def test_without_the_ca_verification_fails(ftps_server):
            ftp = ftplib.FTP_TLS(timeout=10, context=ssl.create_default_context())
            ftp.connect(ftps_server.host, ftps_server.port)
            with pytest.raises(ssl.SSLCertVerificationError):
                ftp.auth()
    """,
        passed=2,
    )


def test_fault_fail_next(pytester: pytest.Pytester) -> None:
    run(
        pytester,
        """
        def test_before_data(ftp_server):
            ftp = login(ftp_server)
            ftp_server.faults.fail_next("STOR", "452 Disk full.")
            with pytest.raises(ftplib.error_temp, match="^452 Disk full"):
                ftp.storbinary("STOR a.bin", io.BytesIO(b"data"))
            assert not (ftp_server.home / "a.bin").exists()
            ftp.storbinary("STOR a.bin", io.BytesIO(b"data"))  # only the next one failed
            assert (ftp_server.home / "a.bin").read_bytes() == b"data"

        def test_after_data(ftp_server):
            (ftp_server.home / "a.bin").write_bytes(b"old")
            ftp = login(ftp_server)
            ftp_server.faults.fail_next("STOR", "451 Checksum mismatch.", stage="end")
            ftp.voidcmd("TYPE I")
            conn = ftp.transfercmd("STOR a.bin")  # 150: the data goes through
            conn.sendall(b"new data")
            conn.close()
            with pytest.raises(ftplib.error_temp, match="^451 Checksum mismatch"):
                ftp.voidresp()
            assert (ftp_server.home / "a.bin").read_bytes() == b"old"

        def test_other_commands(ftp_server):
            (ftp_server.home / "f").write_bytes(b"")
            ftp = login(ftp_server)
            ftp_server.faults.fail_next("DELE", "550 Not today.")
            ftp_server.faults.fail_next("RETR", "550 Locked.", times=2)
            with pytest.raises(ftplib.error_perm, match="^550 Not today"):
                ftp.delete("f")
            for _ in range(2):
                with pytest.raises(ftplib.error_perm, match="^550 Locked"):
                    ftp.retrbinary("RETR f", lambda b: None)
            ftp.retrbinary("RETR f", lambda b: None)
            ftp.delete("f")
    """,
        passed=3,
    )


def test_fault_cut_and_throttle(pytester: pytest.Pytester) -> None:
    run(
        pytester,
        """
        def test_cut_download(ftp_server):
            (ftp_server.home / "big").write_bytes(bytes(range(256)) * 400)
            ftp = login(ftp_server)
            ftp_server.faults.cut_data(after=10_000, command="RETR")
            got = bytearray()
            with pytest.raises(ftplib.error_temp, match="^426"):
                ftp.retrbinary("RETR big", got.extend)
            assert bytes(got) == (bytes(range(256)) * 400)[:10_000]
            got.clear()
            ftp.retrbinary("RETR big", got.extend)  # the next one is whole
            assert len(got) == 102_400
            event = ftp_server.wait_for(EventKind.DOWNLOAD_FAILED)
            assert (event.size, event.outcome) == (10_000, "lost")

        def test_cut_upload(ftp_server):
            ftp = login(ftp_server)
            ftp_server.faults.cut_data(after=1000)
            with pytest.raises((ftplib.error_temp, OSError)):
                ftp.storbinary("STOR up", io.BytesIO(b"u" * 200_000))
                ftp.voidcmd("NOOP")  # the 426, if the data went out before the cut
            assert not (ftp_server.home / "up").exists()

        def test_throttle(ftp_server):
            (ftp_server.home / "f").write_bytes(b"t" * 30_000)
            ftp = login(ftp_server)
            ftp_server.faults.throttle(60_000)
            began = time.monotonic()
            got = bytearray()
            ftp.retrbinary("RETR f", got.extend)
            took = time.monotonic() - began
            assert len(got) == 30_000 and took >= 0.45, took  # 30 kB at 60 kB/s: 0.5 s
            ftp_server.faults.throttle(0)
            began = time.monotonic()
            ftp.retrbinary("RETR f", got.extend)
            assert time.monotonic() - began < took
    """,
        passed=3,
    )


def test_fault_logins_and_control(pytester: pytest.Pytester) -> None:
    run(
        pytester,
        """
        def test_refuse_logins(ftp_server):
            ftp_server.faults.refuse_logins()
            ftp = ftplib.FTP(timeout=10)
            ftp.connect(ftp_server.host, ftp_server.port)
            with pytest.raises(ftplib.error_perm, match="^530"):
                ftp.login(ftp_server.user, ftp_server.password)
            ftp.login(ftp_server.user, ftp_server.password)  # the next one is let in
            ftp_server.faults.refuse_logins(reply="421 Maintenance.")
            other = ftplib.FTP(timeout=10)
            other.connect(ftp_server.host, ftp_server.port)
            with pytest.raises(ftplib.error_temp, match="^421 Maintenance"):
                other.login(ftp_server.user, ftp_server.password)

        def test_drop_now(ftp_server):
            ftp = login(ftp_server)
            assert ftp_server.faults.drop_control() == 1
            with pytest.raises((EOFError, OSError)):
                ftp.voidcmd("NOOP")

        def test_drop_mid_download(ftp_server):
            (ftp_server.home / "f").write_bytes(b"d" * 500_000)
            ftp = login(ftp_server)
            ftp_server.faults.drop_control(on="RETR", after=50_000)
            got = bytearray()
            with pytest.raises((EOFError, OSError, ftplib.Error)):
                ftp.retrbinary("RETR f", got.extend)
            assert 50_000 <= len(got) < 500_000
            login(ftp_server).quit()  # the server itself is fine
    """,
        passed=3,
    )


def test_factory(pytester: pytest.Pytester) -> None:
    run(
        pytester,
        """
        def test_two_servers(ftp_server_factory, tmp_path):
            a = ftp_server_factory()
            b = ftp_server_factory(tls=True, home=tmp_path / "shared", banner="Hello there.")
            assert a.port != b.port and b.home == tmp_path / "shared"
            ftp = ftplib.FTP_TLS(timeout=10, context=b.client_context())
            assert ftp.connect(b.host, b.port).startswith("220 Hello there.")
            ftp.login(b.user, b.password)
            login(a).quit()
    """,
        passed=1,
    )


def test_startup_is_well_under_100_ms(pytester: pytest.Pytester) -> None:
    """Each fresh server's own start-up (a thread, a loop, the listener) as the fixture measures
    it; the median of ten, so that one slow start on a loaded machine does not decide."""
    result = run(
        pytester,
        """
        @pytest.mark.parametrize("i", range(10))
        def test_start(ftp_server, i):
            print("STARTUP", ftp_server.startup_seconds)
    """,
        "-s",
        passed=10,
    )
    times = [float(t) for t in re.findall(r"STARTUP (\S+)", "\n".join(result.outlines))]
    assert len(times) == 10
    assert statistics.median(times) < 0.1, times


def test_plugin_is_inert_until_used(pytester: pytest.Pytester) -> None:
    """Loaded through a ``pytest11`` entry point exactly as pyproject.toml declares it (a
    throw-away dist-info on the path), in a fresh interpreter: a session that uses no fixture
    imports no part of ftpd's server and starts no thread."""
    entry = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["entry-points"]
    ((name, target),) = entry["pytest11"].items()
    dist = pytester.mkdir("site") / "ftpd_plugin_check-0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ftpd-plugin-check\nVersion: 0\n")
    (dist / "entry_points.txt").write_text(f"[pytest11]\n{name} = {target}\n")
    pytester.makepyfile(
        test_user="""
        import sys, threading

        def test_unused(request):
            assert request.config.pluginmanager.has_plugin("ftpd.testing.plugin")
            assert not [m for m in sys.modules if m.startswith(("ftpd.api", "ftpd.server"))]
            assert threading.active_count() == 1
    """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(dist.parent), str(REPO)])}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--fixtures"],
        cwd=pytester.path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "ftp_server" in proc.stdout and "ftps_server" in proc.stdout, proc.stdout[-2000:]
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=pytester.path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0 and "1 passed" in proc.stdout, proc.stdout[-2000:]
