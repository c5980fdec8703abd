"""The sans-IO session, driven directly: no sockets, no event loop.

A small driver (``Drive``) runs one command line to completion. It answers every request a handler
yields with fakes: ``FsCall`` goes to ``FakeFS`` (an in-memory tree), ``Authenticate`` to a fixed
account table, ``OpenPassive`` to a fixed address. Transfers are completed by hand with
``transfer_opened`` / ``transfer_finished``, as the IO layer does.

Covered here: the generic check for every command-table row (501 / 530 / 503 / 550), that table
and handlers match one to one, and each handler's replies and state changes.
"""

from __future__ import annotations

import errno
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from ftpd.fs.base import FileStat
from ftpd.proto.commands import (
    ALIASES,
    COMMANDS,
    HTTP_VERBS,
    NOT_IMPLEMENTED,
    Arg,
    Need,
    lookup,
)
from ftpd.proto.errors import BadSequence
from ftpd.proto.lines import TOO_LONG
from ftpd.proto.replies import Reply
from ftpd.proto.requests import (
    AbortTransfer,
    Authenticate,
    CloseData,
    FsCall,
    OpenPassive,
    Request,
    Sleep,
    StartTLS,
    StartTransfer,
    Transfer,
)
from ftpd.proto.session import Done, Session, SessionSettings
from ftpd.proto.state import Data, Login

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


