"""The command table: one frozen spec per verb, binding it to its handler, and the generic check.

``check`` reads a spec's fields in one fixed order, the same for every verb: syntax (``501``) →
login (``530``) → availability (``502``) → sequence (``503``, the running transfer and the spec's
``needs``, whose rules are in ``ftpd.proto.state``) → path (``550``/``553``) → permission (``550``).
The handler (``ftpd.proto.handlers``) runs only if all pass. A test checks that table and handlers
match one to one. FEAT and HELP are generated from this table; HELP and SITE, which read it, are
defined here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from .errors import ArgumentError, BadSequence, FileUnavailable, NotImplementedErr, NotLoggedIn
from .handlers import dataconn, files, info, lists, login, params, security, transfers
from .paths import resolve, strip_ls_flags
from .replies import Reply, printable
from .requests import HandlerResult
from .state import RULES, Need, SessionState, Tls, TlsMode

__all__ = [
    "Arg",
    "Need",
    "HandlerFn",
    "CommandSpec",
    "COMMANDS",
    "ALIASES",
    "SITE_COMMANDS",
    "NOT_IMPLEMENTED",
    "HTTP_VERBS",
    "lookup",
    "check",
]

# ``ftp_<VERB>(state, arg, path)``; ``path`` is the resolved argument when ``CommandSpec.path``.
HandlerFn = Callable[[SessionState, str, str], HandlerResult]


class Arg(Enum):
    NONE = "none"  # an argument is a syntax error (501)
    OPTIONAL = "optional"
    REQUIRED = "required"  # a missing argument is a syntax error (501)


@dataclass(frozen=True, slots=True)
class CommandSpec:
    verb: str
    arg: Arg
    handler: HandlerFn
    help: str
    login: bool = True  # needs a logged-in session, else 530
    perm: str = ""  # permission letter (pyftpdlib letters elradfmwMT), checked after the path
    path: bool = False  # the argument is a path: resolved before the permission check
    ls_flags: bool = False  # the path may follow ls options ("LIST -la dir"), which are dropped
    ftps: bool = False  # RFC 4217 command: 502 while TLS is neither configured nor in use
    # Sequence preconditions, each checked by its rule in state.RULES (503 unless the rule says).
    needs: tuple[Need, ...] = ()
    # Answered while a transfer runs (ABOR, STAT, NOOP, QUIT); other commands wait in the IO
    # layer's queue, and are 503 if they reach the session meanwhile.
    during_transfer: bool = False


# Named in every command's check, as module globals (Python 3.11's enum lookup is slow: enums.py).
_REQUIRED, _NONE, _TLS_OFF, _PLAIN = Arg.REQUIRED, Arg.NONE, TlsMode.OFF, Tls.PLAIN


def check(s: SessionState, spec: CommandSpec, arg: str) -> str:
    """The generic check, in its fixed order; returns the resolved path (or "")."""
    if spec.arg is _REQUIRED and not arg.strip():
        raise ArgumentError("Syntax error: command needs an argument.")
    if spec.arg is _NONE and arg.strip():
        raise ArgumentError("Syntax error: command does not accept arguments.")
    if spec.login and not s.logged_in:
        raise NotLoggedIn("Log in with USER and PASS first.")
    if spec.ftps and s.settings.tls_mode is _TLS_OFF and s.tls is _PLAIN:
        # Not "500": FileZilla and curl probe AUTH TLS/SSL and must carry on in plain text. An
        # implicit-FTPS session is under TLS even when explicit AUTH TLS is turned off.
        raise NotImplementedErr(f"{spec.verb} not supported: TLS is not configured.")
    if s.transfer is not None and not spec.during_transfer:
        raise BadSequence("A transfer is in progress.")
    for need in spec.needs:
        err = RULES[need](s, spec.verb)
        if err is not None:
            raise err
    path = ""
    if spec.path:
        path = resolve(s.cwd, strip_ls_flags(arg) if spec.ls_flags else arg)
    if spec.perm and spec.perm not in s.perms:
        raise FileUnavailable("Permission denied.")
    return path


# ---------------------------------------------------------------------------------- HELP and SITE
def ftp_HELP(s: SessionState, arg: str, path: str) -> Reply:
    if arg.strip():
        verb = arg.strip().upper()
        spec = lookup(verb)
        if spec is None:
            raise ArgumentError(f"Unrecognized command {printable(verb)!r}.")
        return Reply(214, f"Syntax: {spec.help}")
    verbs = sorted(set(COMMANDS) | set(ALIASES))
    rows = [" ".join(f"{v:<5}" for v in verbs[i : i + 8]) for i in range(0, len(verbs), 8)]
    return Reply(214, "The following commands are recognized:", *rows, "Help OK.")


def ftp_SITE(s: SessionState, arg: str, path: str) -> HandlerResult:
    sub, _, rest = arg.strip().partition(" ")
    spec = SITE_COMMANDS.get(sub.upper())
    if spec is None:
        raise ArgumentError(f"Unknown SITE command {printable(sub)!r}.")
    return spec.handler(s, rest, check(s, spec, rest))


def ftp_SITE_HELP(s: SessionState, arg: str, path: str) -> Reply:
    helps = (spec.help for spec in SITE_COMMANDS.values())
    return Reply(214, "Recognized SITE commands:", *helps, "Help OK.")


# ---------------------------------------------------------------------------------- the table
A, O, N = Arg.REQUIRED, Arg.OPTIONAL, Arg.NONE  # noqa: E741
_c = CommandSpec

COMMANDS: dict[str, CommandSpec] = {
    s.verb: s
    for s in (
        # Access control (RFC 959 §4.1.1)
        _c("USER", A, login.ftp_USER, "USER <name> (set user name)", login=False,
           needs=(Need.TLS_FOR_LOGIN,)),
        _c("PASS", O, login.ftp_PASS, "PASS <password> (set password)", login=False,
           needs=(Need.USER_GIVEN,)),
        _c("ACCT", A, login.ftp_ACCT, "ACCT <account> (accounts are not used)", login=False),
        _c("CWD", O, files.ftp_CWD, "CWD [<dir>] (change directory)", perm="e", path=True),
        _c("CDUP", N, files.ftp_CDUP, "CDUP (go to parent directory)", perm="e"),
        _c("REIN", N, login.ftp_REIN, "REIN (flush the login)", login=False),
        _c("QUIT", N, login.ftp_QUIT, "QUIT (close the connection)", login=False,
           during_transfer=True),
        # Transfer parameters (RFC 959 §4.1.2, RFC 2428)
        _c("PORT", A, dataconn.ftp_PORT, "PORT h1,h2,h3,h4,p1,p2 (active data connection)",
           needs=(Need.NOT_EPSV_ALL,)),
        _c("EPRT", A, dataconn.ftp_EPRT, "EPRT |proto|addr|port| (extended active data connection)",
           needs=(Need.NOT_EPSV_ALL,)),
        _c("PASV", N, dataconn.ftp_PASV, "PASV (passive data connection)",
           needs=(Need.NOT_EPSV_ALL,)),
        _c("EPSV", O, dataconn.ftp_EPSV, "EPSV [<proto>|ALL] (extended passive data connection)"),
        _c("TYPE", A, params.ftp_TYPE, "TYPE A|I|L 8 (transfer type)"),
        _c("STRU", A, params.ftp_STRU, "STRU F (file structure)"),
        _c("MODE", A, params.ftp_MODE, "MODE S (stream mode)"),
        # Service commands (RFC 959 §4.1.3)
        _c("RETR", A, transfers.ftp_RETR, "RETR <file> (download)", perm="r", path=True),
        _c("STOR", A, transfers.ftp_STOR, "STOR <file> (upload)", perm="w", path=True),
        _c("STOU", O, transfers.ftp_STOU, "STOU [<name>] (upload to a unique name)", perm="w",
           path=True),
        _c("APPE", A, transfers.ftp_APPE, "APPE <file> (append to a file)", perm="a", path=True),
        _c("ALLO", A, params.ftp_ALLO, "ALLO <bytes> (no storage to allocate)"),
        _c("REST", A, params.ftp_REST, "REST <offset> (restart a transfer)"),
        _c("RNFR", A, files.ftp_RNFR, "RNFR <path> (rename from)", perm="f", path=True),
        _c("RNTO", A, files.ftp_RNTO, "RNTO <path> (rename to)", perm="f", path=True,
           needs=(Need.RENAME_FROM,)),
        _c("ABOR", N, dataconn.ftp_ABOR, "ABOR (abort the transfer)", during_transfer=True),
        _c("DELE", A, files.ftp_DELE, "DELE <file> (delete a file)", perm="d", path=True),
        _c("RMD", A, files.ftp_RMD, "RMD <dir> (remove a directory)", perm="d", path=True),
        _c("MKD", A, files.ftp_MKD, "MKD <dir> (make a directory)", perm="m", path=True),
        _c("PWD", N, files.ftp_PWD, "PWD (print the current directory)"),
        _c("LIST", O, lists.ftp_LIST, "LIST [<path>] (long listing)", perm="l", path=True,
           ls_flags=True),
        _c("NLST", O, lists.ftp_NLST, "NLST [<path>] (name listing)", perm="l", path=True,
           ls_flags=True),
        _c("SITE", A, ftp_SITE, "SITE <command> (site-specific commands: HELP, CHMOD)",
           login=False),
        _c("SYST", N, info.ftp_SYST, "SYST (system type)", login=False),
        _c("STAT", O, info.ftp_STAT,
           "STAT [<path>] (status, or a listing over the control connection)", login=False,
           during_transfer=True),
        _c("HELP", O, ftp_HELP, "HELP [<command>] (help)", login=False),
        _c("NOOP", N, info.ftp_NOOP, "NOOP (do nothing)", login=False, during_transfer=True),
        # Extensions
        _c("FEAT", N, info.ftp_FEAT, "FEAT (list extensions, RFC 2389)", login=False),
        _c("OPTS", A, info.ftp_OPTS, "OPTS <command> [<options>] (RFC 2389: UTF8, MLST)",
           login=False),
        _c("HOST", A, login.ftp_HOST, "HOST <name> (virtual host, RFC 7151)", login=False,
           needs=(Need.NOT_LOGGED_IN,)),
        _c("CLNT", O, info.ftp_CLNT, "CLNT <client name> (ignored)", login=False),
        _c("SIZE", A, files.ftp_SIZE, "SIZE <file> (file size, RFC 3659)", perm="l", path=True),
        _c("MDTM", A, files.ftp_MDTM, "MDTM <file> (modification time, RFC 3659)", perm="l",
           path=True),
        _c("MFMT", A, files.ftp_MFMT, "MFMT <YYYYMMDDHHMMSS> <file> (set modification time)",
           perm="T"),
        _c("MLST", O, lists.ftp_MLST, "MLST [<path>] (facts about one entry, RFC 3659)", perm="l",
           path=True),
        _c("MLSD", O, lists.ftp_MLSD, "MLSD [<dir>] (machine listing, RFC 3659)", perm="l",
           path=True),
        _c("AUTH", A, security.ftp_AUTH, "AUTH TLS (security mechanism, RFC 4217)", login=False,
           ftps=True),
        _c("PBSZ", A, security.ftp_PBSZ, "PBSZ 0 (protection buffer size, RFC 4217)", login=False,
           ftps=True, needs=(Need.SECURE,)),
        _c("PROT", A, security.ftp_PROT, "PROT C|P (data protection level, RFC 4217)", login=False,
           ftps=True, needs=(Need.SECURE, Need.PBSZ_GIVEN)),
        _c("CCC", N, security.ftp_CCC, "CCC (clear the control channel; refused by policy)"),
    )
}  # fmt: skip

# RFC 1123 §4.1.3.1: "All FTP implementations SHOULD recognize both forms".
ALIASES: dict[str, str] = {
    "XCWD": "CWD",
    "XCUP": "CDUP",
    "XPWD": "PWD",
    "XMKD": "MKD",
    "XRMD": "RMD",
}

SITE_COMMANDS: dict[str, CommandSpec] = {
    "HELP": _c("SITE HELP", O, ftp_SITE_HELP, "SITE HELP (list SITE commands)", login=False),
    "CHMOD": _c("SITE CHMOD", A, files.ftp_SITE_CHMOD,
                "SITE CHMOD <mode> <path> (change permissions)", perm="M"),
    "QUOTA": _c("SITE QUOTA", N, files.ftp_SITE_QUOTA, "SITE QUOTA (your disk usage and limits)"),
}  # fmt: skip

# Verbs we know of but do not implement: answered 502, not 500 (RFC 959 §4.2 distinguishes them).
NOT_IMPLEMENTED = frozenset({"SMNT", "ADAT", "MIC", "CONF", "ENC", "LANG", "MFCT", "MFF"})

# Sent by web browsers or proxies at an FTP port (vsftpd 3.0.3: "HTTP protocol commands not allowed").
HTTP_VERBS = frozenset({"GET", "POST", "HEAD", "OPTIONS", "CONNECT", "PUT", "DELETE"})


def lookup(verb: str) -> CommandSpec | None:
    """The spec for a verb (aliases resolved), or None."""
    spec = COMMANDS.get(verb)
    if spec is None:
        real = ALIASES.get(verb)
        if real is not None:
            spec = COMMANDS[real]
    return spec
