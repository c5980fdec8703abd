"""The sans-IO session, driven directly: no sockets, no event loop.

A small driver (``Drive``) runs one command line to completion. It answers every request a handler
yields with fakes: a filesystem request goes to ``FakeFS`` (an in-memory tree), ``Authenticate`` to a fixed
account table, ``OpenPassive`` to a fixed address. Transfers are completed by hand with
``transfer_opened`` / ``transfer_finished``, as the IO layer does.

Covered here: dispatch, login, informational commands, transfer parameters, data-connection setup
and FTPS state. The fakes are imported by test_proto_commands (the command table, row by row) and
test_proto_fileops (file, listing and transfer handlers).
"""

from __future__ import annotations

import dataclasses
import errno
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from support.driver import drive, perform_fs

from ftpd.fs.base import FileStat
from ftpd.proto.commands import (
    ALIASES,
    COMMANDS,
)
from ftpd.proto.handlers.info import features
from ftpd.proto.lines import TOO_LONG
from ftpd.proto.replies import Reply
from ftpd.proto.requests import (
    AbortTransfer,
    Authenticate,
    CloseData,
    FsRequest,
    OpenPassive,
    Outcome,
    ReadListing,
    Request,
    Sleep,
    StartTLS,
    StartTransfer,
    Transfer,
)
from ftpd.proto.session import Session, SessionSettings
from ftpd.proto.state import Data, Login, SessionState, TlsMode

ALL_PERMS = "elradfmwMT"
MTIME = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC


# ---------------------------------------------------------------------------------- fakes
class FakeReader:
    def __init__(self, data: bytes, offset: int) -> None:
        self.data = data
        self.size = len(data)
        self.pos = offset


class FakeWriter:
    def __init__(self, path: str, offset: int, append: bool) -> None:
        self.path = path
        self.offset = offset
        self.append = append


class FakeListing:
    """A listing stream (``ftpd.fs.listing_stream``): nothing read before the first read."""

    def __init__(self, fs: FakeFS, path: str, fmt: Any) -> None:
        self.fs, self.path, self.fmt = fs, path, fmt
        self.reads = 0

    def read_sync(self) -> bytes:
        self.reads += 1
        if self.reads > 1:
            return b""
        return bytes(self.fmt(sorted(self.fs.list(self.path), key=lambda e: e.name)))

    def render(self) -> bytes:
        return bytes(self.fmt(sorted(self.fs.list(self.path), key=lambda e: e.name)))


def body(t: Any) -> bytes:
    """What a listing transfer sends: its payload, or its stream's content."""
    return t.payload if t.payload is not None else t.reader.render()


