"""Path attacks, table-driven: nothing outside the home is read, listed, written or deleted.

The world each test builds (``base`` is the test's directory)::

    base/secret.txt             TOPSECRET, outside the home
    base/outside/outside-secret2.txt
    base/home2/prefix-secret.txt  a sibling whose name starts with the home's ("home" / "home2")
    base/home/                  the server's root
        pub/file.txt            PUBLIC
        pub/up -> ../..                         relative, escapes
        link_out_file -> base/secret.txt        absolute, outside
        link_out_dir -> ../outside              relative, outside
        link_out_abs_dir -> base/outside        absolute, outside
        link_prefix -> ../home2                 outside, shares the home's name as a prefix
        link_in_file -> pub/file.txt            relative, inside (followed)
        link_in_dir -> base/home/pub            absolute, inside (followed)
        loop -> loop

Every command of every row is sent on one logged-in session; afterwards the world outside the
home must be byte-for-byte and mtime-for-mtime what it was, and no reply or data connection may
have carried ``TOPSECRET`` or the name of an outside file.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from support.client import Ctl, Reply

SECRET = b"TOPSECRET"
OUTSIDE_NAMES = (b"outside-secret2", b"prefix-secret", b"secret.txt")


def build(base: Path) -> Path:
    home = base / "home"
    if home.exists():
        shutil.rmtree(home)
    (home / "pub").mkdir(parents=True)
    (base / "outside").mkdir(exist_ok=True)
    (base / "home2").mkdir(exist_ok=True)
    (base / "secret.txt").write_bytes(SECRET + b" 1\n")
    (base / "outside" / "outside-secret2.txt").write_bytes(SECRET + b" 2\n")
    (base / "home2" / "prefix-secret.txt").write_bytes(SECRET + b" 3\n")
    (home / "pub" / "file.txt").write_bytes(b"PUBLIC\n")
    os.symlink("../..", home / "pub" / "up")
    os.symlink(base / "secret.txt", home / "link_out_file")
    os.symlink("../outside", home / "link_out_dir")
    os.symlink(base / "outside", home / "link_out_abs_dir")
    os.symlink("../home2", home / "link_prefix")
    os.symlink("pub/file.txt", home / "link_in_file")
    os.symlink(home / "pub", home / "link_in_dir")
    os.symlink("loop", home / "loop")
    return home


def snapshot(base: Path) -> dict[str, tuple[Any, ...]]:
    """Everything outside ``base/home``: type, mode, size, mtime, content hash."""
    out: dict[str, tuple[Any, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(base):
        if Path(dirpath) == base:
            dirnames[:] = [d for d in dirnames if d != "home"]
            filenames = [f for f in filenames if not f.startswith("ftpd-")]  # server logs
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = os.lstat(p)
            digest = (
                hashlib.sha256(p.read_bytes()).hexdigest()
                if p.is_file() and not p.is_symlink()
                else ""
            )
            out[str(p.relative_to(base))] = (st.st_mode, st.st_size, st.st_mtime_ns, digest)
    return out


@pytest.fixture
def world(tmp_path: Path, servers: Any) -> tuple[Path, Any]:
    base = tmp_path / "w"
    base.mkdir()
    build(base)
    srv = servers(root=str(base / "home"))
    return base, srv


class Session:
    """Sends commands, keeps every byte received, so leaks can be searched for afterwards."""

    def __init__(self, srv: Any) -> None:
        self.ctl = Ctl(srv.host, srv.port).login(srv.user, srv.password)
        assert self.ctl.cmd("TYPE I").code == 200
        self.received: list[bytes] = []

    def cmd(self, line: str) -> Reply:
        r = self.ctl.cmd(line)
        self.received.append(r.raw)
        return r

    def transfer(self, verb: str, arg: str, upload: bytes | None = None) -> tuple[Reply, bytes]:
        d = self.ctl.data_socket()
        r = self.cmd(f"{verb} {arg}".rstrip())
        data = b""
        if r.code == 150:
            if upload is not None:
                d.sendall(upload)
            else:
                while chunk := d.recv(65536):
                    data += chunk
            d.close()
            r = self.ctl.reply()
            self.received.append(r.raw + data)
        else:
            d.close()
        return r, data

    def leaked(self) -> list[bytes]:
        blob = b"".join(self.received)
        return [m for m in (SECRET, *OUTSIDE_NAMES) if m in blob]


# Paths that must never reach outside the home (read side).
ESCAPES = [
    "../secret.txt",
    "../../../../../../secret.txt",
    "/../secret.txt",
    "..//..//secret.txt",
    "//..//..//secret.txt",
    "/./../secret.txt",
    "pub/../../secret.txt",
    "pub/../../../secret.txt",
    "%2e%2e/secret.txt",
    "..%2fsecret.txt",
    "..\\secret.txt",
    "..\\..\\secret.txt",
    "/etc/passwd",
    "../../../../etc/passwd",
    "link_out_file",
    "link_out_dir/outside-secret2.txt",
    "link_out_abs_dir/outside-secret2.txt",
    "pub/up/secret.txt",
    "pub/up/outside/outside-secret2.txt",
    "link_prefix/prefix-secret.txt",
    "link_in_dir/up/secret.txt",
    "link_in_dir/../../secret.txt",
    "loop",
    "loop/x",
]
ESCAPE_DIRS = [
    "..",
    "../..",
    "/..",
    "link_out_dir",
    "link_out_abs_dir",
    "pub/up",
    "link_prefix",
    "link_in_dir/up",
    "pub/up/outside",
    "loop",
]


@pytest.mark.parametrize("root_is_link", [False, True], ids=["root", "root-via-symlink"])
def test_reads_never_leave_the_home(tmp_path: Path, servers: Any, root_is_link: bool) -> None:
    """Also with the configured root being a symlink (``base/homelink -> home``) created outside
    the home: relative links are then resolved from the real home, not from the link."""
    base = tmp_path / "w"
    base.mkdir()
    build(base)
    root = base / "home"
    if root_is_link:
        os.symlink("home", base / "homelink")
        root = base / "homelink"
    srv = servers(root=str(root))
    before = snapshot(base)
    s = Session(srv)
    failures = []
    for path in ESCAPES:
        for verb in ("RETR",):
            r, data = s.transfer(verb, path)
            if r.code < 400 or SECRET in data:
                failures.append((verb, path, r, data[:40]))
        for verb in ("SIZE", "MDTM", "MLST", "STAT"):
            r = s.cmd(f"{verb} {path}")
            if verb != "STAT" and r.code < 400:
                failures.append((verb, path, r))
    for path in ESCAPE_DIRS:
        for verb in ("LIST", "NLST", "MLSD"):
            r, data = s.transfer(verb, path)
            if any(m in data for m in OUTSIDE_NAMES):
                failures.append((verb, path, data[:200]))
        r = s.cmd(f"CWD {path}")
        pwd = s.cmd("PWD")
        if r.code == 250:
            # Lexical ".." stays at "/" (chroot semantics); a symlink out must be refused.
            r2, data = s.transfer("LIST", "")
            if any(m in data for m in OUTSIDE_NAMES):
                failures.append(("CWD+LIST", path, pwd, data[:200]))
        s.cmd("CWD /")
    assert not failures, failures
    assert s.leaked() == [], s.leaked()
    assert snapshot(base) == before


def test_followed_links_inside_the_home_work(world: tuple[Path, Any]) -> None:
    """The jail is not a blanket "no symlinks": links that stay inside are followed."""
    _, srv = world
    s = Session(srv)
    for path in (
        "link_in_file",
        "link_in_dir/file.txt",
        "//pub//file.txt",
        "/pub/./file.txt",
        "../pub/file.txt",
        "/../../pub/../pub/file.txt",
    ):
        r, data = s.transfer("RETR", path)
        assert (r.code, data) == (226, b"PUBLIC\n"), (path, r)
    listing, r = s.ctl.listing("NLST", "/")
    names = set(listing.decode().split("\r\n")) - {""}
    # Links that point outside are omitted from listings; links inside are shown.
    assert {"pub", "link_in_file", "link_in_dir"} <= names
    assert not names & {"link_out_file", "link_out_dir", "link_out_abs_dir", "link_prefix"}, names


WRITES = [
    ("STOR", "link_out_dir/new.txt"),
    ("STOR", "link_out_abs_dir/new.txt"),
    ("STOR", "link_out_file"),
    ("STOR", "pub/up/new.txt"),
    ("STOR", "link_prefix/new.txt"),
    ("APPE", "link_out_file"),
    ("APPE", "link_out_dir/outside-secret2.txt"),
    ("APPE", "pub/up/secret.txt"),
    ("STOU", "link_out_dir/x"),
    ("STOU", "pub/up/x"),
    ("REST+STOR", "link_out_file"),
]
COMMANDS = [
    "DELE link_out_dir/outside-secret2.txt",
    "DELE link_out_abs_dir/outside-secret2.txt",
    "DELE pub/up/secret.txt",
    "DELE link_prefix/prefix-secret.txt",
    "RMD link_out_dir/..",
    "RMD pub/up/outside",
    "MKD link_out_dir/newdir",
    "MKD pub/up/newdir",
    "MKD link_prefix/newdir",
    "SITE CHMOD 777 link_out_file",
    "SITE CHMOD 777 pub/up/secret.txt",
    "SITE CHMOD 777 link_out_dir",
    "MFMT 20000101000000 link_out_file",
    "MFMT 20000101000000 pub/up/secret.txt",
    "MFMT 20000101000000 link_out_dir/outside-secret2.txt",
]
RENAMES = [
    ("pub/file.txt", "link_out_dir/stolen.txt"),
    ("pub/file.txt", "pub/up/stolen.txt"),
    ("link_out_dir/outside-secret2.txt", "pub/got.txt"),
    ("pub/up/secret.txt", "pub/got.txt"),
    ("link_prefix/prefix-secret.txt", "got.txt"),
    ("pub", "link_out_dir/pub"),
]


@pytest.mark.parametrize("atomic", [True, False])
def test_writes_never_leave_the_home(tmp_path: Path, servers: Any, atomic: bool) -> None:
    base = tmp_path / "w"
    base.mkdir()
    build(base)
    srv = servers(root=str(base / "home"), atomic_uploads=atomic)
    before = snapshot(base)
    s = Session(srv)
    failures = []
    for verb, path in WRITES:
        if verb == "REST+STOR":
            s.cmd("REST 3")
            verb = "STOR"
        r, _ = s.transfer(verb, path, upload=b"PWNED")
        if r.code < 400:
            failures.append((verb, path, r))
    for line in COMMANDS:
        r = s.cmd(line)
        if r.code < 400:
            failures.append((line, r))
    for src, dst in RENAMES:
        r1 = s.cmd(f"RNFR {src}")
        if r1.code == 350:
            r2 = s.cmd(f"RNTO {dst}")
            if r2.code < 400:
                failures.append(("RNFR/RNTO", src, dst, r2))
    assert not failures, failures
    assert snapshot(base) == before
    assert s.leaked() == [], s.leaked()
    assert (base / "home" / "pub" / "file.txt").read_bytes() == b"PUBLIC\n"


def test_deleting_a_link_removes_the_link_not_its_target(world: tuple[Path, Any]) -> None:
    base, srv = world
    before = snapshot(base)
    s = Session(srv)
    assert s.cmd("DELE link_out_file").code == 250
    assert s.cmd("RNFR link_out_dir").code in (350, 550)
    assert not (base / "home" / "link_out_file").is_symlink()
    assert snapshot(base) == before


CRLF_NAMES = [
    "evil\r\n226 Transfer complete.txt",
    "evil\n-rw-r--r--   1 ftp ftp 0 Jan  1 00:00 fake.txt",
    "evil\r550 injected",
    "type=file;size=1; fake\r\nline",
]


def test_names_with_cr_lf_inject_no_lines(world: tuple[Path, Any]) -> None:
    base, srv = world
    home = base / "home"
    empty = home / "crlf"
    empty.mkdir()
    for name in CRLF_NAMES:
        (empty / name).write_bytes(b"x")
    s = Session(srv)
    for verb in ("LIST", "NLST", "MLSD"):
        data, r = s.ctl.listing(verb, "crlf")
        assert r.code == 226, r
        lines = data.split(b"\r\n")
        assert lines[-1] == b""
        assert len(lines) - 1 == len(CRLF_NAMES), (verb, data)
        for line in lines[:-1]:
            assert b"\n" not in line and b"\r" not in line, (verb, line)
    # Over the control connection: STAT listing, MLST, PWD after CWD into such a directory.
    r = s.cmd("STAT crlf")
    assert r.code == 213 and len(r.lines) == len(CRLF_NAMES) + 2, r
    # A CR can be sent inside a command (only LF ends a line): MKD/CWD/PWD must not echo it raw.
    for line in (
        "MKD crlf/a\rb",
        "CWD crlf/a\rb",
        "PWD",
        "MLST /crlf/a\rb",
        "RNFR /crlf/a\rb",
        "RNTO /crlf/c\r226 x",
        "CWD /crlf/c\r226 x",
        "PWD",
        "XPWD",
    ):
        r = s.cmd(line)  # the strict reply parser rejects a bare CR/LF inside a reply line
        assert r.code < 500 or line.startswith(("RNFR", "RNTO")), (line, r)
    assert s.cmd("NOOP").code == 200


def test_very_long_names_and_paths(world: tuple[Path, Any]) -> None:
    base, srv = world
    s = Session(srv)
    assert s.cmd("MKD " + "n" * 255).code == 257
    assert s.cmd("MKD " + "n" * 256).code == 553
    assert s.cmd("MKD " + "\u00e9" * 128).code == 553  # 256 bytes in UTF-8
    r, _ = s.transfer("STOR", "f" * 300, upload=b"x")
    assert r.code == 553, r
    deep = "/".join(["d" * 200] * 19)  # 3,818 characters: fits the 4 KiB line, 19 levels
    for i in range(1, 20):
        assert s.cmd("MKD " + "/".join(["d" * 200] * i)).code == 257
    r, _ = s.transfer("STOR", deep + "/leaf.txt", upload=b"deep")
    assert r.code == 226, r
    assert s.cmd("CWD " + deep).code == 250
    assert s.cmd("PWD").code == 257
    r = s.cmd("MKD " + "x" * 5000)
    assert r.code == 500  # the line is longer than the 4 KiB cap
    assert s.cmd("NOOP").code == 200
    assert s.cmd("CWD " + "../" * 2000).code == 500  # 6,000 characters: over the line cap
    assert s.cmd("CWD " + "../" * 1300).code == 250  # 3,900 characters: lexically "/"
    assert s.cmd("PWD").lines[0].startswith('257 "/"')


FLIPPER = """
import ctypes, os, sys
race, out_d, out_f = sys.argv[1:]
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD, RENAME_EXCHANGE = -100, 2
def exchange(a, b):
    # renameat2(RENAME_EXCHANGE) swaps a real entry and a symlink atomically: the path the
    # server resolved a moment ago is now a link to outside, with no moment of absence.
    if libc.renameat2(AT_FDCWD, a.encode(), AT_FDCWD, b.encode(), RENAME_EXCHANGE) != 0:
        raise OSError(ctypes.get_errno(), "renameat2")
