"""Which permission letter each command needs, from a table kept here and not from the code.

The letters are pyftpdlib's (its ``DummyAuthorizer.add_user`` documentation; ftpd users files use
them): e = change directory (CWD, CDUP), l = list (LIST, NLST, STAT, MLSD, MLST, SIZE, MDTM),
r = RETR, a = APPE, d = delete (DELE, RMD), f = rename (RNFR, RNTO), m = MKD, w = store (STOR,
STOU), M = SITE CHMOD, T = MFMT. The protocol's own command table is the code under test, so the
expected letter is never read from it.

Each row is tested both ways against a real server with a users file: a user holding *only* that
letter can do it (and the disk shows it done), a user holding every letter *but* that one gets
550 and nothing on disk changes (names, contents, modes, mtimes).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support.client import Ctl, recv_all, send_all_and_close

from ftpd.auth.hashing import hash_password

LETTERS = "elradfmwMT"
PASSWORD = "pw"
OLD = b"old content\n"


@dataclass(frozen=True)
class Row:
    command: str  # the command line (a data command when ``data`` is set)
    letter: str
    code: int  # the final reply when granted
    done: Callable[[Path], bool]  # the effect on disk (or in the reply) when granted
    data: str = ""  # "down" / "up": a data command (EPSV first)
    first: str = ""  # a command sent before, which itself needs no letter (RNFR for RNTO is not)


def _unchanged(_: Path) -> bool:
    return True


ROWS = [
    Row("CWD sub", "e", 250, _unchanged),
    Row("CDUP", "e", 250, _unchanged),  # at / CDUP stays at /, but still needs e
    Row("LIST", "l", 226, _unchanged, data="down"),
    Row("NLST", "l", 226, _unchanged, data="down"),
    Row("MLSD", "l", 226, _unchanged, data="down"),
    Row("MLST f.txt", "l", 250, _unchanged),
    Row("STAT f.txt", "l", 213, _unchanged),
    Row("SIZE f.txt", "l", 213, _unchanged, first="TYPE I"),
    Row("MDTM f.txt", "l", 213, _unchanged),
    Row("RETR f.txt", "r", 226, _unchanged, data="down"),
    Row("APPE f.txt", "a", 226, lambda h: (h / "f.txt").read_bytes() == OLD + b"new", data="up"),
    Row("DELE f.txt", "d", 250, lambda h: not (h / "f.txt").exists()),
    Row("RMD empty", "d", 250, lambda h: not (h / "empty").exists()),
    Row("RNFR f.txt", "f", 350, _unchanged),
    Row("MKD made", "m", 257, lambda h: (h / "made").is_dir()),
    Row("STOR new.txt", "w", 226, lambda h: (h / "new.txt").read_bytes() == b"new", data="up"),
    Row(
        "STOU",
        "w",
        226,
        lambda h: b"new" in [p.read_bytes() for p in h.iterdir() if p.is_file()],
        data="up",
    ),
    Row("SITE CHMOD 600 f.txt", "M", 200, lambda h: (h / "f.txt").stat().st_mode & 0o777 == 0o600),
    Row(
        "MFMT 20200101000000 f.txt",
        "T",
        213,
        lambda h: int((h / "f.txt").stat().st_mtime) == 1577836800,
    ),
]


def _seed(home: Path) -> None:
    if home.exists():
        shutil.rmtree(home)
    home.mkdir()
    (home / "f.txt").write_bytes(OLD)
    (home / "f.txt").chmod(0o644)
    os.utime(home / "f.txt", (1_600_000_000, 1_600_000_000))
    (home / "sub").mkdir()
    (home / "sub" / "inner.txt").write_bytes(b"inner")
    (home / "empty").mkdir()


def _snapshot(home: Path) -> dict[str, tuple[bool, bytes, int, int]]:
    """Everything a command could change: names, contents, modes, mtimes."""
    out = {}
    for p in sorted(home.rglob("*")):
        st = p.stat()
        out[str(p.relative_to(home))] = (
            p.is_dir(),
            b"" if p.is_dir() else p.read_bytes(),
            st.st_mode,
            st.st_mtime_ns,
        )
    return out


@pytest.fixture(scope="module")
def perm_srv(module_factory: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    base = tmp_path_factory.mktemp("perms")
    pw = hash_password(PASSWORD, ln=4)
    users = []
    for letter in LETTERS:
        for kind, perms in (("only", letter), ("without", LETTERS.replace(letter, ""))):
            name = f"{kind}_{letter}{'_upper' if letter.isupper() else ''}"
            (base / name).mkdir()
            users.append(
                f'[[users]]\nname = "{name}"\npassword_hash = "{pw}"\nhome = "{name}"\n'
                f'perms = "{perms}"\n'
            )
    (base / "users.toml").write_text("\n".join(users))
    srv = module_factory(users_file=str(base / "users.toml"))
    srv.homes = base
    return srv


def _user(kind: str, letter: str) -> str:
    return f"{kind}_{letter}{'_upper' if letter.isupper() else ''}"


def _run(srv: Any, user: str, row: Row) -> list[int]:
    """Log in as ``user`` and run ``row``; the reply codes after login, in order."""
    with Ctl(srv.host, srv.port) as c:
        c.login(user, PASSWORD)
        codes = []
        if row.first:
            codes.append(c.code(row.first))
        if not row.data:
            codes.append(c.code(row.command))
            return codes
        assert c.code("TYPE I") == 200
        d = c.data_socket()
        r = c.cmd(row.command)
        codes.append(r.code)
        if r.code != 150:
            d.close()
            return codes
        if row.data == "up":
            send_all_and_close(d, b"new")
        else:
            recv_all(d)
        codes.append(c.reply().code)
        return codes


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"{r.command.split()[0]}-{r.letter}")
def test_letter_withheld_is_550_and_changes_nothing(perm_srv: Any, row: Row) -> None:
    home = perm_srv.homes / _user("without", row.letter)
    _seed(home)
    before = _snapshot(home)
    codes = _run(perm_srv, _user("without", row.letter), row)
    assert codes[-1] == 550, f"{row.command} without {row.letter!r}: {codes}"
    assert _snapshot(home) == before


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"{r.command.split()[0]}-{r.letter}")
def test_letter_granted_alone_is_enough(perm_srv: Any, row: Row) -> None:
    home = perm_srv.homes / _user("only", row.letter)
    _seed(home)
    codes = _run(perm_srv, _user("only", row.letter), row)
    assert codes[-1] == row.code, f"{row.command} with only {row.letter!r}: {codes}"
    assert row.done(home), f"{row.command} answered {codes} but the disk does not show it"


def test_rename_needs_f_on_both_halves(perm_srv: Any) -> None:
    """RNTO completes a rename: with f, the file moves; without it RNFR is already refused."""
    for kind, expect in (("only", [350, 250]), ("without", [550, 503])):
        home = perm_srv.homes / _user(kind, "f")
        _seed(home)
        with Ctl(perm_srv.host, perm_srv.port) as c:
            c.login(_user(kind, "f"), PASSWORD)
            assert [c.code("RNFR f.txt"), c.code("RNTO g.txt")] == expect
        assert (home / "g.txt").exists() == (kind == "only")
        assert (home / "f.txt").exists() == (kind == "without")


def test_table_covers_every_letter() -> None:
    assert {r.letter for r in ROWS} == set(LETTERS)