class FakeFS:
    """An in-memory tree; methods raise OSError with an errno like the real backend."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.dirs: set[str] = {"/"}
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
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


ACCOUNTS = {("user", "pw"): ALL_PERMS}


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
            if isinstance(req, FsCall):
                self.fs.calls.append((req.method, req.args))
                return getattr(self.fs, req.method)(*req.args), None
            if isinstance(req, Authenticate):
                return self.auth(req.name, req.password), None
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
        run = Run()
        result = self.s.handle(line)
        if not Session.is_generator(result):
            if isinstance(result, Reply):
                run.replies.append(result)
            elif result is not None:
                run.replies.extend(result)  # type: ignore[arg-type]
            return run
        value: Any = None
        exc: OSError | None = None
        for _ in range(100):
            item = self.s.advance(result, value, exc)  # type: ignore[arg-type]
            value, exc = None, None
            if isinstance(item, Done):
                run.replies.extend(item.replies)
                return run
            if isinstance(item, Reply):
                run.replies.append(item)
                continue
            run.requests.append(item)
            value, exc = self.answer(item)
        raise AssertionError("handler did not finish")

    def login(self) -> Drive:
        assert self("USER user").code == 331
        assert self("PASS pw").code == 230
        return self

    def finish(self, run: Run, outcome: str = "ok", error: OSError | None = None) -> list[Reply]:
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


# ---------------------------------------------------------------------------------- the table
def test_every_table_verb_has_a_handler() -> None:
    missing = [v for v in COMMANDS if not callable(getattr(Session, "ftp_" + v, None))]
    assert missing == [], f"verbs in COMMANDS without Session.ftp_<VERB>: {missing}"


def test_every_handler_is_in_the_table() -> None:
    handlers = {n[4:] for n, _ in inspect.getmembers(Session) if n.startswith("ftp_")}
    assert handlers - set(COMMANDS) == set()


def test_sample_args_cover_the_table() -> None:
    assert set(SAMPLE_ARGS) == {v for v, s in COMMANDS.items() if s.arg is not Arg.NONE}


def test_aliases_point_to_real_verbs() -> None:
    for alias, real in ALIASES.items():
        assert lookup(alias) is COMMANDS[real]
    assert lookup("NOPE") is None
    assert not (NOT_IMPLEMENTED | HTTP_VERBS) & set(COMMANDS)


def test_spec_consistency() -> None:
    for spec in COMMANDS.values():
        assert spec.verb.isupper() and spec.help.startswith(spec.verb)
        if spec.path:
            assert spec.arg is not Arg.NONE, spec.verb
        assert not (spec.need is Need.USER_GIVEN and spec.login)


REQUIRED = sorted(v for v, s in COMMANDS.items() if s.arg is Arg.REQUIRED)
NO_ARG = sorted(v for v, s in COMMANDS.items() if s.arg is Arg.NONE)
LOGIN_VERBS = sorted(v for v, s in COMMANDS.items() if s.login)
PERM_VERBS = sorted(v for v, s in COMMANDS.items() if s.perm)


@pytest.mark.parametrize("logged_in", [False, True])
@pytest.mark.parametrize("verb", REQUIRED)
def test_missing_argument_is_501(verb: str, logged_in: bool) -> None:
    drv = Drive().login() if logged_in else Drive()
    for text in (verb, verb + " ", verb + "   "):
        assert drv(text).code == 501, text
    assert drv.fs.calls == []


@pytest.mark.parametrize("logged_in", [False, True])
@pytest.mark.parametrize("verb", NO_ARG)
def test_argument_to_no_argument_verb_is_501(verb: str, logged_in: bool) -> None:
    drv = Drive().login() if logged_in else Drive()
    assert drv(f"{verb} extra").code == 501
    assert drv.fs.calls == []


@pytest.mark.parametrize("verb", LOGIN_VERBS)
def test_not_logged_in_is_530(verb: str) -> None:
    drv = Drive()
    assert drv(line(verb)).code == 530
    drv("USER user")  # half-way through the login is not logged in either
    assert drv(line(verb)).code == 530
    assert drv.fs.calls == [] and drv.s.login is Login.NEED_PASS


@pytest.mark.parametrize("verb", sorted(set(COMMANDS) - set(LOGIN_VERBS)))
def test_verbs_without_login_are_not_530(verb: str) -> None:
    r = Drive()(line(verb))
    assert all(x.code != 530 for x in r.replies), (verb, r.replies)


@pytest.mark.parametrize("alias", sorted(ALIASES))
def test_aliases_need_login(alias: str) -> None:
    arg = " x" if COMMANDS[ALIASES[alias]].arg is Arg.REQUIRED else ""
    assert Drive()(alias + arg).code == 530


def test_pass_without_user_is_503() -> None:
    drv = Drive()
    r = drv("PASS pw")
    assert r.code == 503 and r.of(Authenticate) == []
    drv.login()
    assert drv("PASS pw").code == 503  # already logged in


def test_rnto_without_rnfr_is_503(d: Drive) -> None:
    d.fs.files["/f"] = b"x"
    assert d("RNTO g").code == 503
    assert d("RNFR f").code == 350
    assert d("NOOP").code == 200  # anything in between clears the rename-from slot
    assert d("RNTO g").code == 503
    assert "/f" in d.fs.files


def test_host_after_login_is_503() -> None:
    drv = Drive()
    assert drv("HOST ftp.example.com").code == 220
    drv.login()
    assert drv("HOST ftp.example.com").code == 503


def _perms_without(letter: str) -> str:
    return ALL_PERMS.replace(letter, "")


@pytest.mark.parametrize("verb", PERM_VERBS)
def test_missing_permission_letter_is_550(verb: str) -> None:
    letter = COMMANDS[verb].perm
    drv = Drive(_perms_without(letter)).login()
    drv.fs.files.update({"/f": b"data", "/g": b""})
    drv.fs.dirs.add("/dir")
    drv("PASV")
    if verb == "RNTO":
        drv.s.rename_from = "/f"  # RNFR itself needs 'f'; the sequence check comes first
    r = drv(line(verb))
    assert r.code == 550, (verb, r.replies)
    assert drv.fs.calls == [] and r.of(StartTransfer) == []


@pytest.mark.parametrize("verb", PERM_VERBS)
def test_permission_letter_present_passes_the_check(verb: str) -> None:
    drv = Drive(COMMANDS[verb].perm).login()
    drv.fs.files.update({"/f": b"data", "/g": b""})
    drv.fs.dirs.add("/dir")
    drv("PASV")
    drv("TYPE I")  # SIZE is refused in TYPE A
    if verb == "RNTO":
        assert drv("RNFR f").code == 350
    r = drv(line(verb))
    assert not any(x.code == 550 for x in r.replies), (verb, r.replies)


def test_site_chmod_needs_letter_M() -> None:
    drv = Drive(_perms_without("M")).login()
    drv.fs.files["/f"] = b""
    assert drv("SITE CHMOD 644 f").code == 550
    assert drv.fs.calls == []
    drv2 = Drive("M").login()
    drv2.fs.files["/f"] = b""
    assert drv2("SITE CHMOD 644 f").code == 200
    assert drv2.fs.modes == {"/f": 0o644}


def test_check_order_syntax_before_login_before_permission() -> None:
    drv = Drive("")
    assert drv("RETR").code == 501  # syntax first, even when not logged in
    assert drv("RETR f").code == 530
    drv.login()
    assert drv("RETR").code == 501
    assert drv("RETR f").code == 550  # no 'r'


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
    def boom(self: Session, arg: str) -> Reply:
        raise RuntimeError("bug")

    monkeypatch.setattr(Session, "ftp_SYST", boom)
    assert d("SYST").code == 451
    assert d("NOOP").code == 200


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


def test_user_reply_does_not_reveal_existence() -> None:
    assert Drive()("USER nosuchuser").replies == Drive()("USER user").replies


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
    tls = Session(SessionSettings(tls_mode="explicit"), "127.0.0.1", "127.0.0.1")
    assert {"AUTH TLS", "PBSZ", "PROT"} <= set(tls.features())


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
    assert r.code == 213
    lines = r.replies[0].lines
    assert lines[0] == 'Status of "/":' and lines[-1] == "End of status."
    assert len(lines) == 4
    assert lines[1].endswith(" a b") and lines[1].startswith("-")
    assert lines[2].endswith(" sub") and lines[2].startswith("d")
    assert d("STAT -la /").code == 213
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


# ---------------------------------------------------------------------------------- transfers
def test_transfer_without_data_setup_is_425(d: Drive) -> None:
    d.fs.files["/f"] = b"x"
    for cmd in ("RETR f", "STOR g", "APPE g", "STOU", "LIST", "NLST", "MLSD"):
        r = d(cmd)
        assert r.code == 425 and not r.of(StartTransfer), cmd


def test_retr(d: Drive) -> None:
    d.fs.files["/dir/f.bin"] = b"0123456789"
    d.fs.dirs.add("/dir")
    d("TYPE I")
    d("PASV")
    r = d("RETR /dir/f.bin")
    assert r.replies == [] and d.s.data is Data.TRANSFERRING
    t = r.transfer
    assert (t.kind, t.vpath, t.offset, t.ascii, t.name) == ("RETR", "/dir/f.bin", 0, False, "f.bin")
    assert not t.upload and "RETR" in repr(t)
    replies = d.finish(r)
    assert "(10 bytes)" in replies[0].text and "BINARY" in replies[0].text
    assert [x.code for x in replies] == [150, 226]
    assert d.s.data is Data.NONE and d.s.transfer is None


def test_retr_missing_file_is_550_and_keeps_listener(d: Drive) -> None:
    d("PASV")
    assert d("RETR nothere").code == 550
    assert d("RETR /").code == 550  # a directory
    assert d.s.data is Data.PASSIVE


def test_rest_applies_to_next_transfer_only(d: Drive) -> None:
    d.fs.files["/f"] = b"0123456789"
    d("TYPE I")
    d("REST 4")
    d("PASV")
    r = d("RETR f")
    assert r.transfer.offset == 4 and r.transfer.reader.pos == 4
    d.finish(r)
    assert d.s.rest == 0
    d("PASV")
    assert d("RETR f").transfer.offset == 0


def test_stor_and_appe(d: Drive) -> None:
    d("PASV")
    r = d("STOR new.txt")
    t = r.transfer
    assert t.kind == "STOR" and t.upload and t.ascii and t.writer.path == "/new.txt"
    assert not t.writer.append
    assert [x.code for x in d.finish(r)] == [150, 226]
    d("PASV")
    r = d("APPE log")
    assert r.transfer.writer.append and r.transfer.kind == "APPE"
    assert "ASCII" in d.finish(r)[0].text
    d.fs.files["/log"] = b"0123456789"
    d("TYPE I")
    d("REST 5")
    d("PASV")
    r = d("APPE log")  # REST + APPE resumes at the offset
    assert (r.transfer.writer.offset, r.transfer.writer.append) == (5, False)
    d.finish(r)
    d("REST 7")
    d("PASV")
    r = d("STOR log")
    assert r.transfer.writer.offset == 7
    d.finish(r)


def test_rest_beyond_end_of_file_is_554(d: Drive) -> None:
    d.fs.files["/f"] = b"0123456789"
    d("TYPE I")
    d("PASV")
    for cmd in ("RETR f", "STOR f", "APPE f"):
        d("REST 11")
        r = d(cmd)
        assert r.code == 554, cmd  # RFC 3659 §5.3: reported on the transfer command
        assert d.s.rest == 0 and d.s.data is Data.PASSIVE
    d("REST 10")
    d.finish(d("RETR f"))  # exactly at the end is fine


def test_stor_root_and_missing_dir(d: Drive) -> None:
    d("PASV")
    assert d("STOR /").code == 553
    assert d("STOR /nodir/x").code == 550
    assert d.s.data is Data.PASSIVE


def test_stou(d: Drive) -> None:
    d("PASV")
    r = d("STOU")
    t = r.transfer
    assert t.kind == "STOU" and t.vpath == "/ftpd.0" and t.name == "ftpd.0"
    assert d.finish(r)[0] == Reply(150, "FILE: ftpd.0")
    d.fs.dirs.add("/d")
    d("PASV")
    r = d("STOU /d/report")
    assert r.transfer.vpath == "/d/report.0"
    d.finish(r)
    d("TYPE I")
    d("REST 3")
    d("PASV")
    assert d("STOU").code == 550 and d.s.rest == 0


@pytest.mark.parametrize(
    ("outcome", "code"),
    [
        ("ok", 226),
        ("aborted", 426),
        ("lost", 426),
        ("no-connection", 425),
        ("timeout", 426),
        ("refused", 425),
        ("local-error", 451),
    ],
)
def test_transfer_outcomes(d: Drive, outcome: str, code: int) -> None:
    d.fs.files["/f"] = b"abc"
    d("PASV")
    r = d("RETR f")
    t = r.transfer
    assert [x.code for x in d.s.transfer_finished(t, outcome)] == [code]
    assert d.s.data is Data.NONE


def test_transfer_local_error_uses_errno_table(d: Drive) -> None:
    d("PASV")
    r = d("STOR f")
    err = OSError(errno.ENOSPC, "full")
    assert d.finish(r, "local-error", err)[-1].code == 452
    d("PASV")
    r = d("STOR f")
    assert d.finish(r, "local-error", OSError(errno.EDQUOT, "q"))[-1].code == 552


def test_commands_during_a_transfer(d: Drive) -> None:
    d.fs.files["/f"] = b"abc"
    d("PASV")
    r = d("RETR f")
    t = r.transfer
    for cmd in ("ABOR", "STAT", "NOOP", "QUIT", "abor"):
        assert d.s.allowed_during_transfer(cmd)
    for cmd in ("RETR f", "LIST", "PASV", "USER x", "", "XYZ"):
        assert not d.s.allowed_during_transfer(cmd)
    assert "Data connection open: RETR /f" in d("STAT").text
    assert d("PASV").code == 503
    assert d("PORT 127,0,0,1,240,0").code == 503
    assert d("NOOP").code == 200
    # ABOR while running: ask the IO layer to abort; it sends the 426, then ABOR answers 226.
    r = d("ABOR")
    assert r.of(AbortTransfer) and r.code == 226
    assert [x.code for x in d.s.transfer_finished(t, "aborted")] == [426]


def test_quit_during_transfer_waits(d: Drive) -> None:
    d.fs.files["/f"] = b"abc"
    d("PASV")
    r = d("RETR f")
    assert d("QUIT").replies == [] and not d.s.closing and d.s.quit_pending
    assert [x.code for x in d.finish(r)] == [150, 226, 221]
    assert d.s.closing


def test_transfer_end_without_transfer_is_bad_sequence(d: Drive) -> None:
    t = Transfer("RETR", "/f")
    with pytest.raises(BadSequence) as exc:
        d.s.transfer_finished(t, "ok")
    assert exc.value.code == 503


def test_active_transfer_flow(d: Drive) -> None:
    d.fs.files["/f"] = b"abc"
    d("PORT 127,0,0,1,240,0")
    r = d("RETR f")
    assert d.s.data is Data.TRANSFERRING
    d.finish(r)
    assert d.s.data is Data.NONE and d.s.active_addr is None
    assert d("RETR f").code == 425  # the active address was good for one transfer


# ---------------------------------------------------------------------------------- listings
def test_list(d: Drive) -> None:
    d.fs.files.update({"/b.txt": b"12345", "/a.txt": b""})
    d.fs.dirs.add("/sub")
    d("PASV")
    r = d("LIST")
    t = r.transfer
    assert t.kind == "LIST" and t.payload is not None
    rows = t.payload.decode().split("\r\n")
    assert rows[-1] == "" and len(rows) == 4
    assert [row.rsplit(" ", 1)[1] for row in rows[:-1]] == ["a.txt", "b.txt", "sub"]
    assert rows[2].startswith("drwxr-xr-x")
    assert d.finish(r)[-1] == Reply(226, "Directory send OK.")


def test_list_flags_and_file(d: Drive) -> None:
    d.fs.files["/x y"] = b"1"
    for arg in ("-la", "-la /", "-alF -R /"):
        d("PASV")
        r = d(f"LIST {arg}")
        assert r.transfer.vpath == "/", arg
        d.finish(r)
    d("PASV")
    r = d("LIST x y")  # a single file: its own line
    assert r.transfer.payload.decode().rstrip("\r\n").endswith(" x y")
    d.finish(r)
    d("PASV")
    assert d("LIST nothere").code == 550


def test_nlst(d: Drive) -> None:
    d.fs.files.update({"/d/b": b"", "/d/a": b""})
    d.fs.dirs.add("/d")
    d("PASV")
    r = d("NLST -CF d")
    assert r.transfer.payload == b"a\r\nb\r\n"
    d.finish(r)
    d("PASV")
    r = d("NLST d/a")  # a file: the name as given (vsftpd)
    assert r.transfer.payload == b"d/a\r\n"
    d.finish(r)
    d("PASV")
    r = d("NLST -l d/a")  # ls flags are not part of the name
    assert r.transfer.payload == b"d/a\r\n"
    d.finish(r)


def test_mlsd(d: Drive) -> None:
    d.fs.files["/d/f"] = b"abc"
    d.fs.dirs.update({"/d", "/d/e"})
    d("PASV")
    r = d("MLSD d")
    rows = r.transfer.payload.decode().split("\r\n")[:-1]
    assert rows[0].startswith("type=dir;") and rows[0].endswith("; e")
    assert rows[1].startswith("type=file;size=3;modify=20231114221320;") and rows[1].endswith("; f")
    d.finish(r)
    d("PASV")
    assert d("MLSD d/f").code == 501  # RFC 3659 §7.2.1
    assert d.s.data is Data.PASSIVE


def test_mlst(d: Drive) -> None:
    d.fs.files["/d/f g"] = b"abc"
    d.fs.dirs.add("/d")
    d("CWD /d")
    r = d("MLST f g")
    assert r.code == 250
    lines = r.replies[0].lines
    assert lines[1] == "type=file;size=3;modify=20231114221320;perm=rwadf;unix.mode=0644; /d/f g"
    wire = r.replies[0].encode().decode().split("\r\n")
    assert wire[1].startswith(" type=")  # RFC 3659 §7.2: one leading space
    assert d("MLST").replies[0].lines[1].endswith(" /d")
    assert d("MLST nothere").code == 550


def test_listing_names_with_crlf_cannot_inject(d: Drive) -> None:
    d.fs.files["/evil\r\n226 done"] = b""
    for cmd in ("LIST", "NLST", "MLSD"):
        d("PASV")
        r = d(cmd)
        payload = r.transfer.payload
        assert payload.count(b"\r\n") == 1 and b"\n226" not in payload, cmd
        d.finish(r)


# ---------------------------------------------------------------------------------- files
def test_cwd_cdup_pwd(d: Drive) -> None:
    d.fs.dirs.update({"/a", "/a/b c"})
    d.fs.files["/a/f"] = b""
    assert d("PWD").replies == [Reply(257, '"/" is the current directory.')]
    assert d("CWD a/b c").code == 250 and d.s.cwd == "/a/b c"
    assert d("XPWD").text.startswith('"/a/b c"')
    assert d("CDUP").code == 250 and d.s.cwd == "/a"
    assert d("XCUP").code == 250 and d.s.cwd == "/"
    assert d("CDUP").code == 250 and d.s.cwd == "/"  # at the top already
    assert d("CWD ../../..").code == 250 and d.s.cwd == "/"
    assert d("XCWD /a").code == 250
    assert d("CWD f").code == 550 and d.s.cwd == "/a"  # not a directory
    assert d("CWD nothere").code == 550
    assert d("CWD").code == 250 and d.s.cwd == "/"  # no argument: home (pyftpdlib, Pure-FTPd)


def test_pwd_quotes_doubled(d: Drive) -> None:
    d.fs.dirs.add('/say "hi"')
    d('CWD say "hi"')
    assert d("PWD").replies == [Reply(257, '"/say ""hi""" is the current directory.')]


