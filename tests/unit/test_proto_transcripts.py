"""Whole sessions through the sans-IO core, every reply pinned: code *and* text.

The other protocol tests check codes and state; these pin what a client sees, line by line: the
texts clients show and log, and the ones they parse (227/229 addresses, 257 quoting, ``FILE:``,
FEAT and HELP lists, STAT and MLST bodies), plus the listing payloads. A mutation run left most
reply texts unchecked (docs/TESTING.md); a change to any of them is now a deliberate one.

``proto_transcripts.txt`` is the reviewed transcript (a Python literal). After a deliberate change,
rewrite it with ``PYTHONPATH=. python tests/unit/test_proto_transcripts.py`` and review the diff.
"""

from __future__ import annotations

import ast
import errno
import sys
from pathlib import Path
from typing import Any

import pytest

# The fakes of test_proto_session (and tests/, for support, when run as a script).
sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).parents[1])]
from test_proto_session import Drive, body  # noqa: E402

from ftpd.fs.base import Capabilities  # noqa: E402
from ftpd.proto.requests import Outcome, StartTransfer  # noqa: E402
from ftpd.proto.session import SessionSettings  # noqa: E402
from ftpd.proto.state import TlsMode  # noqa: E402

Item = str | tuple[str, str]  # a line, or (a data command, the transfer's outcome)

