"""Where ftpd intentionally differs from pyftpdlib, and why.

``ALLOW[scenario id][where]`` names one difference the conformance test accepts. ``where`` is
``"<step>.<role>"`` (step index into the scenario's steps; role ``reply`` for a command, ``setup``/
``prelim``/``final``/``data`` for a data action), ``"<step>"`` for every role of a data action, or
``"tree"`` for the final directory tree. An entry states what ftpd must do there (``code``: the
reply code, or a role -> code mapping for a whole step, where ``ABSENT`` means "no such reply" and
every reply role that differs must be listed; ``detail``: the pinned text, see
``compare.norm_reply``, or the data, ``ABSENT`` for none; ``data``: on a whole-step entry, the
data ftpd must send (a listing as ``(name, type, size)`` rows); ``derive``: ftpd's observation as a
function of pyftpdlib's, for a difference that is a rule rather than a value; ``tree``: the paths
whose final state differs from the reference's, with ftpd's expected ``(kind, size, sha256
prefix)`` or None for "absent"), and the reason: the RFC section or the client that makes ftpd's
behaviour the right one. Everything not listed here must match pyftpdlib; an entry that no longer
matches a difference fails the test too. An entry never accepts data or pinned reply text it does
not state: a data difference needs ``detail`` (on ``"<step>.data"``) or ``data`` (on
``"<step>"``), and a reply whose pinned text (a 257 path, a 213 value, a listing) differs from the
reference's needs ``detail``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# Reply codes the comparison treats as the same.
EQUIVALENT_CODES: dict[int, tuple[int, str]] = {
    125: (
        150,
        "RFC 959 §4.2/§5.4: 125 and 150 are both the positive preliminary reply of a "
        "transfer; pyftpdlib sends 125 when the client's passive connection was accepted "
        "before the command arrived (a race), ftpd always sends 150 once the data "
        "connection is up (vsftpd's order); ftplib, FileZilla and curl accept either.",
    ),
}

# RFC 3659 §7.5.5 defines the perm fact's letters; pyftpdlib also emits its own permission
# letters M and T there, which no client interprets. Only the RFC letters are compared.
MLSX_PERM_LETTERS = frozenset("acdeflmprw")


class _Absent:
    """No reply in that role, or no data: equal to the recording's None."""

    def __eq__(self, other: object) -> bool:
        return other is None or other is self

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()


@dataclass(frozen=True)
class Allow:
    reason: str
    code: int | Mapping[str, Any] | None = None
    detail: Any = None
    tree: Mapping[bytes, Any] | None = None
    derive: Callable[[Any], Any] | None = None
    data: Any = None


_FEAT = [
    "EPRT",
    "EPSV",
    "HOST",
    "MDTM",
    "MFMT",
    "MLST type*;size*;modify*;perm*;unique*;unix.mode*;",
    "REST STREAM",
    "SIZE",
    "TVFS",
    "UTF8",
]
_FEAT_REASON = (
    "RFC 2389 §3.2 leaves the list to the server: ftpd adds HOST (RFC 7151 §3.1 "
    "requires it in FEAT) and offers unix.mode by default in MLST (FileZilla reads it, "
    "logon.cpp) instead of pyftpdlib's unix.uid/unix.gid, which mean nothing to a "
    "virtual user."
)
_NOT_UTF8 = (
    "RFC 2640 §1: the UTF-8 transition must not break the installed base, which "
    "still sends legacy (e.g. Latin-1) names; ftpd stores such names byte for byte, as "
    "vsftpd and ProFTPD do, and shows each undecodable byte as U+FFFD and its hex (issue "
    "17: never invalid UTF-8 to strict clients such as ftplib), a form that reaches the file "
    "again. pyftpdlib replaces the bytes with U+FFFD, creating a name no client sent."
)
_E9 = "\ufffdE9".encode()

