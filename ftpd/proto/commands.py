"""The command table: one frozen spec per verb.

The generic check in ``Session`` reads these fields, always in the same order: syntax (``500``/``501``)
→ login (``530``) → sequence (``503``) → path (``550``) → permission (``550``). Handlers are
``Session.ftp_<VERB>``; a test checks that table and handlers match one to one. FEAT and HELP are
generated from this table.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = ["Arg", "CommandSpec", "COMMANDS", "ALIASES", "SITE_COMMANDS", "lookup"]


class Arg(Enum):
    NONE = "none"  # an argument is a syntax error (501)
    OPTIONAL = "optional"
    REQUIRED = "required"  # a missing argument is a syntax error (501)


class Need(Enum):
    """A sequence precondition (a missing one is answered 503)."""

    NOTHING = "nothing"
    USER_GIVEN = "user-given"  # PASS: only right after USER (RFC 959 §4.1.1)
    RENAME_FROM = "rename-from"  # RNTO: only right after RNFR
    NOT_LOGGED_IN = "not-logged-in"  # HOST: before login only (RFC 7151 §3)


@dataclass(frozen=True, slots=True)
class CommandSpec:
    verb: str
    arg: Arg
    login: bool = True  # needs a logged-in session, else 530
    perm: str = ""  # permission letter (pyftpdlib letters elradfmwMT), checked after the path
    path: bool = False  # the argument is a path: resolved before the permission check
    need: Need = Need.NOTHING
    during_transfer: bool = False  # answered at once while a transfer runs (ABOR, STAT, NOOP, QUIT)
    help: str = ""


def _c(verb: str, arg: Arg, help: str, **kw: object) -> CommandSpec:
    return CommandSpec(verb, arg, help=help, **kw)  # type: ignore[arg-type]


A, O, N = Arg.REQUIRED, Arg.OPTIONAL, Arg.NONE  # noqa: E741

COMMANDS: dict[str, CommandSpec] = {
    s.verb: s
    for s in (
        # Access control (RFC 959 §4.1.1)
        _c("USER", A, "USER <name> (set user name)", login=False),
        _c("PASS", O, "PASS <password> (set password)", login=False, need=Need.USER_GIVEN),
        _c("ACCT", A, "ACCT <account> (accounts are not used)", login=False),
        _c("CWD", O, "CWD [<dir>] (change directory)", perm="e", path=True),
        _c("CDUP", N, "CDUP (go to parent directory)", perm="e"),
        _c("REIN", N, "REIN (flush the login)", login=False),
        _c("QUIT", N, "QUIT (close the connection)", login=False, during_transfer=True),
        # Transfer parameters (RFC 959 §4.1.2, RFC 2428)
        _c("PORT", A, "PORT h1,h2,h3,h4,p1,p2 (active data connection)"),
        _c("EPRT", A, "EPRT |proto|addr|port| (extended active data connection)"),
        _c("PASV", N, "PASV (passive data connection)"),
        _c("EPSV", O, "EPSV [<proto>|ALL] (extended passive data connection)"),
        _c("TYPE", A, "TYPE A|I|L 8 (transfer type)"),
        _c("STRU", A, "STRU F (file structure)"),
        _c("MODE", A, "MODE S (stream mode)"),
        # Service commands (RFC 959 §4.1.3)
        _c("RETR", A, "RETR <file> (download)", perm="r", path=True),
        _c("STOR", A, "STOR <file> (upload)", perm="w", path=True),
        _c("STOU", O, "STOU [<name>] (upload to a unique name)", perm="w", path=True),
        _c("APPE", A, "APPE <file> (append to a file)", perm="a", path=True),
        _c("ALLO", A, "ALLO <bytes> (no storage to allocate)"),
        _c("REST", A, "REST <offset> (restart a transfer)"),
        _c("RNFR", A, "RNFR <path> (rename from)", perm="f", path=True),
        _c("RNTO", A, "RNTO <path> (rename to)", perm="f", path=True, need=Need.RENAME_FROM),
        _c("ABOR", N, "ABOR (abort the transfer)", during_transfer=True),
        _c("DELE", A, "DELE <file> (delete a file)", perm="d", path=True),
        _c("RMD", A, "RMD <dir> (remove a directory)", perm="d", path=True),
        _c("MKD", A, "MKD <dir> (make a directory)", perm="m", path=True),
        _c("PWD", N, "PWD (print the current directory)"),
        _c("LIST", O, "LIST [<path>] (long listing)", perm="l", path=True),
        _c("NLST", O, "NLST [<path>] (name listing)", perm="l", path=True),
        _c("SITE", A, "SITE <command> (site-specific commands: HELP, CHMOD)", login=False),
        _c("SYST", N, "SYST (system type)", login=False),
        _c(
            "STAT",
            O,
            "STAT [<path>] (status, or a listing over the control connection)",
            login=False,
            during_transfer=True,
        ),
        _c("HELP", O, "HELP [<command>] (help)", login=False),
        _c("NOOP", N, "NOOP (do nothing)", login=False, during_transfer=True),
        # Extensions
        _c("FEAT", N, "FEAT (list extensions, RFC 2389)", login=False),
        _c("OPTS", A, "OPTS <command> [<options>] (RFC 2389: UTF8, MLST)", login=False),
        _c("HOST", A, "HOST <name> (virtual host, RFC 7151)", login=False, need=Need.NOT_LOGGED_IN),
        _c("CLNT", O, "CLNT <client name> (ignored)", login=False),
        _c("SIZE", A, "SIZE <file> (file size, RFC 3659)", perm="l", path=True),
        _c("MDTM", A, "MDTM <file> (modification time, RFC 3659)", perm="l", path=True),
        _c("MFMT", A, "MFMT <YYYYMMDDHHMMSS> <file> (set modification time)", perm="T"),
        _c("MLST", O, "MLST [<path>] (facts about one entry, RFC 3659)", perm="l", path=True),
        _c("MLSD", O, "MLSD [<dir>] (machine listing, RFC 3659)", perm="l", path=True),
        _c("AUTH", A, "AUTH TLS (security mechanism, RFC 4217)", login=False),
        _c("PBSZ", A, "PBSZ 0 (protection buffer size, RFC 4217)", login=False),
        _c("PROT", A, "PROT C|P (data protection level, RFC 4217)", login=False),
        _c("CCC", N, "CCC (clear the control channel; refused by policy)"),
    )
}

# RFC 1123 §4.1.3.1: "All FTP implementations SHOULD recognize both forms".
ALIASES: dict[str, str] = {
    "XCWD": "CWD",
    "XCUP": "CDUP",
    "XPWD": "PWD",
    "XMKD": "MKD",
    "XRMD": "RMD",
}

SITE_COMMANDS: dict[str, CommandSpec] = {
    "HELP": _c("SITE HELP", O, "SITE HELP (list SITE commands)", login=False),
    "CHMOD": _c("SITE CHMOD", A, "SITE CHMOD <mode> <path> (change permissions)", perm="M"),
}

# Verbs we know of but do not implement: answered 502, not 500 (RFC 959 §4.2 distinguishes them).
NOT_IMPLEMENTED = frozenset(
    {"SMNT", "ADAT", "MIC", "CONF", "ENC", "LANG", "MFCT", "MFF"}
)

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