SCRIPTS: dict[str, tuple[str, list[Item]]] = {
    "before-login": (
        "",
        [
            "NOOP",
            "PWD",
            "SYST",
            "FEAT",
            "HELP",
            "HELP USER",
            "HELP XYZ",
            "STAT",
            "HOST x",
            "USER user",
            "HOST x",
            "QUIT",
        ],
    ),
    "login": (
        "",
        [
            "PASS pw",
            "USER user",
            "PASS bad",
            "USER user",
            "PASS pw",
            "USER user",
            "ACCT x",
            "REIN",
            "PASS pw",
        ],
    ),
    "params": (
        "login",
        [
            "TYPE A",
            "TYPE I",
            "TYPE L 8",
            "TYPE L 7",
            "TYPE A N",
            "TYPE A T",
            "TYPE E",
            "TYPE X",
            "TYPE I X",
            "TYPE",
            "STRU F",
            "STRU R",
            "STRU P",
            "STRU X",
            "MODE S",
            "MODE B",
            "MODE C",
            "MODE Z",
            "MODE X",
            "ALLO 10",
            "ALLO",
            "NOOP",
            "SYST",
            "CLNT foo",
            "HOST x",
            "OPTS UTF8 ON",
            "OPTS UTF8 OFF",
            "OPTS UTF8",
            "OPTS MLST type;size;",
            "OPTS MLST bogus;",
            "OPTS MLST",
            "OPTS FOO",
            "OPTS",
            "ACCT x",
            "SMNT x",
            "XYZ",
            "SITE HELP",
            "SITE FOO",
            "SITE",
            "HELP",
            "HELP SITE",
            "STAT",
            "FEAT",
        ],
    ),
    "rest": ("login", ["REST 10", "TYPE I", "REST 10", "REST -1", "REST x", "REST", "REST 0"]),
    "data-setup": (
        "login",
        [
            "PASV",
            "EPSV",
            "EPSV 1",
            "EPSV 2",
            "EPSV 3",
            "EPSV x",
            "EPSV ALL",
            "PASV",
            "PORT 127,0,0,1,240,0",
            "EPRT |1|127.0.0.1|61440|",
            "EPSV",
            "ABOR",
        ],
    ),
    "port": (
        "login",
        [
            "PORT 127,0,0,1,240,0",
            "PORT 127,0,0,1,0,80",
            "PORT 127,0,0,2,240,0",
            "PORT 1,2,3",
            "PORT a,b,c,d,e,f",
            "PORT 127,0,0,1,256,0",
            "PORT 127,0,0,1,0,0",
            "PORT",
            "EPRT |1|127.0.0.1|61440|",
            "EPRT |2|::1|61440|",
            "EPRT |3|127.0.0.1|61440|",
            "EPRT |1|::1|61440|",
            "EPRT |1|127.0.0.1|x|",
            "EPRT |1|127.0.0.1|70000|",
            "EPRT |1|127.0.0.1|0|",
            "EPRT |1|127.0.0.1|80|",
            "EPRT bad",
            "EPRT x",
            "EPRT !1!127.0.0.1!61441!",
            "EPRT |1|127.0.0.1|61440",
            "EPRT |1|127.0.0.2|61440|",
            "EPRT",
            "ABOR",
        ],
    ),
    "files": (
        "login",
        [
            "PWD",
            "CWD sub",
            "PWD",
            "CDUP",
            "CWD nope",
            "CWD f.txt",
            "XCWD sub",
            "XCUP",
            "XPWD",
            "SIZE f.txt",
            "TYPE I",
            "SIZE f.txt",
            "SIZE sub",
            "SIZE nope",
            "MDTM f.txt",
            "MDTM nope",
            "MDTM sub",
            "MKD newdir",
            "MKD newdir",
            "XMKD d2",
            "RMD newdir",
            "RMD sub",
            "RMD nope",
            "XRMD d2",
            "DELE f.txt",
            "DELE sub",
            "DELE nope",
            "RNFR nope",
            "RNFR a b.txt",
            "RNTO b.txt",
            "RNTO c.txt",
            "RNFR b.txt",
            "NOOP",
            "RNTO c.txt",
            "RNFR sub",
            "RNTO /",
            "MFMT 20200101000000 b.txt",
            "MFMT 20200101000000 nope",
            "MFMT 2020 b.txt",
            "MFMT 20201301000000 b.txt",
            "MFMT 20200101000000",
            "MFMT 20200101000000 a b c.txt",
            "MLST b.txt",
            "MLST",
            "MLST nope",
            "STAT sub",
            "STAT nope",
            "STAT b.txt",
            "STAT -la sub",
            "SITE CHMOD 600 b.txt",
            "SITE CHMOD 999 b.txt",
            "SITE CHMOD x b.txt",
            "SITE CHMOD 600",
            "SITE CHMOD 600 nope",
            "SITE CHMOD",
            "SITE chmod 644 b.txt",
            "MLST b.txt",
        ],
    ),
    "transfers": (
        "login",
        [
            "RETR f.txt",
            "PASV",
            ("RETR f.txt", "ok"),
            "PASV",
            ("RETR f.txt", "aborted"),
            "PASV",
            ("RETR f.txt", "lost"),
            "PASV",
            ("RETR f.txt", "timeout"),
            "PASV",
            ("RETR f.txt", "no-connection"),
            "PASV",
            ("RETR f.txt", "tls-no-reuse"),
            "PASV",
            ("RETR f.txt", "tls-failed"),
            "PASV",
            ("RETR f.txt", "local-error"),
            "PASV",
            ("RETR f.txt", "local-error-ENOSPC"),
            "PASV",
            "RETR nope",
            "RETR sub",
            ("LIST", "ok"),
            "PASV",
            ("NLST", "ok"),
            "PASV",
            ("MLSD", "ok"),
            "PASV",
            ("MLSD sub", "aborted"),
            "PASV",
            "MLSD f.txt",
            "PASV",
            ("STOR up.bin", "ok"),
            "PASV",
            ("APPE up.bin", "ok"),
            "PASV",
            ("STOU", "ok"),
            "PASV",
            ("STOU", "ok"),
            "PASV",
            "STOU nodir/x",
            "PASV",
            ("STOU pre", "ok"),
            "PASV",
            ("STOR /", "ok"),
            "TYPE I",
            "REST 3",
            "PASV",
            ("RETR f.txt", "ok"),
            "REST 3",
            "PASV",
            ("STOR f.txt", "ok"),
            "REST 2",
            "PASV",
            ("APPE f.txt", "ok"),
            "REST 3",
            "STOU",
            "PASV",
            "REST 100",
            "RETR f.txt",
            "TYPE A",
            "PASV",
            ("RETR f.txt", "ok"),
            "PASV",
            ("LIST sub", "ok"),
            "PASV",
            ("LIST -la sub", "ok"),
            "PASV",
            ("LIST f.txt", "ok"),
            "PASV",
            ("NLST f.txt", "ok"),
            "PASV",
            ("NLST -l sub", "ok"),
            "PASV",
            ("LIST nope", "ok"),
            "PASV",
            ("LIST s*", "ok"),
            "OPTS MLST type;size;",
            "PASV",
            ("MLSD", "ok"),
        ],
    ),
    "during": (
        "login",
        [
            "PASV",
            ("RETR f.txt", "running"),
            "NOOP",
            "STAT",
            "PWD",
            "TYPE I",
            "PASV",
            "RETR f.txt",
            "ABOR",
        ],
    ),
    "quit-during": ("login", ["PASV", ("RETR f.txt", "running"), "QUIT", "FINISH"]),
    "edges": (
        "login",
        [
            "PASS pw",
            "PORT 127,0,0,1,255,255",
            "PORT 127,0,0,1,4,0",
            "PORT 127,0,0,1,3,255",
            "EPRT |1|127.0.0.1|65535|",
            "EPRT |1|127.0.0.1|65536|",
            "EPRT |1|127.0.0.1|1|",
            "EPRT |1|127.0.0.1|1024|",
            "EPRT |1|127.0.0.1|1023|",
            "EPRT ||",
            "EPRT |",
            "SITE CHMOD 0 f.txt",
            "SITE CHMOD 777 f.txt",
            "SITE CHMOD 1000 f.txt",
            "SITE CHMOD 644 a b.txt",
            "MKD -odd",
            "CWD -odd",
            "CWD /",
            "MFMT ２０２００１０１０００００００ f.txt",
            "MFMT 20200101000000.5 f.txt",
            "TYPE I",
            "REST 3",
            "PASV",
            "RETR nope",
            "PASV",
            ("NLST -l", "ok"),
            "PASV",
            ("LIST -a -l sub", "ok"),
            "PASV",
            ("STAT -l", "ok"),
        ],
    ),
    "no-resume": (
        "no-resume",
        [
            "FEAT",
            "TYPE I",
            "PASV",
            "APPE f.txt",
            "REST 2",
            "STOR f.txt",
            "PASV",
            ("STOR f.txt", "ok"),
            "REST 2",
            "PASV",
            ("RETR f.txt", "ok"),
            "MFMT 20200101000000 f.txt",
            "SITE CHMOD 600 f.txt",
            "MLST f.txt",
            "PASV",
            ("MLSD", "ok"),
        ],
    ),
    "tls-plain-login": ("tls", ["FEAT", "USER user", "PASS pw", "CCC", "PBSZ 0", "PROT P"]),
    "tls-off": ("login", ["AUTH TLS", "PBSZ 0", "PROT P", "CCC"]),
    "tls": (
        "tls",
        [
            "PBSZ 0",
            "PROT P",
            "CCC",
            "AUTH SSL",
            "AUTH X",
            "AUTH",
            "AUTH TLS",
            "AUTH TLS",
            "PROT P",
            "PBSZ 1",
            "PBSZ x",
            "PBSZ 0",
            "PROT X",
            "PROT S",
            "PROT E",
            "PROT C",
            "PROT P",
            "CCC",
            "USER user",
            "PASS pw",
            "PWD",
        ],
    ),
    "tls-pbsz": (
        "tls",
        [
            "AUTH TLS",
            "PROT P",
            "PBSZ 0",
            "PROT P",
            "USER user",
            "PASS pw",
            "CCC",
            "PASV",
            ("LIST", "ok"),
            "PROT C",
            "PASV",
            ("NLST", "ok"),
        ],
    ),
    "tls-required": (
        "tls-required",
        [
            "USER user",
            "AUTH TLS",
            "USER user",
            "PASS pw",
            "PBSZ 0",
            "PROT C",
            "PASV",
            "LIST",
            "PROT P",
            "PASV",
            ("LIST", "ok"),
        ],
    ),
}


