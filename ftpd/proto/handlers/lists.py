"""Listings (RFC 959 §4.1.3, RFC 3659 §7): LIST, NLST and MLSD over a data connection, MLST and
STAT <path> over the control connection. The formats are in ``ftpd.proto.listing``."""

from __future__ import annotations

import time
from collections.abc import Generator
from typing import Any

from ...fs.base import FileStat
from .. import names
from ..errors import ArgumentError, FileUnavailable
from ..listing import list_line, mlsd_line, mlsx_facts, nlst_line
from ..paths import quote_path, resolve, strip_ls_flags
from ..replies import Reply
from ..requests import HandlerGen, ListDir, Request, Stat, TransferKind
from ..state import SessionState
from .transfers import require_data_setup, send_listing

__all__ = ["fact_perms", "stat_listing", "ftp_LIST", "ftp_NLST", "ftp_MLSD", "ftp_MLST"]


def fact_perms(s: SessionState) -> str:
    """Permission letters for the MLSx perm fact: the user's, less what the storage cannot."""
    return s.perms if s.caps.resume_write else s.perms.replace("a", "")


def _listing(path: str) -> Generator[Request, Any, tuple[list[FileStat], bool]]:
    """The entries to list for ``path`` (sorted by name), and whether it is a directory."""
    st: FileStat = yield Stat(path)
    if not st.is_dir:
        return [st], False
    entries: list[FileStat] = yield ListDir(path)
    return sorted(entries, key=_name), True


def ftp_LIST(s: SessionState, arg: str, path: str) -> HandlerGen:
    require_data_setup(s)
    entries, _ = yield from _listing(path)
    now = time.time()
    payload = "".join(list_line(e, now) + "\r\n" for e in entries)
    return (yield from send_listing(s, TransferKind.LIST, path, payload))


def ftp_NLST(s: SessionState, arg: str, path: str) -> HandlerGen:
    require_data_setup(s)
    entries, is_dir = yield from _listing(path)
    if is_dir:
        payload = "".join(nlst_line(e.name) + "\r\n" for e in entries)
    else:
        # A file: its name as the client gave it (vsftpd), without ls flags.
        given = names.from_wire(strip_ls_flags(arg).strip())
        payload = nlst_line(given or entries[0].name) + "\r\n"
    return (yield from send_listing(s, TransferKind.NLST, path, payload))


def ftp_MLSD(s: SessionState, arg: str, path: str) -> HandlerGen:
    require_data_setup(s)
    st: FileStat = yield Stat(path)
    if not st.is_dir:
        raise ArgumentError("Not a directory.")  # RFC 3659 §7.2.1: 501, no data connection
    entries: list[FileStat] = yield ListDir(path)
    facts, perms = s.mlst_facts, fact_perms(s)
    payload = "".join(mlsd_line(e, facts, perms) + "\r\n" for e in sorted(entries, key=_name))
    return (yield from send_listing(s, TransferKind.MLSD, path, payload))


def ftp_MLST(s: SessionState, arg: str, path: str) -> HandlerGen:
    st: FileStat = yield Stat(path)
    facts = mlsx_facts(st, s.mlst_facts, fact_perms(s))
    # RFC 3659 §7.2: the entry line starts with one space; TVFS: the full virtual path.
    return Reply(250, f"Listing {path}", f"{facts} {path}", "End.")


def stat_listing(s: SessionState, arg: str) -> HandlerGen:
    """STAT <path>: a LIST over the control connection (RFC 959 §4.1.3)."""
    raw = strip_ls_flags(arg)
    if any(c in raw for c in "*?["):
        raise FileUnavailable("Globbing not supported.")
    path = resolve(s.cwd, raw)
    entries, _ = yield from _listing(path)
    now = time.time()
    return Reply(
        213,
        f"Status of {quote_path(path)}:",
        *(list_line(e, now) for e in entries),
        "End of status.",
    )


def _name(e: FileStat) -> str:
    return e.name