class FakeFS:
    """An in-memory tree; methods raise OSError with an errno like the real backend."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.dirs: set[str] = {"/"}
        self.calls: list[FsRequest] = []
        self.mtimes: dict[str, float] = {}
        self.modes: dict[str, int] = {}

    @staticmethod
    def _err(code: int) -> OSError:
        return OSError(code, errno.errorcode[code])

    def _parent_ok(self, path: str) -> None:
        parent = path.rsplit("/", 1)[0] or "/"
        if parent not in self.dirs:
            raise self._err(errno.ENOENT)

    def stat(self, path: str) -> FileStat:
        name = path.rsplit("/", 1)[1] or "/"
        if path in self.dirs:
            return FileStat(name, True, 0, self.mtimes.get(path, MTIME), 0o40755, 2)
        if path in self.files:
            return FileStat(
                name, False, len(self.files[path]), self.mtimes.get(path, MTIME), 0o100644
            )
        raise self._err(errno.ENOENT)

    def list(self, path: str) -> list[FileStat]:
        if path not in self.dirs:
            raise self._err(errno.ENOTDIR if path in self.files else errno.ENOENT)
        prefix = path.rstrip("/") + "/"
        names = [
            p
            for p in (*self.dirs, *self.files)
            if p != path and p.startswith(prefix) and "/" not in p[len(prefix) :]
        ]
        return [self.stat(p) for p in reversed(sorted(names))]  # unsorted on purpose

    def open_listing(self, path: str, fmt: Any) -> FakeListing:
        return FakeListing(self, path, fmt)

    def open_read(self, path: str, offset: int) -> FakeReader:
        if path in self.dirs:
            raise self._err(errno.EISDIR)
        if path not in self.files:
            raise self._err(errno.ENOENT)
        if offset > len(self.files[path]):
            raise self._err(errno.EINVAL)  # as LocalFS: a restart marker beyond the end
        return FakeReader(self.files[path], offset)

    def open_write(self, path: str, offset: int, append: bool) -> FakeWriter:
        if path in self.dirs:
            raise self._err(errno.EISDIR)
        self._parent_ok(path)
        if offset > len(self.files.get(path, b"")):
            raise self._err(errno.EINVAL)
        return FakeWriter(path, offset, append)

    def mkdir(self, path: str) -> None:
        if path in self.dirs or path in self.files:
            raise self._err(errno.EEXIST)
        self._parent_ok(path)
        self.dirs.add(path)

    def rmdir(self, path: str) -> None:
        if path not in self.dirs:
            raise self._err(errno.ENOENT)
        if any(p.startswith(path + "/") for p in (*self.dirs, *self.files)):
            raise self._err(errno.ENOTEMPTY)
        self.dirs.remove(path)

    def delete(self, path: str) -> None:
        if path in self.dirs:
            raise self._err(errno.EISDIR)
        if path not in self.files:
            raise self._err(errno.ENOENT)
        del self.files[path]

    def rename(self, src: str, dst: str) -> None:
        if src in self.files:
            self.files[dst] = self.files.pop(src)
        elif src in self.dirs:
            self.dirs.remove(src)
            self.dirs.add(dst)
        else:
            raise self._err(errno.ENOENT)

    def set_mtime(self, path: str, mtime: float) -> None:
        self.stat(path)
        self.mtimes[path] = mtime

    def chmod(self, path: str, mode: int) -> None:
        self.stat(path)
        self.modes[path] = mode

    def perform(self, req: FsRequest) -> Any:
        """What the IO layer's table does with a filesystem request, on this fake."""
        self.calls.append(req)
        return perform_fs(self, req)

    def unique_name(self, vdir: str, prefix: str) -> str:
        if vdir not in self.dirs:
            raise self._err(errno.ENOENT)
        base = vdir.rstrip("/") + "/" + prefix
        n = 0
        while f"{base}.{n}" in self.files:
            n += 1
        self.files[f"{base}.{n}"] = b""
        return f"{base}.{n}"


@dataclass
class Run:
    """Everything one command line produced."""

    replies: list[Reply] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)

    @property
    def codes(self) -> list[int]:
        return [r.code for r in self.replies]

    @property
    def code(self) -> int:
        assert len(self.replies) == 1, self.replies
        return self.replies[0].code

    @property
    def text(self) -> str:
        return "\n".join(r.text for r in self.replies)

    def of(self, kind: type) -> list[Any]:
        return [r for r in self.requests if isinstance(r, kind)]

    @property
    def transfer(self) -> Transfer:
        (start,) = self.of(StartTransfer)
        return start.transfer


