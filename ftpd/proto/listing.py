"""Directory listing formats: ``ls -l`` for LIST, names for NLST, facts for MLSD/MLST (RFC 3659 §7).

All times are UTC, consistent with MDTM (vsftpd and ProFTPD default to GMT; lftp assumes GMT for LIST).
A name containing CR or LF is shown with ``?`` in their place so that no name can inject a listing line.
"""

from __future__ import annotations

import calendar
import enum
import math
import stat as _stat
import time
from collections.abc import Callable

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
    "StatRow",
    "FactRow",
]

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_SIX_MONTHS = 182 * 86400  # vsftpd's cut-off between "HH:MM" and "YYYY" (ls uses ~6 months)
_CACHE_MAX = 2048  # strings each of the LIST column caches holds (they serve every listing)
_S_IFMT = 0o170000

# All a LIST line or an NLST name shows of an entry: (name, mode, nlink, size, mtime), ``mode``
# with its file type bits. A local listing makes these straight from each ``lstat``
# (``LineFormat.row_format``): building a ``FileStat`` per entry was a third of a LIST's CPU.
StatRow = tuple[str, int, int, int, float]
# All an MLSD line shows of an entry: (name, is_dir, size, mtime, mode, unique), a ``FileStat``'s
# fields; a local listing makes these from each ``lstat`` too (``LineFormat.fact_rows``).
FactRow = tuple[str, bool, int, float, int, str]

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


def _list_type(mode: int, is_dir: bool) -> int:
    """``mode`` given the file type bits it lacks (a backend that only knows permissions)."""
    return mode | (_stat.S_IFDIR if is_dir else _stat.S_IFREG)


def _list_mode(mode: int, is_dir: bool) -> str:
    if not _stat.S_IFMT(mode):
        mode = _list_type(mode, is_dir)
    return _stat.filemode(mode)


def list_line(st: FileStat, now: float) -> str:
    """One ``ls -l`` line (without CRLF): mode, links, owner, group, size, date, name.

    The plain form, for one entry (STAT of a file); a listing's lines come from ``LineFormat``,
    which makes the same ones faster (``tests/unit/test_listing_fast.py`` holds it to this)."""
    mtime = st.mtime
    old = mtime > now or now - mtime > _SIX_MONTHS
    when = _list_when(mtime, old)
    perms = _list_mode(st.mode, st.is_dir)
    # Owner and group are not the real uid/gid (vsftpd hide_ids): they mean nothing to a virtual user.
    return f"{perms} {st.nlink:3d} ftp      ftp      {st.size:>12d} {when} {_safe_name(st.name)}"


# A LIST line's columns before the size, and its date, cached for every listing: each is a pure
# function of its key, and a directory's entries mostly share both (``gmtime`` and ``filemode``
# were a third of a line's cost; a listing of its own would start cold each time). The date is a
# function of the minute, on either side of the six-month cut-off. Listings in several IO
# threads share them: a dict's get and set are atomic, and a race only computes a string twice.
_HEADS: dict[tuple[int, int], str] = {}  # (mode with type bits, nlink) -> "-rw-r--r--   1 ftp ..."
_RECENT_WHENS: dict[float, str] = {}  # mtime // 60 -> "Jun 15 12:00"
_OLD_WHENS: dict[float, str] = {}  # mtime // 60 -> "Jun 15  2023"


def _when(cache: dict[float, str], minute: float, mtime: float, old: bool) -> str:
    out = cache[minute] = _list_when(mtime, old)
    return out


def _head(key: tuple[int, int]) -> str:
    # Owner and group are not the real uid/gid (vsftpd hide_ids): they mean nothing to a virtual user.
    out = _HEADS[key] = f"{_stat.filemode(key[0])} {key[1]:3d} ftp      ftp      "
    return out


def _list_text(rows: list[StatRow], now: float, prefix: str) -> str:
    """``list_line`` of each row, each with ``prefix`` and CRLF."""
    heads, recent, old, six_months = _HEADS, _RECENT_WHENS, _OLD_WHENS, _SIX_MONTHS
    out: list[str] = []
    append = out.append
    for name, mode, nlink, size, mtime in rows:
        minute = mtime // 60
        if mtime > now or now - mtime > six_months:
            when = old.get(minute) or _when(old, minute, mtime, True)
        else:
            when = recent.get(minute) or _when(recent, minute, mtime, False)
        head = heads.get((mode, nlink)) or _head((mode, nlink))
        if "\r" in name or "\n" in name:  # _safe_name, without a call per line
            name = name.replace("\r", "?").replace("\n", "?")
        # str().rjust(12): list_line's "{:>12d}" of an int, at half the cost
        append(f"{prefix}{head}{str(size).rjust(12)} {when} {name}\r\n")
    for cache in (heads, recent, old):
        if len(cache) > _CACHE_MAX:
            cache.clear()
    return "".join(out)