def _seed(d: Drive) -> None:
    d.fs.files.update({"/f.txt": b"hello\n", "/sub/inner.txt": b"x" * 10, "/a b.txt": b"s"})
    d.fs.dirs.update({"/sub", "/empty"})


def _drive(kind: str) -> Drive:
    if kind == "no-resume":  # a backend without REST+STOR, APPE, MFMT or CHMOD (S3)
        d = Drive().login()
        d.s.caps = Capabilities(resume_write=False, set_mtime=False, chmod=False)
        return d
    if kind.startswith("tls"):
        mode = TlsMode.REQUIRED if kind == "tls-required" else TlsMode.EXPLICIT
        return Drive(settings=SessionSettings(login_fail_delay=0, tls_mode=mode))
    d = Drive()
    if kind == "login":
        d.login()
    return d


def _joined(replies: list[Any]) -> list[tuple[int, str]]:
    """(code, text) per reply on the wire: a streamed reply's parts (STAT of a directory) and
    its end line are one reply, as the client reads it."""
    out: list[tuple[int, str]] = []
    raw = b""
    for r in replies:
        if r.raw is not None:
            raw += r.raw
            continue
        if raw:
            wire = (raw + r.encode()).decode("utf-8", "surrogateescape").split("\r\n")[:-1]
            lines = [wire[0][4:], *(ln[1:] for ln in wire[1:-1]), wire[-1][4:]]
            out.append((r.code, "\n".join(lines)))
            raw = b""
            continue
        out.append((r.code, r.text))
    return out