class Drive:
    """A session plus the fakes that answer its requests."""

    def __init__(
        self,
        perms: str = ALL_PERMS,
        *,
        settings: SessionSettings | None = None,
        peer: str = "127.0.0.1",
        local: str = "127.0.0.1",
        passive: tuple[str, int] | OSError = ("127.0.0.1", 61000),
    ) -> None:
        self.s = Session(settings or SessionSettings(login_fail_delay=0), peer, local)
        self.fs = FakeFS()
        self.perms = perms
        self.passive = passive
        self.auth: Callable[[str, str], Any] = self._auth

    def _auth(self, name: str, password: str) -> Any:
        if password == "pw":
            return SimpleNamespace(name=name, perms=self.perms)
        return None

    def answer(self, req: Any) -> tuple[Any, OSError | None]:
        try:
            if isinstance(req, FsRequest):
                return self.fs.perform(req), None
            if isinstance(req, Authenticate):
                return self.auth(req.name, req.password), None
            if isinstance(req, ReadListing):
                return req.stream.read_sync(), None
            if isinstance(req, OpenPassive):
                if isinstance(self.passive, OSError):
                    raise self.passive
                return self.passive, None
            if isinstance(req, (StartTransfer, CloseData, AbortTransfer, Sleep, StartTLS)):
                return None, None
        except OSError as exc:
            return None, exc
        raise AssertionError(f"unexpected request {req!r}")

    def __call__(self, line: str) -> Run:
        driven = drive(self.s, line, self.answer)
        return Run(driven.replies, driven.requests)

    def login(self) -> Drive:
        assert self("USER user").code == 331
        assert self("PASS pw").code == 230
        return self

    def finish(
        self, run: Run, outcome: Outcome = Outcome.OK, error: OSError | None = None
    ) -> list[Reply]:
        """Complete the transfer ``run`` started: the 150 then the final replies."""
        t = run.transfer
        opened = self.s.transfer_opened(t)
        assert opened.code == 150
        return [opened, *self.s.transfer_finished(t, outcome, error)]


@pytest.fixture
def d() -> Drive:
    return Drive().login()


# A valid argument for each verb, used where the generic check must pass the syntax step.
SAMPLE_ARGS = {
    "USER": "user",
    "PASS": "pw",
    "ACCT": "acct",
    "CWD": "/",
    "PORT": "127,0,0,1,240,0",
    "EPRT": "|1|127.0.0.1|61440|",
    "EPSV": "",
    "TYPE": "I",
    "STRU": "F",
    "MODE": "S",
    "RETR": "f",
    "STOR": "f",
    "STOU": "",
    "APPE": "f",
    "ALLO": "10",
    "REST": "0",
    "RNFR": "f",
    "RNTO": "g",
    "DELE": "f",
    "RMD": "dir",
    "MKD": "newdir",
    "LIST": "",
    "NLST": "",
    "SITE": "HELP",
    "STAT": "",
    "HELP": "",
    "OPTS": "UTF8 ON",
    "HOST": "example.com",
    "CLNT": "",
    "SIZE": "f",
    "MDTM": "f",
    "MFMT": "20200101000000 f",
    "MLST": "",
    "MLSD": "",
    "AUTH": "TLS",
    "PBSZ": "0",
    "PROT": "P",
}


def line(verb: str) -> str:
    arg = SAMPLE_ARGS.get(verb, "")
    return f"{verb} {arg}" if arg else verb


# ---------------------------------------------------------------------------------- dispatch
def test_unknown_not_implemented_http_and_empty(d: Drive) -> None:
    r = d("XYZZY foo")
    assert r.code == 500 and "XYZZY" in r.text
    assert d("SMNT /x").code == 502
    assert d("").replies == [] and d("   ").replies == []
    assert not d.s.closing
    assert d(TOO_LONG).code == 500
    assert not d.s.closing
    r = d("GET / HTTP/1.1")
    assert r.code == 500 and d.s.closing


def test_verb_is_case_insensitive(d: Drive) -> None:
    assert d("noop").code == 200
    assert d("NoOp").code == 200
    assert d("xpwd").code == 257


def test_unknown_verb_text_is_printable() -> None:
    r = Drive()("\x1b[2Jé\udcff")
    assert r.code == 500
    assert all(32 <= ord(c) < 127 for c in r.text)