def _nlst_text(names_: list[str], prefix: str) -> str:
    """Each name with ``prefix`` and CRLF, CR and LF in a name shown as ``?``."""
    text = "".join([f"{prefix}{name}\r\n" for name in names_])
    # One test per batch for a name with CR or LF (each line has one of each), not one per name.
    if text.count("\n") != len(names_) or text.count("\r") != len(names_):
        return "".join([f"{prefix}{_safe_name(name)}\r\n" for name in names_])
    return text


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


def _perm_fact(is_dir: bool, perms: str) -> str:
    """What this user may do with the entry (RFC 3659 §7.5.5)."""
    letters = _DIR_PERMS if is_dir else _FILE_PERMS
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
        out.append(f"perm={_perm_fact(st.is_dir, perms)};")
    if "unique" in facts and st.unique:
        out.append(f"unique={st.unique};")
    if "unix.mode" in facts:
        out.append(f"unix.mode=0{st.mode & 0o7777:o};")
    return "".join(out)


def mlsd_line(st: FileStat, facts: frozenset[str], perms: str) -> str:
    """One MLSD line: facts, exactly one space, the name (RFC 3659 §7.2).

    The plain form; a listing's lines come from ``LineFormat``, which makes the same ones faster
    (``tests/unit/test_listing_fast.py`` holds it to this)."""
    return f"{mlsx_facts(st, facts, perms)} {_safe_name(st.name)}"


# An MLSD line's pieces, cached for every listing as the LIST columns are. ``modify`` is a
# minute's YYYYMMDDHHMM plus the seconds: ``gmtime`` and six fields formatted were a third of a
# line's cost. The facts a listing shows are chosen once per batch, not tested per line.
_MODIFY_MINUTES: dict[int, str] = {}  # floor(mtime) // 60 -> "YYYYMMDDHHMM"
_UNIX_MODES: dict[int, str] = {}  # mode -> "unix.mode=0644;"
# (facts, perms) -> type and perm of a file and of a directory ("" when not chosen), then
# whether size, modify, unique and unix.mode are
_Selection = tuple[str, str, str, str, bool, bool, bool, bool]
_SELECTIONS: dict[tuple[frozenset[str], str], _Selection] = {}
_SECONDS = tuple(f"{i:02d}" for i in range(60))


def _modify(minute: int, second: int, mtime: float) -> str:
    """``mdtm_time(mtime)``, its minute cached for the lines after it (``minute``, ``second``:
    ``divmod(floor(mtime), 60)``). Not under a zone whose ``gmtime`` counts leap seconds
    (``right/UTC``): there its seconds are not POSIX time's, and a minute's prefix holds for
    no other second."""
    out = mdtm_time(mtime)
    if out[-2:] == _SECONDS[second]:
        _MODIFY_MINUTES[minute] = out[:-2]
    return out


def _unix_mode(mode: int) -> str:
    out = _UNIX_MODES[mode] = f"unix.mode=0{mode & 0o7777:o};"
    return out


def _selection(facts: frozenset[str], perms: str) -> _Selection:
    out = _SELECTIONS[facts, perms] = (
        "type=file;" if "type" in facts else "",
        "type=dir;" if "type" in facts else "",
        f"perm={_perm_fact(False, perms)};" if "perm" in facts else "",
        f"perm={_perm_fact(True, perms)};" if "perm" in facts else "",
        "size" in facts,
        "modify" in facts,
        "unique" in facts,
        "unix.mode" in facts,
    )
    return out


