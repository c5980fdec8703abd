"""Directory and file commands (RFC 959 §4.1, RFC 3659, draft-somers-ftp-mfxx): CWD, CDUP, PWD,
MKD, RMD, DELE, RNFR, RNTO, SIZE, MDTM, MFMT, SITE CHMOD.

The path argument arrives resolved and permission-checked by the generic check (where the command
table says the argument is a path); each handler yields the one filesystem request it needs.
"""

from __future__ import annotations

from ...fs.base import FileStat
from ..errors import (
    ArgumentError,
    FileUnavailable,
    NameNotAllowed,
    NotImplementedErr,
    ParamNotImplemented,
)
from ..listing import mdtm_time, parse_time_val
from ..paths import parent, quote_path, resolve
from ..replies import Reply
from ..requests import (
    Chmod,
    Delete,
    HandlerGen,
    MakeDir,
    QuotaReport,
    QuotaStatus,
    RemoveDir,
    Rename,
    SetMtime,
    Stat,
)
from ..state import SessionState

__all__ = [
    "pwd_reply",
    "ftp_CWD",
    "ftp_CDUP",
    "ftp_PWD",
    "ftp_MKD",
    "ftp_RMD",
    "ftp_DELE",
    "ftp_RNFR",
    "ftp_RNTO",
    "ftp_SIZE",
    "ftp_MDTM",
    "ftp_MFMT",
    "ftp_SITE_CHMOD",
    "ftp_SITE_QUOTA",
]

_REMOVED = Reply(250, "File removed.")  # encoded once (see ``Reply``)


def pwd_reply(s: SessionState) -> Reply:
    return Reply(257, f"{quote_path(s.cwd)} is the current directory.")


# ---------------------------------------------------------------------------------- directories
def ftp_CWD(s: SessionState, arg: str, path: str) -> HandlerGen:
    if not arg.strip():
        path = "/"  # no argument: the home directory (pyftpdlib, wu-ftpd, Pure-FTPd)
    st: FileStat = yield Stat(path)
    if not st.is_dir:
        raise FileUnavailable("Not a directory.")
    s.cwd = path
    return Reply(250, f"Directory successfully changed to {quote_path(path)}.")


def ftp_CDUP(s: SessionState, arg: str, path: str) -> HandlerGen:
    target = parent(s.cwd)
    yield Stat(target)  # the parent may have been removed meanwhile: 550
    s.cwd = target
    # RFC 959 lists 200, but clients (jlaffaye/ftp for rclone) require 250, as vsftpd sends.
    return Reply(250, f"Directory successfully changed to {quote_path(target)}.")


def ftp_PWD(s: SessionState, arg: str, path: str) -> Reply:
    return pwd_reply(s)


def ftp_MKD(s: SessionState, arg: str, path: str) -> HandlerGen:
    if path == "/":
        raise FileUnavailable("File exists.")
    yield MakeDir(path)
    return Reply(257, f"{quote_path(path)} directory created.")


def ftp_RMD(s: SessionState, arg: str, path: str) -> HandlerGen:
    if path == "/":
        raise FileUnavailable("Can't remove root directory.")
    yield RemoveDir(path)
    if s.cwd == path or s.cwd.startswith(path + "/"):
        s.cwd = parent(path)
    return Reply(250, "Directory removed.")


def ftp_DELE(s: SessionState, arg: str, path: str) -> HandlerGen:
    if path == "/":
        raise FileUnavailable("Is a directory.")
    yield Delete(path)
    return _REMOVED


def ftp_RNFR(s: SessionState, arg: str, path: str) -> HandlerGen:
    if path == "/":
        raise FileUnavailable("Can't rename home directory.")
    yield Stat(path)
    s.rename_from = path
    return Reply(350, "Ready for destination name.")


def ftp_RNTO(s: SessionState, arg: str, path: str) -> HandlerGen:
    src, s.rename_from = s.rename_from, None
    assert src is not None  # the command table's Need.RENAME_FROM
    if path == "/":
        raise NameNotAllowed("Can't overwrite home directory.")
    yield Rename(src, path)
    return Reply(250, "Rename successful.")


# ---------------------------------------------------------------------------------- file facts
def ftp_SIZE(s: SessionState, arg: str, path: str) -> HandlerGen:
    # Also in TYPE A (ftplib's size() never sends TYPE I): the stored size, as vsftpd and
    # pure-ftpd answer. RFC 3659 §4 lets a server refuse instead, since the exact TYPE A count
    # needs a full read; clients compare SIZE with their local file's bytes.
    st: FileStat = yield Stat(path)
    if st.is_dir:
        raise FileUnavailable("Not a regular file.")
    return Reply(213, str(st.size))


def ftp_MDTM(s: SessionState, arg: str, path: str) -> HandlerGen:
    st: FileStat = yield Stat(path)
    if st.is_dir:
        raise FileUnavailable("Not a regular file.")
    return Reply(213, mdtm_time(st.mtime))


def ftp_MFMT(s: SessionState, arg: str, path: str) -> HandlerGen:
    if not s.caps.set_mtime:
        raise NotImplementedErr("MFMT not supported by this storage.")
    value, _, name = arg.strip().partition(" ")
    if not name:
        raise ArgumentError("Syntax: MFMT <YYYYMMDDHHMMSS> <path>.")
    mtime = parse_time_val(value)
    if mtime is None:
        # draft-somers-ftp-mfxx §3.1: an invalid time value MUST be 501.
        raise ArgumentError("Invalid time value.")
    target = resolve(s.cwd, name)
    yield SetMtime(target, mtime)
    return Reply(213, f"Modify={mdtm_time(mtime)}; {target}")


def ftp_SITE_CHMOD(s: SessionState, arg: str, path: str) -> HandlerGen:
    if not s.caps.chmod:
        raise ParamNotImplemented("SITE CHMOD not supported by this storage.")
    mode_s, _, name = arg.strip().partition(" ")
    try:
        mode = int(mode_s, 8)
    except ValueError:
        raise ArgumentError("Invalid SITE CHMOD mode.") from None
    if not name or not 0 <= mode <= 0o777:
        raise ArgumentError("Syntax: SITE CHMOD <mode> <path>.")
    yield Chmod(resolve(s.cwd, name), mode)
    return Reply(200, "SITE CHMOD successful.")


def ftp_SITE_QUOTA(s: SessionState, arg: str, path: str) -> HandlerGen:
    """The user's disk usage and limits (the ``.ftpquota`` record; ProFTPD's SITE QUOTA)."""
    report: QuotaReport | None = yield QuotaStatus()
    if report is None:
        return Reply(200, "No quota for this user.")

    def line(what: str, used: int, limit: int) -> str:
        if not limit:
            return f"{what}: {used} used, no limit"
        return f"{what}: {used} used of {limit} ({100 * used / limit:.1f}%)"

    return Reply(
        200,
        "Quota of this user:",
        line("bytes", report.bytes_used, report.bytes_limit),
        line("files", report.files_used, report.files_limit),
        "End.",
    )
