"""Stateful fuzzing of the sans-IO session: random command sequences in any state, no sockets.

A hypothesis ``RuleBasedStateMachine`` plays the IO layer the way ``ftpd.server.control`` does:
bytes go through ``LineReader``; while a transfer runs only ABOR/STAT/NOOP/QUIT are handled and
other lines wait their turn; every request a handler yields is answered, sometimes with an injected
``OSError`` (ENOSPC, EACCES, EIO...); transfers end at random with any outcome. Lines are random:
every verb and alias, unknown and HTTP verbs, hostile arguments (``..`` chains, NUL, CR, Telnet
IAC, invalid UTF-8, overlong lines, bounce addresses) and raw random bytes.

After every step:

- no exception escaped, and no "internal error" was logged (``Session.advance`` turns our own bugs
  into 451 + a traceback in the log: either is a failure here);
- every reply is a valid RFC 959 reply on the wire (code, CRLF, multi-line form, no CR/LF/NUL
  inside a line), and every handled command was answered unless the protocol says otherwise;
- the state is consistent: logged in ⇔ an account; a transfer ⇔ the IO layer runs one, and it
  has consumed its data connection setup (data state NONE); a passive listener is open ⇔ data state PASSIVE; an active address only to the client
  itself on a port ≥ 1024 (RFC 2577 bounce protection); cwd is a normalised virtual path;
- the filesystem is only asked by a logged-in session, only for normalised virtual paths, and
  only for what the account's permission letters allow; a file opened for a command is handed to
  its transfer (never leaked).

``FTPD_FUZZ_EXAMPLES`` (default 100 sequences of up to 40 steps) scales the run.
"""

from __future__ import annotations

import errno
import logging
import os
from dataclasses import astuple
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from support.client import check_reply_lines
from support.driver import STOP, drive, perform_fs

from ftpd.fs.base import FileStat, PathEscapeError
from ftpd.proto.commands import ALIASES, COMMANDS, HTTP_VERBS, NOT_IMPLEMENTED
from ftpd.proto.lines import LineReader, parse_command
from ftpd.proto.replies import Reply
from ftpd.proto.requests import (
    AbortTransfer,
    Authenticate,
    Chmod,
    CloseData,
    Delete,
    FsRequest,
    ListDir,
    MakeDir,
    OpenListing,
    OpenPassive,
    OpenRead,
    OpenWrite,
    Outcome,
    ReadListing,
    RemoveDir,
    Rename,
    SetMtime,
    Sleep,
    StartTLS,
    StartTransfer,
    Transfer,
    UniqueName,
)
from ftpd.proto.session import Session, SessionSettings
from ftpd.proto.state import Data, Login, TlsMode

EXAMPLES = int(os.environ.get("FTPD_FUZZ_EXAMPLES", "100"))
STEPS = 40
COUNTS = {"sequences": 0, "lines": 0, "requests": 0, "faults": 0, "transfers": 0}
MTIME = 1_700_000_000.0

