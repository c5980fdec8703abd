"""Directory listing formats: ``ls -l`` for LIST, names for NLST, facts for MLSD/MLST (RFC 3659 §7).

All times are UTC, consistent with MDTM (vsftpd and ProFTPD default to GMT; lftp assumes GMT for LIST).
A name containing CR or LF is shown with ``?`` in their place so that no name can inject a listing line.
"""

from __future__ import annotations

import calendar
import enum
import stat as _stat
import time

from ..fs.base import FileStat
from . import names

__all__ = [
    "list_line",
    "nlst_line",
    "mlsx_facts",
    "mdtm_time",
    "parse_time_val",
    "DEFAULT_FACTS",
    "ALL_FACTS",
    "ListingKind",
    "LineFormat",
]

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_SIX_MONTHS = 182 * 86400  # vsftpd's cut-off between "HH:MM" and "YYYY" (ls uses ~6 months)
_CACHE_MAX = 2048  # date strings a LIST keeps between its batches

ALL_FACTS = ("type", "size", "modify", "perm", "unique", "unix.mode")
DEFAULT_FACTS = frozenset(ALL_FACTS)


def _safe_name(name: str) -> str:
    if "\r" in name or "\n" in name:
        return name.replace("\r", "?").replace("\n", "?")
    return name


def _list_when(mtime: float, old: bool) -> str:
    t = time.gmtime(mtime)
    if old:
        return f"{_MONTHS[t.tm_mon - 1]} {t.tm_mday:2d}  {t.tm_year}"
    return f"{_MONTHS[t.tm_mon - 1]} {t.tm_mday:2d} {t.tm_hour:02d}:{t.tm_min:02d}"


def _list_mode(mode: int, is_dir: bool) -> str:
    if not _stat.S_IFMT(mode):
        mode |= _stat.S_IFDIR if is_dir else _stat.S_IFREG
    return _stat.filemode(mode)