def test_mkd_rmd(d: Drive) -> None:
    r = d('MKD new "q"')
    assert r.replies == [Reply(257, '"/new ""q""" directory created.')]
    assert d('XMKD new "q"').code == 550  # exists
    assert d("MKD /").code == 550
    assert d("MKD no/such/parent").code == 550
    d('CWD new "q"')
    assert d("MKD inner").code == 257 and '/new "q"/inner' in d.fs.dirs
    assert d('RMD /new "q"').code == 550  # not empty
    assert d("XRMD inner").code == 250
    assert d('RMD /new "q"').code == 250
    assert d.s.cwd == "/"  # the current directory was removed: back to its parent
    assert d("RMD /").code == 550
    assert d("RMD nothere").code == 550


def test_dele(d: Drive) -> None:
    d.fs.files["/f"] = b""
    d.fs.dirs.add("/d")
    assert d("DELE f").code == 250 and "/f" not in d.fs.files
    assert d("DELE f").code == 550
    assert d("DELE d").code == 550
    assert d("DELE /").code == 550


def test_rename(d: Drive) -> None:
    d.fs.files["/a"] = b"1"
    assert d("RNFR a").code == 350 and d.s.rename_from == "/a"
    assert d("RNTO b c").code == 250 and d.fs.files == {"/b c": b"1"}
    assert d.s.rename_from is None
    assert d("RNFR nothere").code == 550 and d.s.rename_from is None
    assert d("RNFR /").code == 550
    d("RNFR b c")
    assert d("RNTO /").code == 553