def test_internal_error_is_451_and_session_survives(
    monkeypatch: pytest.MonkeyPatch, d: Drive
) -> None:
    def boom(s: SessionState, arg: str, path: str) -> Reply:
        raise RuntimeError("bug")

    monkeypatch.setitem(COMMANDS, "SYST", dataclasses.replace(COMMANDS["SYST"], handler=boom))
    assert d("SYST").code == 451
    assert d("NOOP").code == 200


def test_oserror_from_a_plain_handler_uses_errno_table(
    monkeypatch: pytest.MonkeyPatch, d: Drive
) -> None:
    def full(s: SessionState, arg: str, path: str) -> Reply:
        raise OSError(errno.ENOSPC, "/real/path")

    monkeypatch.setitem(COMMANDS, "SYST", dataclasses.replace(COMMANDS["SYST"], handler=full))
    r = d("SYST")
    assert r.code == 452 and "/real" not in r.text


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("::ffff:10.0.0.1", "10.0.0.1"),
        ("fe80::1%lo", "fe80::1"),
        ("::1", "::1"),
        ("10.0.0.1", "10.0.0.1"),
        ("not:an:ip", "not:an:ip"),
    ],
)
def test_peer_address_normalised(given: str, kept: str) -> None:
    assert Session(SessionSettings(), given, given).peer_ip == kept


def test_internal_error_inside_generator_is_451(d: Drive) -> None:
    d.answer = lambda req: (None, None)  # type: ignore[method-assign]  # stat() "returns" None
    r = d("CWD /")  # None.is_dir: AttributeError inside the handler
    assert r.codes == [451]
    assert d("NOOP").code == 200 and d.s.cwd == "/"


# ---------------------------------------------------------------------------------- login
def test_login_sequence_and_states() -> None:
    drv = Drive()
    assert drv.s.greeting().code == 220
    assert drv.s.login is Login.NEED_USER and not drv.s.logged_in
    r = drv("USER someone")
    assert r.code == 331 and drv.s.login is Login.NEED_PASS
    r = drv("PASS pw")
    assert r.code == 230 and drv.s.logged_in
    (auth,) = r.of(Authenticate)
    assert (auth.name, auth.password) == ("someone", "pw")
    assert "pw" not in repr(auth)
    assert drv.s.perms == ALL_PERMS and drv.s.cwd == "/"


def test_empty_password_is_allowed_syntax() -> None:
    drv = Drive()
    drv("USER anonymous")
    drv.auth = lambda n, p: SimpleNamespace(name=n, perms="elr") if p == "" else None
    assert drv("PASS").code == 230


def test_bad_password_then_retry() -> None:
    drv = Drive()
    drv("USER user")
    r = drv("PASS wrong")
    assert r.code == 530 and drv.s.login is Login.NEED_USER and not drv.s.closing
    assert r.of(Sleep) == []  # login_fail_delay=0
    assert drv("PASS pw").code == 503  # USER again first
    drv.login()


def test_failed_login_delay_is_a_sleep_request() -> None:
    drv = Drive(settings=SessionSettings(login_fail_delay=2.5))
    drv("USER user")
    r = drv("PASS bad")
    (sleep,) = r.of(Sleep)
    assert sleep.seconds == 2.5 and r.code == 530


@pytest.mark.parametrize("attempts", [1, 2, 3])
def test_max_login_attempts_closes(attempts: int) -> None:
    drv = Drive(settings=SessionSettings(login_fail_delay=0, max_login_attempts=attempts))
    for i in range(attempts):
        drv("USER user")
        r = drv("PASS bad")
        assert r.code == 530
        assert drv.s.closing == (i == attempts - 1)


def test_unlimited_login_attempts() -> None:
    drv = Drive(settings=SessionSettings(login_fail_delay=0, max_login_attempts=0))
    for _ in range(10):
        drv("USER user")
        assert drv("PASS bad").code == 530
    assert not drv.s.closing


