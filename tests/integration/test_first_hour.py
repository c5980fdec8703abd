"""The first hour of a new user (issue 19, part 6): what start-up prints, warns and refuses.

Each test drives the real command (``python -m ftpd`` in a subprocess, or ``cli.main``) and, where
it matters, a real client.
"""

from __future__ import annotations

import ftplib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import pytest

from ftpd import cli
from ftpd.config import Config
from ftpd.startup import ephemeral_overlap, unknown_env

REPO = Path(__file__).resolve().parents[2]


def ftpd(
    *argv: str, env: dict[str, str] | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("FTPD_")}
    base["PYTHONPATH"] = str(REPO)
    return subprocess.run([sys.executable, "-m", "ftpd", *argv], capture_output=True, text=True,
                          timeout=60, env={**base, **(env or {})}, input=stdin)  # fmt: skip


def busy_port() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


@pytest.mark.parametrize("workers", ["1", "2"])
def test_port_in_use_is_one_line_whatever_the_workers(workers: str, tmp_path: Path) -> None:
    with busy_port() as sock:
        port = str(sock.getsockname()[1])
        run = ftpd("--workers", workers, "--port", port, "--root", str(tmp_path), "--password", "x")
    assert run.returncode == 2, run.stderr
    errors = [line for line in run.stderr.splitlines() if "error" in line.lower()]
    assert errors == [f"ftpd: error: cannot listen on 127.0.0.1:{port}: Address already in use"]
    assert "Traceback" not in run.stderr


def test_a_worker_that_cannot_start_says_why_in_one_line(tmp_path: Path) -> None:
    with busy_port() as sock:
        metrics = str(sock.getsockname()[1])  # worker 0's metrics port (worker i: port + i)
        run = ftpd("--workers", "2", "--port", "0", "--metrics-port", metrics, "--root",
                   str(tmp_path), "--password", "x")  # fmt: skip
    assert run.returncode != 0
    assert "Traceback" not in run.stderr
    assert re.search(rf"^ftpd: error: worker 0: cannot serve metrics on 127\.0\.0\.1:{metrics}: ",
                     run.stderr, re.M), run.stderr  # fmt: skip


def test_users_file_only_says_what_is_served_and_how_to_log_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    users = tmp_path / "users.toml"
    for name in ("alice", "bob"):
        add = ftpd("user", "add", name, "--home", str(tmp_path / name), "--users-file", str(users),
                   stdin="pw\n")  # fmt: skip
        assert add.returncode == 0, add.stderr
    monkeypatch.chdir(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ftpd", "--users-file", str(users), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        serving, connect = proc.stdout.readline().strip(), proc.stdout.readline().strip()
        m = re.fullmatch(r"ftpd serving (.*) on 127\.0\.0\.1:(\d+)", serving)
        assert m, serving
        assert m.group(1) == f'the homes of 2 user(s) of the users file "{users}"'
        assert connect == (
            f"connect with: ftp://alice@127.0.0.1:{m.group(2)}/ (or another user "
            f'of the users file "{users}", with the password set there)'
        )
        assert not (tmp_path / "ftp-root").exists()  # the single user's default root: not used
        ftp = ftplib.FTP()
        ftp.connect("127.0.0.1", int(m.group(2)), timeout=20)
        with pytest.raises(ftplib.error_perm, match="^530"):
            ftp.login("user", "")  # no single user: the printed URL's user is a real one
        ftp.close()
    finally:
        proc.terminate()
        proc.wait(15)


def test_license_is_mit_as_pyproject_says() -> None:
    text = (REPO / "LICENSE").read_text()
    assert text.startswith("MIT License") and "WITHOUT WARRANTY OF ANY KIND" in text
    with open(REPO / "pyproject.toml", "rb") as fh:
        assert tomllib.load(fh)["project"]["license"] == {"text": "MIT"}


def test_unknown_ftpd_variables_warn_with_a_did_you_mean(tmp_path: Path) -> None:
    assert unknown_env({"FTPD_PORTT": "2", "FTPD_PORT": "21", "FTPD_REQUIRE_CLIENTS": "1",
                        "FTPD_CONFIG": "x", "HOME": "/"}) == [
        "unknown environment variable FTPD_PORTT is ignored (did you mean FTPD_PORT?)"
    ]  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "ftpd", "--port", "0", "--root", str(tmp_path), "--password", "x"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO), "FTPD_PORTT": "2", "FTPD_XYZZY": "1"},
    )  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.readline().startswith("ftpd serving ")  # it starts anyway
        err = [proc.stderr.readline().strip() for _ in range(2)]
    finally:
        proc.terminate()
        proc.wait(15)
    assert err == [
        "ftpd: warning: unknown environment variable FTPD_PORTT is ignored "
        "(did you mean FTPD_PORT?)",
        "ftpd: warning: unknown environment variable FTPD_XYZZY is ignored",
    ]