ALLOW: dict[str, dict[str, Allow]] = {
    # ------------------------------------------------------------------ login and session
    "login-anonymous-name-ftp": {
        "1.reply": Allow(
            "'ftp' is the traditional alias of 'anonymous' (wu-ftpd, vsftpd "
            "accept both; RFC 1635 describes the anonymous account); pyftpdlib "
            "accepts only 'anonymous'.",
            code=230,
        ),
        "2.reply": Allow("Follows from the accepted anonymous login above.", code=257, detail=b"/"),
    },
    "login-rein": {
        "1.reply": Allow(
            "RFC 959 §5.4 lists 120/220/421/500/502 for REIN; pyftpdlib's 230 "
            "('logged in') is not among them.",
            code=220,
        ),
        "8.reply": Allow(
            "SIZE answers in TYPE A too (see file-size-ascii), so after REIN's reset to "
            "TYPE A ftpd gives the size where pyftpdlib refuses.",
            code=213,
            detail=b"30",
        ),
    },
    "login-rein-not-logged-in": {
        "0.reply": Allow(
            "RFC 959 §4.1.1: REIN flushes whatever state there is, and §5.4 has no "
            "530 for it; before a login it simply succeeds.",
            code=220,
        ),
    },
    "login-feat-before-login": {
        "0.reply": Allow(_FEAT_REASON, code=211, detail=_FEAT),
    },
    "params-feat": {
        "0.reply": Allow(_FEAT_REASON, code=211, detail=_FEAT),
    },
    "login-opts-utf8-before-login": {
        "0.reply": Allow(
            "lftp sends FEAT and OPTS UTF8 ON before USER (protocol-and-clients "
            "§3, lftp ftpclass.cc); RFC 2389 does not require a login for OPTS, and "
            "jlaffaye/ftp fails on anything but 200/202/501/504.",
            code=200,
        ),
    },
    "login-host-before-user": {
        "0.reply": Allow(
            "RFC 7151 §3: HOST before USER selects the virtual host; ftpd has one "
            "and accepts any name with 220. pyftpdlib does not know HOST (500).",
            code=220,
        ),
    },
    "login-host-after-login": {
        "0.reply": Allow("RFC 7151 §3: HOST after a login is a bad sequence, 503.", code=503),
    },
    "login-clnt": {
        "0.reply": Allow(
            "CLNT (client name, sent by SmartFTP and other Serv-U-aware clients) is "
            "recognised and ignored with 200 instead of an error that clients log; "
            "RFC 959 §4.2 keeps 500 for unrecognised verbs.",
            code=200,
        ),
    },
    "login-auth-tls-without-tls": {
        "0.reply": Allow(
            "RFC 959 §4.2: AUTH/PBSZ/PROT are recognised verbs (RFC 2228/4217) "
            "that this configuration (no TLS certificate) does not implement: 502, "
            "not 500 'unrecognised'; RFC 2228 §4 lists 502 for AUTH.",
            code=502,
        ),
        "1.reply": Allow("As above, for PBSZ.", code=502),
        "2.reply": Allow("As above, for PROT.", code=502),
    },
    # ------------------------------------------------------------------ syntax and parameters
    "syntax-not-implemented": {
        "0.reply": Allow(
            "RFC 959 §5.4: SMNT may be answered 502 (not implemented); 500 means unrecognised.",
            code=502,
        ),
        "1.reply": Allow(
            "RFC 959 §5.4: 202 (superfluous) is a listed ACCT reply; no account is "
            "ever needed here.",
            code=202,
        ),
    },
    "syntax-malformed-arguments": {
        "0.reply": Allow(
            "draft-somers-ftp-mfxx §3: an invalid time-val MUST be answered 501.", code=501
        ),
        "1.reply": Allow("As above: month 13 is not a valid time-val.", code=501),
        "2.reply": Allow("As above: not digits.", code=501),
        "7.reply": Allow(
            "RFC 959 §4.2: SITE is implemented, so an unknown SITE sub-command is "
            "an error in its argument (501), not an unrecognised command (500).",
            code=501,
        ),
    },
    "params-type": {
        "6.reply": Allow(
            "RFC 959 §3.1.1.5/§4.1.2: 'A N' is TYPE ASCII with the default "
            "Non-print format: the same as 'A'.",
            code=200,
        ),
        "8.reply": Allow(
            "RFC 959 §3.1.1.4: 'L 7' is a local byte size ftpd cannot store; 504 "
            "(not implemented for that parameter). pyftpdlib silently uses ASCII.",
            code=504,
        ),
        "9.reply": Allow(
            "RFC 959 §4.2: 'X' is not a type code at all: a syntax error in the "
            "argument (501), as pyftpdlib itself answers for STRU X and MODE X.",
            code=501,
        ),
        "10.reply": Allow("As above: 'I X' is not a valid TYPE argument.", code=501),
    },
    "params-stru-mode": {
        "7.reply": Allow(
            "MODE Z (deflate, draft-preston-ftpext-deflate) is a known mode that "
            "ftpd does not implement: RFC 959 §4.2 504, not 501.",
            code=504,
        ),
    },
    # ------------------------------------------------------------------ network
    "net-epsv-variants": {
        "3.reply": Allow(
            "RFC 2428 §3: an EPSV protocol the server does not support MUST be answered 522.",
            code=522,
        ),
    },
    "net-epsv-all": {
        "0.reply": Allow(
            "RFC 2428 §4 gives EPSV ALL no reply of its own: 200 'command okay' "
            "(RFC 959 §4.2) acknowledges it; pyftpdlib's 220 is the greeting code "
            "('service ready for new user').",
            code=200,
        ),
        "5.reply": Allow("As above.", code=200),
    },
    "net-epsv-all-then-transfers": {
        "0.reply": Allow("As in net-epsv-all: 200, not the greeting code 220.", code=200),
    },
    "net-eprt-malformed": {
        "1.reply": Allow(
            "RFC 2428 §2: an unsupported network protocol in EPRT MUST be answered 522.", code=522
        ),
        "2.reply": Allow(
            "RFC 2577 §3: the address is not the client's own (an IPv6 address on "
            "an IPv4 session), so the bounce check refuses it (501) before the "
            "protocol is considered; either way the EPRT is refused. RFC 2428 §2 asks for "
            "522 only for a protocol the server does not support, and ftpd supports 2; the "
            "other malformed arguments (steps 0, 3-6) are syntax errors, 501 (RFC 959 §4.2.1), "
            "in both servers.",
            code=501,
        ),
    },
    "net-transfer-without-setup": {
        "0.reply": Allow(
            "RFC 959 §5.4: 425 'can't open data connection' when no PORT/PASV "
            "preceded (vsftpd: '425 Use PORT or PASV first'); pyftpdlib answers "
            "150 and then waits for a connection that can never come.",
            code=425,
        ),
        "1.reply": Allow("As above, for LIST.", code=425),
        "2.reply": Allow("As above, for STOR.", code=425),
        "3.reply": Allow("As above, for NLST.", code=425),
        "4.reply": Allow("As above, for MLSD.", code=425),
        "tree": Allow(
            "Follows from the refused STOR: ftpd creates no empty x.txt for an upload "
            "that never started.",
            tree={b"x.txt": None},
        ),
    },
    # ------------------------------------------------------------------ ABOR
    "abor-during-stor": {
        "4.reply": Allow(
            "ftpd stores uploads atomically (atomic_uploads, the default): an "
            "aborted STOR leaves the previous a.txt intact, where pyftpdlib leaves "
            "the partial upload; RFC 959 §4.1.3 does not define the file's state "
            "after ABOR.",
            code=213,
            detail=b"30",
        ),
        "tree": Allow(
            "As above: a.txt keeps its original 30 bytes.",
            tree={b"a.txt": ("file", 30, "49b4c65ebec44dc7")},
        ),
    },
    # ------------------------------------------------------------------ directories and files
    "dir-rmd-cwd": {
        "2.reply": Allow(
            "No RFC rule: after RMD of the current directory ftpd moves the session "
            "to the parent, so the next relative command does not fail on a "
            "directory that no longer exists.",
            code=257,
            detail=b"/dir-rmd-cwd",
        ),
        "4.reply": Allow("Follows from the above: CDUP from the parent.", code=257, detail=b"/"),
    },
    "dir-mkd-non-utf8": {
        "0.reply": Allow(_NOT_UTF8, code=257, detail=b"/dir-mkd-non-utf8/" + _E9 + b"t" + _E9),
        "2.reply": Allow(_NOT_UTF8, code=257, detail=b"/dir-mkd-non-utf8/" + _E9 + b"t" + _E9),
        "tree": Allow(
            _NOT_UTF8, tree={b"\xef\xbf\xbdt\xef\xbf\xbd": None, b"\xe9t\xe9": ("dir", 0, "")}
        ),
    },
    "path-non-utf8-file": {
        "tree": Allow(
            _NOT_UTF8,
            tree={b"caf\xef\xbf\xbd.bin": None, b"caf\xe9.bin": ("file", 12, "4ab787fff9bae732")},
        ),
    },
    "file-rename-interrupted": {
        "2.reply": Allow(
            "RFC 959 §4.1.3: RNTO 'must immediately follow' RNFR; ftpd forgets the "
            "RNFR at the next command, pyftpdlib keeps it across NOOP.",
            code=503,
        ),
        "tree": Allow(
            "Follows from the refused RNTO: a.txt is not renamed.",
            tree={b"a.txt": ("file", 30, "49b4c65ebec44dc7"), b"b.txt": None},
        ),
    },
    "file-size-ascii": {
        "1.reply": Allow(
            "RFC 3659 §4 lets a server refuse SIZE in TYPE A or answer it; ftpd answers with "
            "the stored size, as vsftpd and pure-ftpd do, because Python's ftplib.size() "
            "never sends TYPE I first; pyftpdlib refuses.",
            code=213,
            detail=b"30",
        ),
        "2.reply": Allow("As 1.reply, for a binary file.", code=213, detail=b"4096"),
    },
    "file-rename-onto-root": {
        "1.reply": Allow(
            "RFC 959 §5.4 lists 553 (file name not allowed) for RNTO, not 550; the "
            "home directory is never a valid target.",
            code=553,
        ),
    },
    "file-mfmt": {
        "3.reply": Allow(
            "draft-somers-ftp-mfxx §3 does not restrict MFMT to regular files; "
            "ftpd sets a directory's time too (FileZilla preserves folder times "
            "this way); pyftpdlib refuses directories.",
            code=213,
            detail=b"20200102030405",
        ),
    },
    "stor-errors": {
        "2.prelim": Allow(
            "RFC 959 §5.4 lists 553 (file name not allowed) for STOR, not 550; "
            "'/' is never a file name.",
            code=553,
        ),
    },
    "stou-errors": {
        "1.prelim": Allow(
            "RFC 959 §4.2.1: 4yz means 'try again'; a missing directory is a permanent "
            "condition, so ftpd answers 550 as it does for STOR. §5.4 lists 553/551/552 but "
            "not 550 for STOR and STOU; ftpd keeps one errno -> reply table for every store "
            "command, and §4.2's 550 ('file unavailable, e.g. file not found') is the case.",
            code=550,
        ),
    },
    "rest-stou": {
        "2.prelim": Allow(
            "RFC 3659 §5.3: the command after REST 'should be either RETR or STOR'; ftpd "
            "refuses STOU after REST with 550 (as STOR's errors, see stou-errors) and clears "
            "the marker, where pyftpdlib answers 450.",
            code=550,
        ),
    },
    "rest-appe": {
        "2": Allow(
            "RFC 3659 §5.3 names only RETR and STOR after REST and leaves other uses "
            "undefined; RFC 959 §4.1.3 has REST followed by 'the appropriate FTP service "
            "command which shall cause file transfer to resume'. ftpd resumes REST n + APPE "
            "at byte n exactly as REST n + STOR (the core issue asks for it: how a client "
            "resumes an interrupted append); pyftpdlib refuses the pair with 450.",
            code={"prelim": 150, "final": 226},
        ),
        "tree": Allow(
            "As above: byte 5 of a.txt is the upload's, the rest of the file is kept (REST "
            "+ STOR keeps the tail, as in vsftpd, ProFTPD and pyftpdlib; issue 17).",
            tree={b"a.txt": ("file", 30, "1fcbc3436d273b77")},
        ),
    },
    # ------------------------------------------------------------------ listings and paths
    "list-flags-with-path": {
        "0": Allow(
            "vsftpd, ProFTPD and Pure-FTPd read leading '-' words of LIST as ls options "
            "(WinSCP and basic-ftp send 'LIST -a', tnftp passes 'ls -la dir' through); "
            "pyftpdlib only strips a lone -a/-l/-la/-al and then looks for a file "
            "named '-la sub'.",
            code={"prelim": 150, "final": 226},
            data=[(b"deeper", "d", None), (b"inner.txt", "-", 6)],
        ),
        "1": Allow(
            "As above, for 'LIST -a sub'.",
            code={"prelim": 150, "final": 226},
            data=[(b"deeper", "d", None), (b"inner.txt", "-", 6)],
        ),
    },
    "nlst-variants": {
        "5.data": Allow(
            "NLST of a file echoes the path as given, like ls and vsftpd/ProFTPD, "
            "so that clients (mget, ftplib.nlst) can RETR what they receive; "
            "pyftpdlib returns only the base name.",
            detail=[b"/nlst-variants/sub/inner.txt"],
        ),
    },
    "mlsd-variants": {
        "4.prelim": Allow(
            "RFC 3659 §7.2.1 asks for 501 when the object is not a directory; a "
            "missing object is 'file not found', 550 (RFC 959 §4.2.2), as MLST "
            "answers in both servers.",
            code=550,
        ),
    },
}