def _mlsd_text(rows: list[FactRow], facts: frozenset[str], perms: str, prefix: str) -> str:
    """``mlsd_line`` of each row, each with ``prefix`` and CRLF."""
    selection = _SELECTIONS.get((facts, perms)) or _selection(facts, perms)
    file_type, dir_type, file_perm, dir_perm = selection[:4]
    show_size, show_modify, show_unique, show_mode = selection[4:]
    minutes, seconds, unix_modes, floor = _MODIFY_MINUTES, _SECONDS, _UNIX_MODES, math.floor
    size_fact = modify_fact = unique_fact = mode_fact = ""  # each stays "" unless chosen
    out: list[str] = []
    append = out.append
    for name, is_dir, size, mtime, mode, unique in rows:
        if show_size:
            size_fact = f"size={size};"
        if show_modify:
            # gmtime's floor, in ints: exact for any float (mtime % 60 is not, below 0)
            minute, second = divmod(floor(mtime), 60)
            stamp = minutes.get(minute)
            if stamp:
                modify_fact = f"modify={stamp}{seconds[second]};"
            else:
                modify_fact = f"modify={_modify(minute, second, mtime)};"
        if show_unique:
            unique_fact = f"unique={unique};" if unique else ""
        if show_mode:
            mode_fact = unix_modes.get(mode) or _unix_mode(mode)
        if "\r" in name or "\n" in name:  # _safe_name, without a call per line
            name = name.replace("\r", "?").replace("\n", "?")
        if is_dir:
            kind, perm = dir_type, dir_perm
        else:
            kind, perm = file_type, file_perm
        append(f"{prefix}{kind}{size_fact}{modify_fact}{perm}{unique_fact}{mode_fact} {name}\r\n")
    for cache in (minutes, unix_modes):
        if len(cache) > _CACHE_MAX:
            cache.clear()
    if len(_SELECTIONS) > _CACHE_MAX:
        _SELECTIONS.clear()
    return "".join(out)


class ListingKind(enum.Enum):
    """The line format of a listing."""

    LIST = "LIST"  # ls -l lines (LIST, STAT of a directory)
    NLST = "NLST"  # names only
    MLSD = "MLSD"  # RFC 3659 facts and name


class LineFormat:
    """Formats a batch of entries as listing lines on the wire (CRLF, UTF-8 with non-UTF-8 names
    escaped, see ``names.py``). Pure, so the IO layer runs it in a file thread next to the ``scandir``
    that produced the batch (``ftpd.fs.listing_stream``); ``prefix`` indents the lines of a
    multi-line reply (STAT, RFC 959 §4.2) and has no CR or LF."""

    __slots__ = ("kind", "now", "facts", "perms", "prefix")

    def __init__(self, kind: ListingKind, now: float = 0.0, facts: frozenset[str] = DEFAULT_FACTS,
                 perms: str = "", prefix: str = "") -> None:
        self.kind = kind
        self.now = now
        self.facts = facts
        self.perms = perms
        self.prefix = prefix

    def line(self, st: FileStat) -> str:
        if self.kind is ListingKind.LIST:
            return list_line(st, self.now)
        if self.kind is ListingKind.MLSD:
            return mlsd_line(st, self.facts, self.perms)
        return nlst_line(st.name)

    def __call__(self, entries: list[FileStat]) -> bytes:
        kind = self.kind
        if kind is ListingKind.LIST:
            rows = [
                (e.name, e.mode if e.mode & _S_IFMT else _list_type(e.mode, e.is_dir),
                 e.nlink, e.size, e.mtime)
                for e in entries
            ]  # fmt: skip
            return self.rows(rows)
        if kind is ListingKind.NLST:
            return names.encode(_nlst_text([e.name for e in entries], self.prefix))
        return self.mlsd_rows(
            [(e.name, e.is_dir, e.size, e.mtime, e.mode, e.unique) for e in entries]
        )

    @property
    def fact_rows(self) -> bool:
        """Whether ``row_format`` takes ``FactRow`` (MLSD) rather than ``StatRow`` rows."""
        return self.kind is ListingKind.MLSD

    def row_format(self) -> Callable[[list[StatRow]], bytes] | Callable[[list[FactRow]], bytes]:
        """This format for a batch of rows rather than ``FileStat`` entries (the same bytes):
        ``StatRow`` for LIST and NLST, ``FactRow`` for MLSD (see ``fact_rows``)."""
        return self.mlsd_rows if self.kind is ListingKind.MLSD else self.rows

    def mlsd_rows(self, rows: list[FactRow]) -> bytes:
        """A batch of MLSD lines from rows (see ``row_format``)."""
        text = _mlsd_text(rows, self.facts, self.perms, self.prefix)
        return names.encode(text)  # valid UTF-8 whatever the names on disk

    def rows(self, rows: list[StatRow]) -> bytes:
        """A batch of LIST or NLST lines from rows (see ``row_format``)."""
        if self.kind is ListingKind.LIST:
            return names.encode(_list_text(rows, self.now, self.prefix))
        return names.encode(_nlst_text([r[0] for r in rows], self.prefix))