# ------------------------------------------------------------------------------ line material
VERBS = sorted(
    {
        *COMMANDS,
        *ALIASES,
        *NOT_IMPLEMENTED,
        *HTTP_VERBS,
        "SITE CHMOD",
        "SITE HELP",
        "OPTS MLST",
        "OPTS UTF8",
        "XYZZY",
        "",
    }
)
ARGS = [
    "",
    " ",
    "/",
    ".",
    "..",
    "../../..",
    "/../etc/passwd",
    "..\\..",
    "f",
    "a b",
    "dir",
    "dir/g",
    "dir/../f",
    "//dir//g",
    "./dir/./g/..",
    "-la",
    "-la dir",
    "-l /../..",
    "*",
    "dir/*",
    "x" * 300,
    "d/" * 1200,
    "\x00f",
    "f\x00",
    "new",
    "new/sub",
    "dir/new",
    '"q"',
    "f\r",
    "\u00e9t\u00e9",
    "127,0,0,1,4,1",
    "127,0,0,1,0,21",
    "10,0,0,1,4,1",
    "1,2,3",
    "256,0,0,1,1,1",
    "127,0,0,1,0,0",
    "|1|127.0.0.1|1025|",
    "|2|::1|1025|",
    "|1|10.0.0.1|1025|",
    "|1|127.0.0.1|21|",
    "||||",
    "|3|x|1|",
    "|1|127.0.0.1|0|",
    "|1|::ffff:127.0.0.1|2000|",
    "ALL",
    "1",
    "2",
    "A",
    "I",
    "L 8",
    "E",
    "F",
    "R",
    "S",
    "B",
    "0",
    "100",
    "-5",
    "99999999999999999999",
    "TLS",
    "SSL",
    "P",
    "C",
    "777 f",
    "999 f",
    "644",
    "20200101000000 f",
    "20201301000000 f",
    "20200101000000",
    "ON",
    "OFF",
    "type;size;",
    "user",
    "pw",
    "anonymous",
    "refuse",
    "CHMOD 600 f",
    "HELP",
]
ARG_BYTES = st.one_of(
    st.sampled_from([a.encode("utf-8", "surrogateescape") for a in ARGS]),
    st.binary(max_size=24),
    st.text(max_size=16).map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.sampled_from(
        [
            b"\xff\xf4\xff\xf2",
            b"\xff\xff",
            b"\xc3",
            b"\xed\xa0\x80",
            b"\x80abc",
            b"a\rb",
            b"\xff\xfb",
            b"x" * 5000,
        ]
    ),
)
VERB_BYTES = st.one_of(
    st.sampled_from([v.encode() for v in VERBS]),
    st.sampled_from([v.lower().encode() for v in VERBS]),
    st.binary(max_size=6),
)
LINES = st.builds(
    lambda pre, verb, sep, arg, end: pre + verb + sep + arg + end,
    st.sampled_from([b"", b"", b"", b"\xff\xf4\xff\xf2", b" "]),
    VERB_BYTES,
    st.sampled_from([b" ", b" ", b"  ", b""]),
    ARG_BYTES,
    st.sampled_from([b"\r\n", b"\r\n", b"\n", b"\r\n\r\n", b""]),
)
FAULTS = [
    errno.ENOENT,
    errno.EACCES,
    errno.EPERM,
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EIO,
    errno.ELOOP,
    errno.ENAMETOOLONG,
    errno.EEXIST,
    errno.ENOTEMPTY,
    errno.EISDIR,
    errno.ENOTDIR,
    errno.EXDEV,
    errno.EINVAL,
    errno.EMFILE,
    -1,
]  # -1: PathEscapeError
OUTCOMES = list(Outcome)
PERMS = st.sets(st.sampled_from("elradfmwMT")).map(lambda s: "".join(sorted(s)))

# What a filesystem request needs from the account's permission letters (any one of them).
NEEDS: dict[type[FsRequest], str] = {
    OpenRead: "r",
    OpenWrite: "wa",
    UniqueName: "w",
    ListDir: "l",
    OpenListing: "l",
    MakeDir: "m",
    RemoveDir: "d",
    Delete: "d",
    Rename: "f",
    Chmod: "M",
    SetMtime: "T",
}


def is_virtual(path: object) -> bool:
    """An absolute, normalised virtual path: no empty, '.' or '..' segments, no NUL."""
    if not isinstance(path, str) or not path.startswith("/") or "\0" in path:
        return False
    if path == "/":
        return True
    segs = path[1:].split("/")
    return all(s not in ("", ".", "..") for s in segs)