d, f = os.path.join(race, "dir"), os.path.join(race, "f")
os.symlink(out_d, d + ".alt")
os.symlink(out_f, f + ".alt")
while True:
    exchange(d, d + ".alt")
    exchange(f, f + ".alt")
"""


def test_symlink_swapped_between_check_and_open(world: tuple[Path, Any], figures: Any) -> None:
    """A local user races the server: ``race/dir`` and ``race/f`` are swapped between a real
    entry and a symlink to outside, as fast as a process can, while RETR/STOR/LIST go through
    them. A check-then-open jail (realpath, then a path-following open) loses this race; the
    walk with O_NOFOLLOW from the home must not."""
    base, srv = world
    home = base / "home"
    race = home / "race"
    race.mkdir()
    (base / "outside" / "f").write_bytes(SECRET + b" race\n")
    (race / "dir").mkdir()  # real entries inside the home, swapped with links to outside
    (race / "dir" / "outside-secret2.txt").write_bytes(b"INSIDE\n")
    (race / "dir" / "f").write_bytes(b"INSIDE\n")
    (race / "f").write_bytes(b"INSIDE\n")
    before = snapshot(base)
    # The flipper runs in its own process, so that it races the server at full speed rather
    # than taking turns with this test's threads for the GIL.
    flipper = subprocess.Popen(
        [
            sys.executable,
            "-c",
            FLIPPER,
            str(race),
            str(base / "outside"),
            str(base / "outside" / "f"),
        ]
    )
    s = Session(srv)
    attempts = refused = got_inside = 0
    deadline = time.monotonic() + 2.0
    try:
        while time.monotonic() < deadline:
            for path in ("race/dir/f", "race/dir/outside-secret2.txt", "race/f"):
                r, data = s.transfer("RETR", path)
                attempts += 1
                assert SECRET not in data, (path, data)
                got_inside += data == b"INSIDE\n"
                refused += r.code >= 400
            s.transfer("LIST", "race/dir")  # lists the inside directory or is refused
            s.transfer("STOR", "race/dir/planted.txt", upload=b"PWNED")
            attempts += 2
    finally:
        flipper.terminate()
        flipper.wait(5)
    figures.record("symlink race", requests=attempts, inside_reads=got_inside, refused=refused)
    # realdir's file is named like the outside one, so only the content can tell a leak.
    assert SECRET not in b"".join(s.received)
    after = snapshot(base)
    assert after == before, set(after.items()) ^ set(before.items())
    # The race was real: the same paths worked while inside and were refused while outside.
    assert got_inside > 0 and refused > 0, (got_inside, refused)
