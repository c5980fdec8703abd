"""Helpers for the interop suite: find a client, run it with timeouts in an isolated home, seed files.

Every client runs as a subprocess with two limits: its own network timeout (``--max-time``,
``net:timeout``, ``-t``, ...) and the subprocess timeout below, which kills the child by PID.
``HOME`` points into the test's tmp dir and proxy variables are dropped, so that the machine's
``~/.netrc``, ``~/.curlrc``, ``~/.lftprc``, ``~/.ncftp``, ``~/.wgetrc``, rclone config or an
``ftp_proxy`` can never change what a test does.

Results are checked on the server's filesystem (``FtpdProcess.root``), never through a client's
exit code alone. A client missing from the machine skips its tests with the ``apt-get`` line that
installs it; with ``FTPD_REQUIRE_CLIENTS=1`` (set by ``.ci/run``) it fails them instead.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.env import missing

REPLY_LINE = re.compile(r"\d{3}[ -]")
CLIENT_TIMEOUT = 40.0  # subprocess limit (s); each client's own network timeout is 10-20 s
NET_TIMEOUT = 10  # the clients' own connect/read timeout (s)

# Binary on purpose: every byte value, bare CR, bare LF and CRLF, so that a transfer done in ASCII
# mode by mistake (or a server that translates line ends in TYPE I) changes the bytes. 128 KiB, so
# that the data connection carries more than one socket buffer.
PAYLOAD = bytes(range(256)) * 512 + b"end\r\nline\nbare\r\xff"
SMALL = b"a small text file\n"
# The files every seeded home starts with (virtual path -> content); "docs" is a directory.
SEED = {"hello.txt": PAYLOAD, "docs/readme.txt": SMALL}
# Names that break naive clients and servers: spaces, and non-ASCII UTF-8 (NFC).
SPACE_NAME = "name with spaces.txt"
UTF8_NAME = "naïve-ünïcødé-文件.txt"
SPACE_DIR = "dir with spaces"


def require(program: str, package: str | None = None) -> str:
    """The absolute path of ``program``; skip (or fail under FTPD_REQUIRE_CLIENTS) if missing."""
    path = shutil.which(program)
    if path is not None:
        return path
    missing(f"{program} is not installed (apt-get install -y {package or program})")
    raise AssertionError("unreachable")  # missing() skips or fails


def client_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a client subprocess: isolated HOME, UTF-8 locale, no proxies, no rclone."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.lower().endswith("_proxy") and not k.startswith("RCLONE_")
    }
    env.update(HOME=str(home), LC_ALL="C.UTF-8", LANG="C.UTF-8", TZ="UTC")
    env.update(extra)
    return env


@dataclass
class Result:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str

    def describe(self) -> str:
        return (
            f"$ {' '.join(self.argv)}\nexit {self.returncode}\n"
            f"--- stdout ---\n{self.stdout[-4000:]}\n--- stderr ---\n{self.stderr[-4000:]}"
        )


def run(
    argv: list[str],
    cwd: Path,
    *,
    input: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = CLIENT_TIMEOUT,
    check: bool = True,
) -> Result:
    """Run a client; fail the test with its output on a timeout or (if ``check``) a non-zero exit."""
    try:
        p = subprocess.run(
            argv,
            cwd=cwd,
            input=input,
            env=env if env is not None else client_env(cwd),
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:  # subprocess.run has killed the child by now
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr
        pytest.fail(
            f"{argv[0]} timed out after {timeout}s\n{Result(argv, -9, out or '', err or '').describe()}",
            pytrace=False,
        )
    res = Result(argv, p.returncode, p.stdout, p.stderr)
    if check and res.returncode != 0:
        pytest.fail(f"{Path(argv[0]).name} failed\n{res.describe()}", pytrace=False)
    return res


def seed(root: Path) -> None:
    """Create the SEED files under a server's home."""
    for rel, data in SEED.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


def write_local(workdir: Path, name: str, data: bytes) -> Path:
    p = workdir / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


def upload_payload(tag: str) -> bytes:
    """A payload distinct per upload, so a test cannot pass by finding the wrong file's bytes."""
    return tag.encode() + b"\r\n" + PAYLOAD[::-1]


def listing_names(text: str) -> set[str]:
    """Names in a Unix ``ls -l`` style LIST reply (the 9th field onwards, spaces kept)."""
    names = set()
    for line in text.splitlines():
        parts = line.split(None, 8)
        if len(parts) == 9 and parts[0][:1] in "-dl":
            names.add(parts[8].split(" -> ", 1)[0])
    return names


def top_names(root: Path) -> set[str]:
    """The entries of a directory on the server's disk, as the expected result of a listing."""
    return {p.name for p in root.iterdir()}


def ftp_url(srv: object, path: str = "/", *, with_login: bool = True) -> str:
    """``ftp://user:pass@host:port/path`` (IPv6 hosts bracketed; path must already be quoted)."""
    host = srv.host  # type: ignore[attr-defined]
    if ":" in host:
        host = f"[{host}]"
    auth = f"{srv.user}:{srv.password}@" if with_login else ""  # type: ignore[attr-defined]
    return f"ftp://{auth}{host}:{srv.port}{path}"  # type: ignore[attr-defined]


def sent_commands(transcript: str, prefix: str) -> list[str]:
    """Commands a client logged as sent, e.g. lftp's ``---> FEAT`` lines with prefix ``---> ``."""
    return [
        line[len(prefix) :].strip() for line in transcript.splitlines() if line.startswith(prefix)
    ]


def replies_to(transcript: str, sent_prefix: str, reply_prefix: str) -> list[tuple[str, str]]:
    """(command, first reply line after it) pairs from a client's debug transcript."""
    pairs: list[tuple[str, str]] = []
    pending: str | None = None
    for line in transcript.splitlines():
        if line.startswith(sent_prefix):
            pending = line[len(sent_prefix) :].strip()
        elif pending is not None and line.startswith(reply_prefix):
            text = line[len(reply_prefix) :].strip()
            if REPLY_LINE.match(text):
                pairs.append((pending, text))
                pending = None
    return pairs


def reply_code(pairs: list[tuple[str, str]], command: str) -> str:
    """The reply code to the first command that starts with ``command`` in ``pairs``."""
    for cmd, reply in pairs:
        if cmd.upper().startswith(command.upper()):
            return reply[:3]
    raise AssertionError(f"{command!r} was not sent; sent: {[c for c, _ in pairs]}")


def assert_dir(root: Path, rel: str) -> None:
    assert (root / rel).is_dir(), (
        f"{rel} is not a directory on the server; home has {sorted(top_names(root))}"
    )


def assert_file(root: Path, rel: str, data: bytes) -> None:
    p = root / rel
    assert p.is_file(), f"{rel} missing on the server; its directory has {_siblings(p)}"
    got = p.read_bytes()
    assert got == data, f"{rel}: {len(got)} bytes on the server, expected {len(data)}"


def assert_absent(root: Path, rel: str) -> None:
    p = root / rel
    assert not p.exists(), f"{rel} still exists on the server"


def tree(root: Path) -> set[str]:
    """Every entry under a server's home as a relative path, directories with a trailing ``/``.

    Comparing it with the expected set catches what a client or the server left behind (an
    upload's temporary file, a half-renamed file) as well as what is missing.
    """
    return {
        str(p.relative_to(root)) + ("/" if p.is_dir() and not p.is_symlink() else "")
        for p in root.rglob("*")
    }


def _siblings(p: Path) -> list[str]:
    return sorted(top_names(p.parent)) if p.parent.is_dir() else ["<no such directory>"]