def list_line(
    st: FileStat,
    now: float,
    whens: dict[tuple[int, bool], str] | None = None,
    modes: dict[tuple[int, bool], str] | None = None,
) -> str:
    """One ``ls -l`` line (without CRLF): mode, links, owner, group, size, date, name.

    ``whens`` and ``modes`` are caches a listing keeps across its lines: the date column is a
    function of the minute (and of the six-month cut-off), the mode column of the mode, and in
    a directory most entries share both (``gmtime`` alone was a third of a line's cost)."""
    mtime = st.mtime
    old = mtime > now or now - mtime > _SIX_MONTHS
    if whens is None:
        when = _list_when(mtime, old)
    else:
        key = (int(mtime // 60), old)
        when = whens.get(key) or whens.setdefault(key, _list_when(mtime, old))
    if modes is None:
        perms = _list_mode(st.mode, st.is_dir)
    else:
        mkey = (st.mode, st.is_dir)
        perms = modes.get(mkey) or modes.setdefault(mkey, _list_mode(st.mode, st.is_dir))
    # Owner and group are not the real uid/gid (vsftpd hide_ids): they mean nothing to a virtual user.
    return f"{perms} {st.nlink:3d} ftp      ftp      {st.size:>12d} {when} {_safe_name(st.name)}"


def nlst_line(name: str) -> str:
    return _safe_name(name)


def mdtm_time(mtime: float) -> str:
    """``YYYYMMDDHHMMSS`` in UTC (RFC 3659 §2.3)."""
    t = time.gmtime(mtime)
    return (
        f"{t.tm_year:04d}{t.tm_mon:02d}{t.tm_mday:02d}{t.tm_hour:02d}{t.tm_min:02d}{t.tm_sec:02d}"
    )


def parse_time_val(value: str) -> float | None:
    """Parse ``YYYYMMDDHHMMSS[.sss]`` (UTC) into epoch seconds, or None if invalid."""
    main, dot, frac = value.partition(".")
    if len(main) != 14 or not main.isascii() or not main.isdigit():
        return None
    if dot and not (frac.isascii() and frac.isdigit()):
        return None
    try:
        tm = time.strptime(main, "%Y%m%d%H%M%S")
    except ValueError:
        return None
    return calendar.timegm(tm) + (float("0." + frac) if frac else 0.0)


# RFC 3659 §7.5.5: the perm fact's letters, from the user's permission letters (letter, fact).
_DIR_PERMS = (("e", "e"), ("l", "l"), ("w", "c"), ("m", "m"), ("d", "d"), ("f", "f"), ("d", "p"))
_FILE_PERMS = (("r", "r"), ("w", "w"), ("a", "a"), ("d", "d"), ("f", "f"))


def _perm_fact(st: FileStat, perms: str) -> str:
    """What this user may do with the entry (RFC 3659 §7.5.5)."""
    letters = _DIR_PERMS if st.is_dir else _FILE_PERMS
    return "".join(fact for letter, fact in letters if letter in perms)


def mlsx_facts(st: FileStat, facts: frozenset[str], perms: str, type_override: str = "") -> str:
    """The facts string ``type=file;size=1;...;`` for one entry (no name, no leading space)."""
    out = []
    if "type" in facts:
        out.append(f"type={type_override or ('dir' if st.is_dir else 'file')};")
    if "size" in facts:
        out.append(f"size={st.size};")
    if "modify" in facts:
        out.append(f"modify={mdtm_time(st.mtime)};")
    if "perm" in facts:
        out.append(f"perm={_perm_fact(st, perms)};")
    if "unique" in facts and st.unique:
        out.append(f"unique={st.unique};")
    if "unix.mode" in facts:
        out.append(f"unix.mode=0{st.mode & 0o7777:o};")
    return "".join(out)


def mlsd_line(st: FileStat, facts: frozenset[str], perms: str) -> str:
    """One MLSD line: facts, exactly one space, the name (RFC 3659 §7.2)."""
    return f"{mlsx_facts(st, facts, perms)} {_safe_name(st.name)}"


class ListingKind(enum.Enum):
    """The line format of a listing."""

    LIST = "LIST"  # ls -l lines (LIST, STAT of a directory)
    NLST = "NLST"  # names only
    MLSD = "MLSD"  # RFC 3659 facts and name


class LineFormat:
    """Formats a batch of entries as listing lines on the wire (CRLF, UTF-8 with non-UTF-8 names
    escaped, see ``names.py``). Pure, so the IO layer runs it in a file thread next to the ``scandir``
    that produced the batch (``ftpd.fs.listing_stream``); ``prefix`` indents the lines of a
    multi-line reply (STAT, RFC 959 §4.2)."""

    __slots__ = ("kind", "now", "facts", "perms", "prefix", "_whens", "_modes")

    def __init__(self, kind: ListingKind, now: float = 0.0, facts: frozenset[str] = DEFAULT_FACTS,
                 perms: str = "", prefix: str = "") -> None:
        self.kind = kind
        self.now = now
        self.facts = facts
        self.perms = perms
        self.prefix = prefix
        # list_line's caches; a listing's batches may be formatted in turn by different IO
        # threads, never at once (one read in flight per listing), and a race would only
        # compute an entry twice.
        self._whens: dict[tuple[int, bool], str] = {}
        self._modes: dict[tuple[int, bool], str] = {}

    def line(self, st: FileStat) -> str:
        if self.kind is ListingKind.LIST:
            return list_line(st, self.now, self._whens, self._modes)
        if self.kind is ListingKind.MLSD:
            return mlsd_line(st, self.facts, self.perms)
        return nlst_line(st.name)

    def __call__(self, entries: list[FileStat]) -> bytes:
        prefix, line = self.prefix, self.line
        text = "".join([f"{prefix}{line(e)}\r\n" for e in entries])
        if len(self._whens) > _CACHE_MAX:  # a listing holds one batch, whatever its size
            self._whens.clear()
        return names.encode(text)  # valid UTF-8 whatever the names on disk