def test_login_refused_for_a_reason_is_421_and_closes() -> None:
    drv = Drive()
    drv.auth = lambda n, p: "Too many sessions for this user."
    drv("USER user")
    r = drv("PASS pw")
    assert r.code == 421 and "Too many" in r.text and drv.s.closing and not drv.s.logged_in


def test_user_while_logged_in_flushes_the_login(d: Drive) -> None:
    d.fs.dirs.add("/sub")
    d("CWD sub")
    d("TYPE I")
    d("REST 10")
    assert d("PASV").code == 227
    r = d("USER other")
    assert r.code == 331 and r.of(CloseData)
    s = d.s
    assert s.login is Login.NEED_PASS and s.user == "other" and s.account is None
    assert (s.cwd, s.ascii, s.rest, s.data, s.perms) == ("/", True, 0, Data.NONE, "")
    assert d("LIST").code == 530
    assert d("PASS pw").code == 230


def test_rein(d: Drive) -> None:
    d.fs.dirs.add("/sub")
    d("CWD sub")
    d("EPSV ALL")
    d("OPTS MLST type;")
    r = d("REIN")
    assert r.code == 220
    s = d.s
    assert s.login is Login.NEED_USER and s.cwd == "/" and not s.epsv_all
    assert s.mlst_facts == frozenset(["type", "size", "modify", "perm", "unique", "unix.mode"])
    assert d("PWD").code == 530
    assert Drive()("REIN").code == 220  # before login too


def test_acct_is_superfluous() -> None:
    assert Drive()("ACCT x").code == 202


def test_quit() -> None:
    drv = Drive()
    r = drv("QUIT")
    assert r.code == 221 and drv.s.closing


# ---------------------------------------------------------------------------------- info
def test_syst_noop_clnt_allo(d: Drive) -> None:
    assert d("SYST").replies == [Reply(215, "UNIX Type: L8")]
    assert d("NOOP").code == 200
    assert d("CLNT curl 8").code == 200
    assert d("ALLO 1000").code == 202


def test_feat_generated_and_formatted() -> None:
    drv = Drive()
    r = drv("FEAT")
    assert r.code == 211
    lines = r.replies[0].lines
    assert lines[-1] == "End"
    feats = list(lines[1:-1])
    for f in ("EPRT", "EPSV", "MDTM", "REST STREAM", "SIZE", "UTF8", "MFMT", "TVFS"):
        assert f in feats
    assert not any(f.startswith("AUTH") for f in feats)  # no TLS configured
    mlst = next(f for f in feats if f.startswith("MLST "))
    assert re.fullmatch(r"MLST ([a-z.]+\*?;)+", mlst) and "type*;" in mlst
    wire = r.replies[0].encode().decode()
    assert wire.startswith("211-") and wire.endswith("211 End\r\n")
    for inner in wire.split("\r\n")[1:-2]:
        assert inner.startswith(" ") and not inner.startswith("  ")
    tls = Session(SessionSettings(tls_mode=TlsMode.EXPLICIT), "127.0.0.1", "127.0.0.1")
    assert {"AUTH TLS", "PBSZ", "PROT"} <= set(features(tls))


def test_feat_mlst_reflects_opts(d: Drive) -> None:
    assert d("OPTS MLST type;size;bogus;").replies == [Reply(200, "MLST OPTS type;size;")]
    mlst = next(f for f in d("FEAT").replies[0].lines if f.startswith("MLST"))
    assert "type*;" in mlst and "size*;" in mlst and "modify;" in mlst and "modify*" not in mlst
    assert d("OPTS MLST").replies == [Reply(200, "MLST OPTS ")]


@pytest.mark.parametrize(
    ("arg", "code"),
    [("UTF8 ON", 200), ("utf8", 200), ("UTF8 OFF", 504), ("MODE Z", 501), ("X", 501)],
)
def test_opts(arg: str, code: int) -> None:
    assert Drive()(f"OPTS {arg}").code == code