def test_pasv_ports_in_the_ephemeral_range_warn(tmp_path: Path) -> None:
    fake = tmp_path / "ip_local_port_range"
    fake.write_text("32768\t60999\n")
    inside = ephemeral_overlap(Config(pasv_ports="60000-61999"), str(fake))
    assert inside is not None and "overlaps the system's ephemeral port range 32768-60999" in inside
    assert "on 60000-60999" in inside
    assert ephemeral_overlap(Config(pasv_ports="61000-61999"), str(fake)) is None
    assert ephemeral_overlap(Config(), str(tmp_path / "absent")) is None
    # The real start-up, with a range chosen inside this machine's own ephemeral range.
    low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    run = _start_and_stop("--pasv-ports", f"{low}-{low + 9}", "--root", str(tmp_path))
    assert f"overlaps the system's ephemeral port range {low}-{high}" in run


def _start_and_stop(*argv: str) -> str:
    """Start the server, wait for its start-up lines, stop it; its standard error."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "ftpd", "--port", "0", "--password", "x", *argv],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("FTPD_")},
             "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("ftpd serving "), proc.stderr
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=15)
    return err


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to an unprivileged user")
def test_unwritable_home_of_a_writing_user_warns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As root every directory is writable, so the check runs in a child switched to nobody.
    # Not under pytest's tmp tree: that is root's alone (0700), and nobody must reach the home.
    base = Path(tempfile.mkdtemp(prefix="ftpd-unwritable-"))
    os.chmod(base, 0o755)
    root = base / "root-owned"
    root.mkdir(mode=0o755)
    monkeypatch.setattr(cli, "_server_run", lambda config, on_ready: 0)
    warnings = {}
    for perms in ("write", "read-only"):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            code = 1
            try:
                os.setgid(65534)
                os.setuid(65534)
                os.dup2(w, 2)
                sys.stderr = os.fdopen(2, "w")
                argv = ["--root", str(root), "--password", "x", "--port", "0"]
                if perms == "read-only":
                    argv = ["--anonymous", "--users-file", "/dev/null", "--root", str(root)]
                code = cli.main(argv)
            finally:
                os._exit(code)
        os.close(w)
        with os.fdopen(r) as fh:
            warnings[perms] = fh.read()
        os.waitpid(pid, 0)
    shutil.rmtree(base)
    assert re.search(r"ftpd: warning: the home of user \"user\" \(.*root-owned\) is not writable "
                     r"by this process \(uid 65534\)", warnings["write"]), warnings  # fmt: skip
    assert "not writable" not in warnings["read-only"], warnings  # anonymous is read-only


def test_ftplib_size_right_after_login(ftpd_server: Any) -> None:
    (ftpd_server.root / "f.bin").write_bytes(b"\n" * 1234)
    ftp = ftplib.FTP()
    ftp.connect(ftpd_server.host, ftpd_server.port, timeout=20)
    ftp.login(ftpd_server.user, ftpd_server.password)
    assert ftp.size("f.bin") == 1234  # ftplib sends no TYPE I first: the stored size, as vsftpd
    ftp.quit()


def test_help_usage_names_serve_and_one_default_per_option() -> None:
    run = ftpd("--help")
    assert run.returncode == 0
    usage = run.stdout.split("\n\n")[0]
    assert "ftpd [serve] [--config FILE]" in usage and "ftpd user " in usage
    text = " ".join(run.stdout.split())
    options = text.split(" other commands: ")[0]
    for option in re.split(r" (?=--[a-z])", options):
        assert option.count("default") <= 1, option
    assert "--anonymous-root TEXT home of anonymous users (empty: the same as root)" in text