def replay(name: str) -> list[tuple[Item, list[Any]]]:
    """Run a script; per item, its replies as (code, text), and a listing's payload."""
    kind, items = SCRIPTS[name]
    d = _drive(kind)
    _seed(d)
    out: list[tuple[Item, list[Any]]] = []
    running: Any = None
    for item in items:
        line, outcome = item if isinstance(item, tuple) else (item, None)
        if line == "FINISH":
            got = [(r.code, r.text) for r in d.s.transfer_finished(running, Outcome.OK)]
            out.append((item, got))
            continue
        run = d(line)
        got: list[Any] = _joined(run.replies)
        if outcome is not None and run.of(StartTransfer):
            t = run.transfer
            # What the IO layer is told to do: kind, path, restart offset, ASCII, upload or not.
            got.append(("transfer", str(t.kind), t.vpath, t.offset, t.ascii, t.writer is not None))
            if outcome == "running":
                got.append((d.s.transfer_opened(t).code, d.s.transfer_opened(t).text))
                running = t
            else:
                error = OSError(errno.ENOSPC, "full") if outcome.endswith("ENOSPC") else None
                done = Outcome(outcome.removesuffix("-ENOSPC"))
                got += [(r.code, r.text) for r in d.finish(run, done, error)]
            if t.payload is not None or t.reader is not None and t.kind.listing:
                got.append(("data", body(t)))
        out.append((item, got))
    return out


@pytest.mark.parametrize("name", list(SCRIPTS))
def test_transcript(name: str) -> None:
    got = replay(name)
    want = expected()[name]
    for (item, replies), (want_item, want_replies) in zip(got, want, strict=True):
        assert item == want_item
        assert replies == want_replies, f"{name}: {item!r}"


def test_every_verb_is_in_a_transcript() -> None:
    from ftpd.proto.commands import COMMANDS

    sent = {
        (i if isinstance(i, str) else i[0]).split()[0].upper()
        for _, items in SCRIPTS.values()
        for i in items
    }
    assert set(COMMANDS) - sent - {"FINISH"} == set()


EXPECTED_FILE = Path(__file__).with_name("proto_transcripts.txt")


def expected() -> dict[str, list[tuple[Item, list[Any]]]]:
    return ast.literal_eval(EXPECTED_FILE.read_text())  # type: ignore[no-any-return]


if __name__ == "__main__":
    import pprint

    current = {n: replay(n) for n in SCRIPTS}
    EXPECTED_FILE.write_text(pprint.pformat(current, width=98, sort_dicts=False) + "\n")
    print(f"wrote {EXPECTED_FILE}: review `git diff` before committing")