def test_help() -> None:
    drv = Drive()
    r = drv("HELP")
    assert r.code == 214
    body = " ".join(r.replies[0].lines[1:-1]).split()
    assert set(body) == set(COMMANDS) | set(ALIASES)
    r = drv("HELP cwd")
    assert r.code == 214 and COMMANDS["CWD"].help in r.text
    assert drv("HELP XMKD").code == 214
    assert drv("HELP NOPE").code == 501


def test_stat_without_argument() -> None:
    drv = Drive()
    r = drv("STAT")
    assert r.code == 211 and "Not logged in" in r.text and "127.0.0.1" in r.text
    drv.login()
    r = drv("STAT")
    assert "Logged in as user" in r.text and "ASCII" in r.text
    drv("TYPE I")
    assert "BINARY" in drv("STAT").text


def test_stat_with_path(d: Drive) -> None:
    d.fs.files["/a b"] = b"xyz"
    d.fs.dirs.add("/sub")
    r = d("STAT /")
    assert r.codes == [213, 213, 213]
    # Streamed in parts (213- line, batches of indented lines, 213 end): one reply on the wire.
    wire = b"".join(x.encode() for x in r.replies).decode().split("\r\n")
    assert wire[0] == '213-Status of "/":' and wire[-2] == "213 End of status." and wire[-1] == ""
    assert len(wire) == 5
    assert wire[1].endswith(" a b") and wire[1].startswith(" -")
    assert wire[2].endswith(" sub") and wire[2].startswith(" d")
    assert d("STAT -la /").codes[-1] == 213
    assert d("STAT a b").code == 213  # a file: one ordinary reply
    assert d("STAT a*").code == 550
    assert d("STAT nothere").code == 550
    r = Drive()("STAT /")
    assert r.code == 530
    nol = Drive("e").login()
    assert nol("STAT /").code == 550


# ---------------------------------------------------------------------------------- parameters
@pytest.mark.parametrize(
    ("arg", "code", "ascii"),
    [
        ("A", 200, True),
        ("a", 200, True),
        ("A N", 200, True),
        ("I", 200, False),
        ("L 8", 200, False),
        ("L8", 200, False),
        ("E", 504, None),
        ("L 7", 504, None),
        ("A T", 504, None),
        ("X", 501, None),
    ],
)
def test_type(d: Drive, arg: str, code: int, ascii: bool | None) -> None:
    d.s.ascii = not ascii if ascii is not None else False
    before = d.s.ascii
    assert d(f"TYPE {arg}").code == code
    assert d.s.ascii == (ascii if ascii is not None else before)


@pytest.mark.parametrize(
    ("verb", "ok", "unimpl", "bad"),
    [
        ("STRU", ["F", "f"], ["R", "P"], ["X"]),
        ("MODE", ["S", "s"], ["B", "C", "Z"], ["X"]),
    ],
)
def test_stru_mode(d: Drive, verb: str, ok: list[str], unimpl: list[str], bad: list[str]) -> None:
    for a in ok:
        assert d(f"{verb} {a}").code == 200
    for a in unimpl:
        assert d(f"{verb} {a}").code == 504
    for a in bad:
        assert d(f"{verb} {a}").code == 501


def test_rest(d: Drive) -> None:
    assert d("REST 100").code == 501  # TYPE A: a byte marker is no file offset (RFC 3659 §5.1)
    assert d("REST 0").code == 350
    d("TYPE I")
    assert d("REST 100").code == 350 and d.s.rest == 100
    assert d("REST -1").code == 501
    assert d("REST abc").code == 501
    assert d.s.rest == 100
    assert d("REST 0").code == 350 and d.s.rest == 0


# ---------------------------------------------------------------------------------- data setup
def test_pasv_reply_and_state(d: Drive) -> None:
    d.passive = ("127.0.0.1", 61234)
    r = d("PASV")
    assert r.replies == [Reply(227, "Entering Passive Mode (127,0,0,1,239,50).")]
    assert len(r.of(OpenPassive)) == 1 and not r.of(OpenPassive)[0].extended
    assert d.s.data is Data.PASSIVE
    r = d("PASV")  # again: the old listener is dropped first
    assert r.code == 227 and r.of(CloseData) and d.s.data is Data.PASSIVE