def test_size_mdtm_mfmt(d: Drive) -> None:
    d.fs.files["/f"] = b"12345"
    d.fs.dirs.add("/d")
    assert d("SIZE f").code == 550  # TYPE A: size unknown without reading
    d("TYPE I")
    assert d("SIZE f").replies == [Reply(213, "5")]
    assert d("SIZE d").code == 550 and d("SIZE x").code == 550
    assert d("MDTM f").replies == [Reply(213, "20231114221320")]
    assert d("MDTM d").code == 550
    r = d("MFMT 20200102030405 f")
    assert r.replies == [Reply(213, "Modify=20200102030405; /f")]
    assert d.fs.mtimes["/f"] == 1577934245
    assert d("MDTM f").text == "20200102030405"
    assert d("MFMT 20201302030405 f").code == 501
    assert d("MFMT 2020 f").code == 501
    assert d("MFMT 20200102030405").code == 501
    assert d("MFMT 20200102030405 nothere").code == 550


def test_site(d: Drive) -> None:
    r = d("SITE HELP")
    assert r.code == 214 and "CHMOD" in r.text
    assert Drive()("SITE HELP").code == 214  # no login needed
    assert Drive()("SITE CHMOD 644 f").code == 530
    d.fs.files["/f"] = b""
    assert d("SITE CHMOD 755 f").code == 200 and d.fs.modes["/f"] == 0o755
    assert d("site chmod 600 /f").code == 200
    for bad in (
        "SITE CHMOD",
        "SITE CHMOD 999 f",
        "SITE CHMOD 644",
        "SITE CHMOD 1000 f",
        "SITE NOPE",
        "SITE CHMOD x f",
    ):
        assert d(bad).code == 501, bad
    assert d("SITE CHMOD 644 nothere").code == 550


