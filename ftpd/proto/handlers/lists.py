"""Listings (RFC 959 §4.1.3, RFC 3659 §7): LIST, NLST and MLSD over a data connection, MLST and
STAT <path> over the control connection. The formats are in ``ftpd.proto.listing``."""

from __future__ import annotations

import time

from ...fs.base import FileStat
from .. import names
from ..errors import ArgumentError, FileUnavailable
from ..listing import LineFormat, ListingKind, list_line, mlsx_facts, nlst_line
from ..paths import quote_path, resolve, strip_ls_flags
from ..replies import Reply
from ..requests import HandlerGen, OpenListing, ReadListing, Stat, TransferKind
from ..state import SessionState
from .transfers import require_data_setup, send_listing

__all__ = ["fact_perms", "stat_listing", "ftp_LIST", "ftp_NLST", "ftp_MLSD", "ftp_MLST"]


def fact_perms(s: SessionState) -> str:
    """Permission letters for the MLSx perm fact: the user's, less what the storage cannot."""
    return s.perms if s.caps.resume_write else s.perms.replace("a", "")


# A directory's listing is a stream (ftpd.fs.listing_stream): opened here without reading
# anything, read and formatted in batches by the IO layer once the data connection exists.
def ftp_LIST(s: SessionState, arg: str, path: str) -> HandlerGen:
    require_data_setup(s)
    st: FileStat = yield Stat(path)
    fmt = LineFormat(ListingKind.LIST, time.time())
    if not st.is_dir:
        return (yield from send_listing(s, TransferKind.LIST, path, payload=fmt([st])))
    return (yield from send_listing(s, TransferKind.LIST, path, fmt))


def ftp_NLST(s: SessionState, arg: str, path: str) -> HandlerGen:
    require_data_setup(s)
    st: FileStat = yield Stat(path)
    if not st.is_dir:
        # A file: its name as the client gave it (vsftpd), without ls flags.
        given = names.from_wire(strip_ls_flags(arg).strip())
        payload = names.encode(nlst_line(given or st.name) + "\r\n")
        return (yield from send_listing(s, TransferKind.NLST, path, payload=payload))
    return (yield from send_listing(s, TransferKind.NLST, path, LineFormat(ListingKind.NLST)))


def ftp_MLSD(s: SessionState, arg: str, path: str) -> HandlerGen:
    require_data_setup(s)
    st: FileStat = yield Stat(path)
    if not st.is_dir:
        raise ArgumentError("Not a directory.")  # RFC 3659 §7.2.1: 501, no data connection
    fmt = LineFormat(ListingKind.MLSD, facts=s.mlst_facts, perms=fact_perms(s))
    return (yield from send_listing(s, TransferKind.MLSD, path, fmt))


def ftp_MLST(s: SessionState, arg: str, path: str) -> HandlerGen:
    st: FileStat = yield Stat(path)
    facts = mlsx_facts(st, s.mlst_facts, fact_perms(s))
    # RFC 3659 §7.2: the entry line starts with one space; TVFS: the full virtual path.
    return Reply(250, f"Listing {path}", f"{facts} {path}", "End.")


def stat_listing(s: SessionState, arg: str) -> HandlerGen:
    """STAT <path>: a LIST over the control connection (RFC 959 §4.1.3). A directory's lines
    are streamed as parts of the 213 reply, a batch at a time once the previous ones have
    drained (``ReadListing``)."""
    raw = strip_ls_flags(arg)
    if any(c in raw for c in "*?["):
        raise FileUnavailable("Globbing not supported.")
    path = resolve(s.cwd, raw)
    st: FileStat = yield Stat(path)
    now = time.time()
    title = f"Status of {quote_path(path)}:"
    if not st.is_dir:
        return Reply(213, title, list_line(st, now), "End of status.")
    stream = yield OpenListing(path, LineFormat(ListingKind.LIST, now, prefix=" "))
    yield Reply.opening(213, title)
    try:
        while True:
            chunk: bytes = yield ReadListing(stream)
            if not chunk:
                break
            yield Reply.part(213, chunk)
    except OSError:
        # The 213- line is out: the reply must still end with its 213 line.
        return Reply(213, "End of status (the directory could not be read to its end).")
    return Reply(213, "End of status.")