def test_pasv_mapped_ipv4_and_ipv6(d: Drive) -> None:
    d.passive = ("::ffff:10.1.2.3", 61000)
    assert "(10,1,2,3,238,72)" in d("PASV").text
    d.passive = ("::1", 61000)
    r = d("PASV")
    assert r.code == 425 and r.of(CloseData) and d.s.data is Data.NONE


def test_pasv_no_free_port(d: Drive) -> None:
    d.passive = OSError(errno.EADDRINUSE, "none")
    assert d("PASV").code == 425 and d.s.data is Data.NONE
    assert d("EPSV").code == 425


def test_epsv(d: Drive) -> None:
    r = d("EPSV")
    assert r.replies == [Reply(229, "Entering Extended Passive Mode (|||61000|)")]
    assert r.of(OpenPassive)[0].extended and d.s.data is Data.PASSIVE
    assert d("EPSV 1").code == 229
    assert d("EPSV 2").code == 522
    assert d("EPSV 3").code == 522
    assert d("EPSV x").code == 501  # not a protocol number at all


def test_epsv_on_ipv6() -> None:
    drv = Drive(peer="::1", local="::1").login()
    assert drv("EPSV 2").code == 229
    assert drv("EPSV 1").code == 522


def test_epsv_all_refuses_pasv_port_eprt(d: Drive) -> None:
    assert d("EPSV ALL").code == 200
    assert d("PASV").code == 501
    assert d("PORT 127,0,0,1,240,0").code == 501
    assert d("EPRT |1|127.0.0.1|61440|").code == 501
    assert d("EPSV").code == 229


def test_port_ok(d: Drive) -> None:
    r = d("PORT 127,0,0,1,240,1")
    assert r.code == 200 and d.s.active_addr == ("127.0.0.1", 61441)
    assert d.s.data is Data.ACTIVE


@pytest.mark.parametrize(
    "arg",
    [
        "127,0,0,1,240",
        "127,0,0,1,240,0,1",
        "127,0,0,1,256,0",
        "a,b,c,d,e,f",
        "127.0.0.1:21",
        "127,0,0,1,-1,0",
    ],
)
def test_port_bad_syntax(d: Drive, arg: str) -> None:
    assert d(f"PORT {arg}").code == 501
    assert d.s.data is Data.NONE


def test_port_bounce_protection(d: Drive) -> None:
    assert d("PORT 127,0,0,2,240,0").code == 501  # foreign address (RFC 2577 §3)
    assert d("PORT 127,0,0,1,3,255").code == 501  # port 1023
    assert d("PORT 127,0,0,1,0,0").code == 501
    assert d("EPRT |1|127.0.0.2|61440|").code == 501
    assert d("EPRT |1|127.0.0.1|1023|").code == 501
    assert d.s.data is Data.NONE and d.s.active_addr is None


def test_port_promiscuous_allows_foreign() -> None:
    drv = Drive(settings=SessionSettings(login_fail_delay=0, port_promiscuous=True)).login()
    assert drv("PORT 127,0,0,2,0,21").code == 200
    assert drv.s.active_addr == ("127.0.0.2", 21)
    assert drv("PORT 127,0,0,2,0,0").code == 501  # port 0 never


def test_eprt(d: Drive) -> None:
    assert d("EPRT |1|127.0.0.1|61440|").code == 200
    assert d.s.active_addr == ("127.0.0.1", 61440)
    assert d("EPRT !1!127.0.0.1!61441!").code == 200  # any delimiter (RFC 2428 §2)
    assert d("EPRT |3|127.0.0.1|61440|").code == 522
    for bad in (
        "|1|127.0.0.1|61440",
        "|1|::1|61440|",
        "|1|127.0.0.1|0|",
        "|1|host|5000|",
        "|1|127.0.0.1|99999|",
        "x",
        "|2|127.0.0.1|61440|",
    ):
        assert d(f"EPRT {bad}").code == 501, bad