# ------------------------------------------------------------------------------ fakes
class FakeFS:
    """An in-memory tree that raises OSError like the local backend."""

    def __init__(self) -> None:
        self.files = {"/f": b"data", "/a b": b"", "/dir/g": b"g" * 10}
        self.dirs = {"/", "/dir"}

    @staticmethod
    def err(code: int) -> OSError:
        return OSError(code, os.strerror(code))

    def stat(self, p: str) -> FileStat:
        name = p.rsplit("/", 1)[1] or "/"
        if p in self.dirs:
            return FileStat(name, True, 0, MTIME, 0o40755, 2)
        if p in self.files:
            return FileStat(name, False, len(self.files[p]), MTIME, 0o100644)
        raise self.err(errno.ENOENT)

    def _parent(self, p: str) -> None:
        if (p.rsplit("/", 1)[0] or "/") not in self.dirs:
            raise self.err(errno.ENOENT)

    def list(self, p: str) -> list[FileStat]:
        if p not in self.dirs:
            raise self.err(errno.ENOTDIR if p in self.files else errno.ENOENT)
        pre = p.rstrip("/") + "/"
        names = [
            x
            for x in (*self.dirs, *self.files)
            if x != p and x.startswith(pre) and "/" not in x[len(pre) :]
        ]
        return [self.stat(x) for x in names]

    def open_listing(self, p: str, fmt: Any) -> Any:
        # Nothing is read here (the IO layer reads once the data connection is up).
        return SimpleNamespace(path=p, kind="listing", rows=self.list(p), fmt=fmt)

    def open_read(self, p: str, offset: int) -> Any:
        if p in self.dirs:
            raise self.err(errno.EISDIR)
        if p not in self.files:
            raise self.err(errno.ENOENT)
        if offset > len(self.files[p]):
            raise self.err(errno.EINVAL)
        return SimpleNamespace(size=len(self.files[p]), path=p, kind="reader")

    def open_write(self, p: str, offset: int, append: bool) -> Any:
        if p in self.dirs:
            raise self.err(errno.EISDIR)
        self._parent(p)
        return SimpleNamespace(path=p, kind="writer")

    def mkdir(self, p: str) -> None:
        if p in self.dirs or p in self.files:
            raise self.err(errno.EEXIST)
        self._parent(p)
        self.dirs.add(p)

    def rmdir(self, p: str) -> None:
        if p not in self.dirs:
            raise self.err(errno.ENOENT)
        if any(x.startswith(p + "/") for x in (*self.dirs, *self.files)):
            raise self.err(errno.ENOTEMPTY)
        self.dirs.discard(p)

    def delete(self, p: str) -> None:
        if p in self.dirs:
            raise self.err(errno.EISDIR)
        if self.files.pop(p, None) is None:
            raise self.err(errno.ENOENT)

    def rename(self, src: str, dst: str) -> None:
        self._parent(dst)
        if src in self.files:
            self.files[dst] = self.files.pop(src)
        elif src in self.dirs and not dst.startswith(src + "/"):
            self.dirs.discard(src)
            self.dirs.add(dst)
        else:
            raise self.err(errno.ENOENT if src not in self.dirs else errno.EINVAL)

    def set_mtime(self, p: str, mtime: float) -> None:
        self.stat(p)

    def chmod(self, p: str, mode: int) -> None:
        self.stat(p)

    def perform(self, req: FsRequest) -> Any:
        """What the IO layer's table does with a filesystem request, on this fake."""
        return perform_fs(self, req)

    def unique_name(self, vdir: str, prefix: str) -> str:
        if vdir not in self.dirs:
            raise self.err(errno.ENOENT)
        assert "/" not in prefix and prefix not in ("", ".", ".."), prefix
        n = 0
        base = vdir.rstrip("/") + "/" + prefix
        while f"{base}.{n}" in self.files:
            n += 1
        self.files[f"{base}.{n}"] = b""
        return f"{base}.{n}"