def test_auth_pbsz_prot_not_implemented() -> None:
    drv = Drive()
    for cmd in ("AUTH TLS", "AUTH SSL", "PBSZ 0", "PROT P"):
        assert drv(cmd).code == 502
    assert not drv.s.closing
    drv.login()
    assert drv("CCC").code == 533  # the control connection is not protected


def _tls(mode: str = "explicit") -> Drive:
    return Drive(settings=SessionSettings(login_fail_delay=0, tls_mode=mode))


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


def test_path_errors(d: Drive) -> None:
    assert d("RETR " + "x" * 256).code == 553  # a name over NAME_MAX
    assert d("CWD " + "a/" * 2100).code == 553  # over MAX_PATH
    assert d("CWD a\0b").code == 550


@pytest.mark.parametrize(
    ("err", "code"),
    [
        (errno.ENOENT, 550),
        (errno.EACCES, 550),
        (errno.ENOTDIR, 550),
        (errno.EISDIR, 550),
        (errno.ELOOP, 550),
        (errno.EEXIST, 550),
        (errno.ENOSPC, 452),
        (errno.EDQUOT, 552),
        (errno.EIO, 451),
        (errno.ENAMETOOLONG, 553),
    ],
)
def test_errno_table(d: Drive, err: int, code: int) -> None:
    def fail(*a: Any) -> None:
        raise OSError(err, "/real/secret/path")

    d.fs.mkdir = fail  # type: ignore[method-assign]
    r = d("MKD x")
    assert r.code == code
    assert "/real" not in r.text and "secret" not in r.text