def test_eprt_ipv6_and_mapped_peer() -> None:
    drv = Drive(peer="::1", local="::1").login()
    assert drv("EPRT |2|::1|61440|").code == 200
    mapped = Drive(peer="::ffff:127.0.0.1", local="::ffff:127.0.0.1").login()
    assert mapped.s.peer_ip == "127.0.0.1"
    assert mapped("PORT 127,0,0,1,240,0").code == 200


def test_port_then_pasv_then_port(d: Drive) -> None:
    d("PORT 127,0,0,1,240,0")
    r = d("PASV")
    assert r.of(CloseData) and d.s.data is Data.PASSIVE
    r = d("PORT 127,0,0,1,240,0")
    assert r.of(CloseData) and d.s.data is Data.ACTIVE


def test_abor_idle(d: Drive) -> None:
    assert d("ABOR").replies == [Reply(225, "No transfer to abort.")]
    d("PASV")
    r = d("ABOR")
    assert r.code == 225 and r.of(CloseData) and d.s.data is Data.NONE


# ---------------------------------------------------------------------------------- FTPS (RFC 4217)
def test_auth_pbsz_prot_not_implemented() -> None:
    drv = Drive()
    for cmd in ("AUTH TLS", "AUTH SSL", "PBSZ 0", "PROT P"):
        assert drv(cmd).code == 502
    assert not drv.s.closing
    drv.login()
    assert drv("CCC").code == 533  # the control connection is not protected


def _tls(mode: str = "explicit") -> Drive:
    return Drive(settings=SessionSettings(login_fail_delay=0, tls_mode=TlsMode(mode)))


def test_auth_tls_sequence() -> None:
    drv = _tls()
    assert drv("PBSZ 0").code == 503  # before AUTH (RFC 4217 §8)
    assert drv("PROT P").code == 503
    r = drv("AUTH TLS")
    assert r.codes == [234] and r.of(StartTLS) and drv.s.secure
    assert drv("AUTH TLS").code == 503  # already secure
    assert drv("PROT P").code == 503  # PBSZ first
    assert drv("PBSZ x").code == 501
    assert drv("PBSZ 0").replies == [Reply(200, "PBSZ=0")]
    assert drv("PROT S").code == 536
    assert drv("PROT X").code == 504
    assert drv("PROT P").code == 200 and drv.s.prot_p
    assert drv("PROT C").code == 200 and not drv.s.prot_p
    drv.login()
    assert drv("CCC").code == 534
    drv.fs.files["/f"] = b"x"
    drv("PROT P")
    drv("PASV")
    assert drv("RETR f").transfer.tls


@pytest.mark.parametrize(
    ("mech", "prot_p"), [("TLS", False), ("tls-c", False), ("SSL", True), ("TLS-P", True)]
)
def test_auth_mechanisms(mech: str, prot_p: bool) -> None:
    drv = _tls()
    assert drv(f"AUTH {mech}").codes == [234]
    assert drv.s.prot_p == prot_p
    assert _tls()("AUTH KERBEROS").code == 504


def test_tls_required() -> None:
    drv = _tls("required")
    assert drv("USER user").code == 530 and drv.s.login is Login.NEED_USER
    drv("AUTH TLS")
    drv("PBSZ 0")
    assert drv("PROT C").code == 534
    drv.login()
    drv.fs.files["/f"] = b"x"
    drv("PASV")
    assert drv("RETR f").code == 522  # data connections must be protected
    assert drv("LIST").code == 522
    assert drv("PROT P").code == 200
    assert drv("RETR f").of(StartTransfer)