class ErrorLog(logging.Handler):
    """Collects ERROR records from the protocol core (its 'internal error' tracebacks)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


ERRORS = ErrorLog()
logging.getLogger("ftpd").addHandler(ERRORS)


def check_reply(reply: Reply) -> None:
    assert isinstance(reply, Reply), reply
    assert 100 <= reply.code <= 559 and reply.code % 100 <= 59, reply
    wire = reply.encode()
    lines = [ln + b"\r\n" for ln in wire.split(b"\r\n")[:-1]]
    assert b"".join(lines) == wire, f"reply not made of CRLF lines: {wire!r}"
    if reply.raw is not None:  # a part of a streamed reply (STAT of a directory)
        for ln in lines:
            body = ln[:-2]
            assert b"\r" not in body and b"\n" not in body and b"\0" not in body, ln
            assert ln.startswith(b" ") or ln.startswith(b"%d-" % reply.code), ln
        return
    assert check_reply_lines(lines) == reply.code
    assert not reply.text.startswith("Internal error"), reply


# ------------------------------------------------------------------------------ the machine
class SessionMachine(RuleBasedStateMachine):
    """The IO layer's contract, played against a real ``Session`` with fakes behind it."""

    def __init__(self) -> None:
        super().__init__()
        self.s: Session = None  # type: ignore[assignment]

    @initialize(
        tls=st.sampled_from(["off", "explicit", "required"]),
        attempts=st.integers(0, 3),
        delay=st.sampled_from([0.0, 1.0]),
        promiscuous=st.booleans(),
        addrs=st.sampled_from(
            [
                ("127.0.0.1", "127.0.0.1"),
                ("::1", "::1"),
                ("::ffff:127.0.0.1", "::ffff:127.0.0.1"),
                ("127.0.0.1", "127.0.0.2"),
            ]
        ),
        perms=PERMS,
    )
    def start(
        self,
        tls: str,
        attempts: int,
        delay: float,
        promiscuous: bool,
        addrs: tuple[str, str],
        perms: str,
    ) -> None:
        COUNTS["sequences"] += 1
        ERRORS.records.clear()
        self.settings = SessionSettings(
            max_login_attempts=attempts,
            login_fail_delay=delay,
            port_promiscuous=promiscuous,
            tls_mode=TlsMode(tls),
        )
        self.addrs = addrs
        self.perms = perms
        self.fs = FakeFS()
        self.connect()

    def connect(self) -> None:
        self.s = Session(self.settings, *self.addrs)
        self.reader = LineReader(4096)
        self.queue: list[str] = []
        self.closed = False
        self.listener = False  # a passive listener is open (OpenPassive .. CloseData/transfer)
        self.running: Transfer | None = None  # the transfer task
        self.faults: list[int | None] = []
        self.opened: list[Any] = []  # readers/writers opened during the current command
        check_reply(self.s.greeting())

    # -- the IO layer -----------------------------------------------------------------------
    def answer(self, req: Any) -> tuple[Any, BaseException | None]:
        COUNTS["requests"] += 1
        s = self.s
        fault = None
        if isinstance(req, (FsRequest, OpenPassive, StartTLS, ReadListing)) and self.faults:
            fault = self.faults.pop(0)
        if isinstance(req, FsRequest):
            assert s.logged_in, f"filesystem call {req!r} before login"
            args = astuple(req)
            for arg in args:
                if isinstance(arg, str) and not isinstance(req, UniqueName):
                    assert is_virtual(arg), f"un-normalised path reached the filesystem: {req!r}"
            if isinstance(req, UniqueName):
                assert is_virtual(req.vdir), req
            need = NEEDS.get(type(req))
            if need:
                assert set(need) & set(s.perms), f"{req!r} without permission ({s.perms!r})"
            if fault is not None:
                COUNTS["faults"] += 1
                return None, PathEscapeError(args[0]) if fault < 0 else FakeFS.err(fault)
            try:
                result = self.fs.perform(req)
            except OSError as exc:
                return None, exc
            if isinstance(req, (OpenRead, OpenWrite)):
                self.opened.append(result)
            return result, None
        if isinstance(req, Authenticate):
            if req.password == "pw":
                return SimpleNamespace(name=req.name, perms=self.perms), None
            if req.password == "refuse":
                return "Too many sessions for this user.", None
            return None, None
        if isinstance(req, OpenPassive):
            self.listener = False  # the IO layer drops the old listener first
            if fault is not None:
                COUNTS["faults"] += 1
                return None, OSError(errno.EADDRINUSE, "no free passive port")
            self.listener = True
            return (self.addrs[1], 61234), None
        if isinstance(req, CloseData):
            self.listener = False
            return None, None
        if isinstance(req, StartTransfer):
            assert self.running is None, "a second transfer started while one runs"
            t = req.transfer
            assert t is s.transfer and s.data is Data.NONE
            for res in (t.reader, t.writer):
                if res is not None and res in self.opened:
                    self.opened.remove(res)
            self.listener = False  # the transfer owns the listener now
            self.running = t
            COUNTS["transfers"] += 1
            return None, None
        if isinstance(req, AbortTransfer):
            if self.running is not None:
                # The transfer task is cancelled; its 426 is sent before ABOR's own reply.
                self.finish_running("aborted", opened=True)
            return None, None
        if isinstance(req, Sleep):
            assert 0 < req.seconds <= 60
            return None, None
        if isinstance(req, ReadListing):  # STAT of a directory: one batch, then the end
            stream = req.stream
            if fault is not None:
                return None, FakeFS.err(fault)
            rows, stream.rows = stream.rows, []
            return (stream.fmt(rows) if rows else b""), None
        if isinstance(req, StartTLS):
            if fault is not None:
                return None, ConnectionResetError("handshake failed")  # closes the connection
            return None, None
        raise AssertionError(f"unknown request {req!r}")

    def drive(self, line: str) -> tuple[list[Reply], bool]:
        """Run one line to completion as ControlChannel does; (replies, started a transfer)."""
        self.opened = []

        def answer(item: Any) -> tuple[Any, BaseException | None]:
            value, exc = self.answer(item)
            if isinstance(item, StartTLS) and exc is not None:
                return STOP, None  # a failed handshake closes the connection
            return value, exc

        out = drive(self.s, line, answer, max_steps=50)
        started = any(isinstance(r, StartTransfer) for r in out.requests)
        if out.stopped:
            self.closed = True
            return out.replies, started
        assert not self.opened, f"{line[:30]!r} opened {self.opened} without a transfer"
        return out.replies, started

    def run(self, line: str) -> None:
        COUNTS["lines"] += 1
        verb = parse_command(line)[0]
        quit_in_transfer = verb == "QUIT" and self.s.transfer is not None
        # After a QUIT during a transfer the session takes no command (issue 17.1): only the
        # transfer's reply is still to come.
        after_quit = self.s.quit_pending
        replies, started = self.drive(line)
        for r in replies:
            check_reply(r)
        if after_quit:
            assert not replies and not started, f"{line[:30]!r} taken after QUIT"
            return
        if not (replies or started or not verb or quit_in_transfer or self.closed):
            raise AssertionError(f"no reply to {line[:60]!r}")

    def after_command(self) -> None:
        s = self.s
        if s.closing:
            self.closed = True
            return
        while self.queue and not self.closed:
            if s.transfer is not None and not s.allowed_during_transfer(self.queue[0]):
                for i, line in enumerate(self.queue):
                    if s.allowed_during_transfer(line):
                        del self.queue[i]
                        self.run(line)
                        break
                else:
                    break
            else:
                self.run(self.queue.pop(0))
            if s.closing:
                self.closed = True

    def finish_running(self, outcome: Outcome, opened: bool, error: OSError | None = None) -> None:
        t = self.running
        assert t is not None
        if opened:
            check_reply(self.s.transfer_opened(t))
        self.running = None
        for r in self.s.transfer_finished(t, outcome, error):
            check_reply(r)

    # -- rules ------------------------------------------------------------------------------
    @precondition(lambda self: not self.closed)
    @rule(data=LINES, faults=st.lists(st.one_of(st.none(), st.sampled_from(FAULTS)), max_size=3))
    def send(self, data: bytes, faults: list[int | None]) -> None:
        self.faults = list(faults)
        for line in self.reader.feed(data):
            if self.closed:
                break
            if self.s.transfer is not None and not self.s.allowed_during_transfer(line):
                self.queue.append(line)
                continue
            self.run(line)
            self.after_command()
        self.faults = []

    @precondition(lambda self: not self.closed and not self.s.logged_in)
    @rule()
    def log_in(self) -> None:
        self.send(b"USER user\r\nPASS pw\r\n", [])

    @precondition(lambda self: not self.closed and self.s.logged_in)
    @rule(
        line=st.sampled_from(
            [
                "CWD dir",
                "CDUP",
                "MKD new",
                "RMD dir",
                "DELE f",
                "RNFR f",
                "RNTO g",
                "SIZE f",
                "MDTM f",
                "MFMT 20200101000000 f",
                "MLST f",
                "STAT dir",
                "SITE CHMOD 600 f",
                "RETR f",
                "STOR g",
                "STOU",
                "APPE f",
                "LIST",
                "MLSD dir",
                "PASV",
                "EPSV",
                "AUTH TLS",
            ]
        ),
        faults=st.lists(st.sampled_from(FAULTS), min_size=1, max_size=2),
    )
    def fs_fault(self, line: str, faults: list[int]) -> None:
        """A well-formed command whose filesystem (or socket, or TLS) request fails."""
        self.send(b"TYPE I\r\n", [])
        self.send(f"{line}\r\n".encode(), faults)

    @precondition(lambda self: not self.closed and self.s.logged_in)
    @rule(
        verb=st.sampled_from(
            [
                "RETR f",
                "STOR new",
                "APPE f",
                "STOU",
                "LIST",
                "NLST dir",
                "MLSD",
                "RETR dir/g",
                "STOR dir/x",
            ]
        ),
        setup=st.sampled_from(["PASV", "EPSV", "PORT 127,0,0,1,4,1", "EPRT |2|::1|1025|"]),
    )
    def start_transfer(self, verb: str, setup: str) -> None:
        self.send(f"{setup}\r\n{verb}\r\n".encode(), [])

    @precondition(lambda self: self.running is not None)
    @rule(
        outcome=st.sampled_from(OUTCOMES),
        opened=st.booleans(),
        err=st.sampled_from([None, errno.ENOSPC, errno.EIO, errno.EDQUOT]),
    )
    def transfer_ends(self, outcome: Outcome, opened: bool, err: int | None) -> None:
        error = FakeFS.err(err) if err is not None and outcome is Outcome.LOCAL_ERROR else None
        self.finish_running(outcome, opened and outcome is not Outcome.NO_CONNECTION, error)
        self.after_command()

    @precondition(lambda self: self.closed)
    @rule()
    def reconnect(self) -> None:
        # The server frees everything of a closed session; a new connection starts afresh.
        self.running = None
        self.connect()

    # -- invariants -------------------------------------------------------------------------
    @invariant()
    def no_internal_errors(self) -> None:
        assert not ERRORS.records, [r.getMessage() for r in ERRORS.records]

    @invariant()
    def consistent(self) -> None:
        s = self.s
        if s is None:
            return
        assert (s.login is Login.LOGGED_IN) == (s.account is not None)
        if s.account is not None:
            assert s.perms == s.account.perms
        else:
            assert s.perms == ""
        if s.transfer is not None:
            assert s.data is Data.NONE  # the transfer consumed its PASV/PORT setup
        if not self.closed:
            assert (s.transfer is None) == (self.running is None)
            assert self.listener == (s.data is Data.PASSIVE), (self.listener, s.data)
        if s.data is Data.PASSIVE or (s.data is Data.NONE and s.transfer is None):
            assert s.active_addr is None
        if s.data is Data.ACTIVE:
            assert s.active_addr is not None
        if s.active_addr is not None and not self.settings.port_promiscuous:
            host, port = s.active_addr
            assert host == s.peer_ip and port >= 1024, ("bounce", s.active_addr, s.peer_ip)
        assert is_virtual(s.cwd), s.cwd
        assert s.rest >= 0
        if s.rename_from is not None:
            assert is_virtual(s.rename_from) and s.rename_from != "/"
        assert self.reader.buffered <= 4096


TestSessionFuzz = SessionMachine.TestCase
TestSessionFuzz.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module", autouse=True)
def _report(figures: Any) -> Any:
    yield
    figures.record("fuzz: session state machine (hypothesis stateful)", **COUNTS)
