"""The fast listing paths make the plain formatting's bytes, whatever the entry.

A LIST, NLST or MLSD of a local directory never builds a ``FileStat``: ``LocalListing`` hands the
format plain rows (``LineFormat.row_format``), whose lines come from caches shared by every
listing (the columns before the size, the date per minute; MLSD's modify per minute, unix.mode
per mode, the chosen facts and perm per batch). Other backends' ``FileStat`` entries go through
the same loops. Each is held here to a deliberately naive line (a ``gmtime`` and a ``filemode``
per ``ls -l`` line; each MLSD fact tested and formatted per line), for random names (CR, LF,
non-UTF-8 bytes, ``%``), modes, sizes, link counts, inodes, times around the six-month cut-off
and in the future, every subset of the MLSD facts and any permission letters, and for a real
directory read through ``LocalFS.open_listing``.
"""

from __future__ import annotations

import asyncio
import os
import stat
import time
from collections.abc import Iterator
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.env import missing

from ftpd.fs import listing_stream
from ftpd.fs.base import FileStat, PathEscapeError
from ftpd.fs.local import TEMP_PREFIX, TEMP_SUFFIX, LocalFS, _file_stat
from ftpd.proto import listing, names
from ftpd.proto.listing import ALL_FACTS, DEFAULT_FACTS, LineFormat, ListingKind, mlsd_line

NOW = 1_780_000_000.0
SIX_MONTHS = 182 * 86400
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def plain_line(e: FileStat, now: float) -> str:
    """The ``ls -l`` line as the straightforward code makes it: nothing cached, nothing skipped."""
    t = time.gmtime(e.mtime)
    if e.mtime > now or now - e.mtime > SIX_MONTHS:
        when = f"{MONTHS[t.tm_mon - 1]} {t.tm_mday:2d}  {t.tm_year}"
    else:
        when = f"{MONTHS[t.tm_mon - 1]} {t.tm_mday:2d} {t.tm_hour:02d}:{t.tm_min:02d}"
    mode = e.mode
    if not stat.S_IFMT(mode):
        mode |= stat.S_IFDIR if e.is_dir else stat.S_IFREG
    name = e.name.replace("\r", "?").replace("\n", "?")
    return f"{stat.filemode(mode)} {e.nlink:3d} ftp      ftp      {e.size:>12d} {when} {name}"


def plain_list(entries: list[FileStat], now: float, prefix: str = "") -> bytes:
    return names.encode("".join(f"{prefix}{plain_line(e, now)}\r\n" for e in entries))


def plain_nlst(entries: list[FileStat]) -> bytes:
    return names.encode(
        "".join(e.name.replace("\r", "?").replace("\n", "?") + "\r\n" for e in entries)
    )


# RFC 3659 §7.5.5: the perm fact's letters, each with the user's letter that grants it
DIR_PERM = {"e": "e", "l": "l", "c": "w", "m": "m", "d": "d", "f": "f", "p": "d"}
FILE_PERM = {"r": "r", "w": "w", "a": "a", "d": "d", "f": "f"}


def plain_mlsd_line(e: FileStat, facts: frozenset[str], perms: str, prefix: str = "") -> str:
    """The MLSD line as the straightforward code makes it: each fact tested and formatted."""
    out = []
    for fact in ("type", "size", "modify", "perm", "unique", "unix.mode"):
        if fact not in facts:
            continue
        if fact == "type":
            out.append("type=dir;" if e.is_dir else "type=file;")
        elif fact == "size":
            out.append(f"size={e.size};")
        elif fact == "modify":
            out.append("modify={:04d}{:02d}{:02d}{:02d}{:02d}{:02d};".format(*time.gmtime(e.mtime)))
        elif fact == "perm":
            letters = DIR_PERM if e.is_dir else FILE_PERM
            out.append("perm=" + "".join(f for f, u in letters.items() if u in perms) + ";")
        elif fact == "unique":
            if e.unique:
                out.append(f"unique={e.unique};")
        else:
            out.append("unix.mode=0" + oct(e.mode & 0o7777)[2:] + ";")
    name = e.name.replace("\r", "?").replace("\n", "?")
    return f"{prefix}{''.join(out)} {name}"


def plain_mlsd(
    entries: list[FileStat], facts: frozenset[str], perms: str, prefix: str = ""
) -> bytes:
    return names.encode("".join(plain_mlsd_line(e, facts, perms, prefix) + "\r\n" for e in entries))


def fact_rows_of(entries: list[FileStat]) -> list[tuple[str, bool, int, float, int, str]]:
    return [(e.name, e.is_dir, e.size, e.mtime, e.mode, e.unique) for e in entries]


def rows_of(entries: list[FileStat]) -> list[tuple[str, int, int, int, float]]:
    """What a local listing reads: the mode always has its file type bits."""
    out = []
    for e in entries:
        mode = e.mode
        if not stat.S_IFMT(mode):
            mode |= stat.S_IFDIR if e.is_dir else stat.S_IFREG
        out.append((e.name, mode, e.nlink, e.size, e.mtime))
    return out


# -- random entries ----------------------------------------------------------------------------

_names = st.one_of(
    st.text(min_size=1, max_size=12),
    st.text(alphabet="ab\r\n%sd{}\ufffd8F ", min_size=1, max_size=8),
    st.binary(min_size=1, max_size=8).map(lambda b: b.decode("utf-8", "surrogateescape")),
)
_mtimes = st.one_of(
    # both sides of the cut-off and of "now", within one minute and across
    st.sampled_from([-SIX_MONTHS + d for d in (-61, -60, -30.5, -1, -0.5, 0, 0.5, 1, 59, 60)]),
    st.sampled_from([d for d in (-59.5, -1, -0.5, 0.0, 0.5, 1, 30, 61, 86400 * 400)]),
    st.floats(-2e9, 2e9, allow_nan=False),
).map(lambda d: NOW + d)
_entries = st.lists(
    st.builds(
        FileStat,
        name=_names,
        is_dir=st.booleans(),
        size=st.one_of(st.integers(0, 10**6), st.integers(0, 2**64)),
        mtime=st.one_of(_mtimes, st.integers(0, 2**33).map(float)),
        mode=st.one_of(
            st.sampled_from([0o100644, 0o40755, 0o120777, 0o10600, 0o644, 0o755, 0o4755]),
            st.integers(0, 0o177777),
        ),
        nlink=st.integers(0, 2**32),
    ),
    max_size=30,
)
_nows = st.one_of(st.just(NOW), st.floats(0, 2 * NOW, allow_nan=False))


@settings(max_examples=400, deadline=None)
@given(entries=_entries, now=_nows, other_now=_nows, prefix=st.sampled_from(["", " ", "%s"]))
def test_list_is_the_plain_formatting(
    entries: list[FileStat], now: float, other_now: float, prefix: str
) -> None:
    want = plain_list(entries, now, prefix)
    fmt = LineFormat(ListingKind.LIST, now, prefix=prefix)
    assert fmt(entries) == want
    assert fmt.rows(rows_of(entries)) == want
    assert fmt(entries) == want  # a second batch, the caches warm
    # The caches are shared by listings made at other times: an entry old for one, recent for
    # the other, in the same minute.
    other = LineFormat(ListingKind.LIST, other_now, prefix=prefix)
    assert other.rows(rows_of(entries)) == plain_list(entries, other_now, prefix)
    assert fmt(entries) == want


@settings(max_examples=200, deadline=None)
@given(entries=_entries)
def test_nlst_and_mlsd_are_the_plain_formatting(entries: list[FileStat]) -> None:
    fmt = LineFormat(ListingKind.NLST)
    assert fmt(entries) == plain_nlst(entries)
    assert fmt.rows(rows_of(entries)) == plain_nlst(entries)
    for facts, perms in ((DEFAULT_FACTS, "elradfmwMT"), (frozenset({"type", "size"}), "")):
        assert LineFormat(ListingKind.MLSD, facts=facts, perms=perms)(entries) == plain_mlsd(
            entries, facts, perms
        )


# -- MLSD -------------------------------------------------------------------------------------

_facts = st.sets(st.sampled_from(ALL_FACTS)).map(frozenset)
_perms = st.one_of(
    st.sampled_from(["", "elr", "elradfmwMT", "elrdfmwMT"]), st.text("elradfmwMTcpx")
)
_mlsd_entries = st.lists(
    st.builds(
        FileStat,
        name=_names,
        is_dir=st.booleans(),
        size=st.one_of(st.integers(0, 10**6), st.integers(0, 2**64)),
        mtime=st.one_of(
            _mtimes,
            st.integers(0, 2**33).map(float),
            st.integers(0, 2**33),  # another backend's whole seconds
            st.sampled_from([-0.5, -1e-20, -60.0, -61.25, 0.0, 59.999999, 60.0, 1e-300]),
        ),
        mode=st.one_of(
            st.sampled_from([0o100644, 0o40755, 0o120777, 0o10600, 0o644, 0o755, 0o4755]),
            st.integers(0, 0o177777),
        ),
        nlink=st.integers(0, 2**32),
        unique=st.one_of(st.just(""), st.text(max_size=6), st.integers(0, 2**64).map(hex)),
    ),
    max_size=30,
)


@settings(max_examples=500, deadline=None)
@given(
    entries=_mlsd_entries,
    facts=_facts,
    perms=_perms,
    other_facts=_facts,
    prefix=st.sampled_from(["", " ", "%s"]),
)
def test_mlsd_is_the_plain_formatting(
    entries: list[FileStat],
    facts: frozenset[str],
    perms: str,
    other_facts: frozenset[str],
    prefix: str,
) -> None:
    want = plain_mlsd(entries, facts, perms, prefix)
    fmt = LineFormat(ListingKind.MLSD, facts=facts, perms=perms, prefix=prefix)
    assert fmt(entries) == want
    assert fmt.row_format()(fact_rows_of(entries)) == want  # type: ignore[arg-type]
    assert fmt(entries) == want  # a second batch, the caches warm
    # Another user's choice of facts and letters, between two batches of this one's.
    other = LineFormat(ListingKind.MLSD, facts=other_facts, perms=perms[::-1])
    assert other(entries) == plain_mlsd(entries, other_facts, perms[::-1])
    assert fmt(entries) == want
    for e in entries:  # the plain per-entry form (MLST uses its facts)
        assert mlsd_line(e, facts, perms) == plain_mlsd_line(e, facts, perms)


_EDGE_ENTRIES = [
    FileStat("a\r\nb", False, 0, NOW, 0o100644, unique="1g2"),
    FileStat("caf\udce9.txt", False, 1, NOW - 0.5, 0o100640, unique=""),
    FileStat("%s%d%%", True, 4096, NOW - 400 * 86400, 0o41777, 2, unique="ffg0"),
    FileStat("no type bits", True, 2**63, 0.0, 0o2755, 0),
    FileStat("minute's end", False, 5, NOW - NOW % 60 + 59.999, 0o100600, 1, unique="x"),
    FileStat("next minute", False, 6, NOW - NOW % 60 + 60, 0o100600, 1, unique="y"),
    FileStat("before 1970", False, 7, -0.25, 0o120777, 1, unique="z"),
    FileStat("dir without x", True, 0, NOW, 0o40000),
    FileStat("x", False, 0, 2**33, 0o107777),
]
_ALL_SUBSETS = [frozenset(c) for n in range(len(ALL_FACTS) + 1) for c in combinations(ALL_FACTS, n)]


@pytest.mark.parametrize("facts", _ALL_SUBSETS, ids=lambda f: ",".join(sorted(f)) or "none")
def test_mlsd_every_subset_of_facts(facts: frozenset[str]) -> None:
    for perms in ("", "elr", "elradfmwMT"):
        want = plain_mlsd(_EDGE_ENTRIES, facts, perms)
        fmt = LineFormat(ListingKind.MLSD, facts=facts, perms=perms)
        assert fmt(_EDGE_ENTRIES) == want
        assert fmt.mlsd_rows(fact_rows_of(_EDGE_ENTRIES)) == want
    if not facts:  # RFC 3659 §7.2: no facts, still the one space before the name
        assert LineFormat(ListingKind.MLSD, facts=facts)(_EDGE_ENTRIES[-1:]) == b" x\r\n"


def test_mlsd_modify_under_a_leap_second_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under ``right/UTC`` gmtime counts leap seconds: a minute's prefix and the seconds of
    POSIX time do not make its time, so nothing may be cached (MDTM shows gmtime's too)."""
    if not os.path.exists("/usr/share/zoneinfo/right/UTC"):
        missing("no right/UTC zone (Debian: tzdata, which .ci/run installs)")
    entries = [FileStat(f"f{i}", False, i, NOW + i * 7.5, 0o100644) for i in range(20)]
    monkeypatch.setattr(listing, "_MODIFY_MINUTES", {})  # the cache is the zone's of its start
    monkeypatch.setenv("TZ", "right/UTC")
    time.tzset()
    try:
        assert time.gmtime(NOW).tm_sec != NOW % 60  # the zone does count them
        fmt = LineFormat(ListingKind.MLSD, facts=frozenset({"modify"}))
        for _ in range(2):
            assert fmt(entries) == plain_mlsd(entries, fmt.facts, "")
    finally:
        monkeypatch.undo()
        time.tzset()


# -- the rows a local listing reads, for random lstat results ----------------------------------


class _FakeEntry:
    __slots__ = ("name", "_stat")

    def __init__(self, name: str, s: os.stat_result) -> None:
        self.name, self._stat = name, s

    def stat(self, follow_symlinks: bool = True) -> os.stat_result:
        assert not follow_symlinks
        return self._stat


class _FakeScandir:
    def __init__(self, entries: list[_FakeEntry]) -> None:
        self._it: Iterator[_FakeEntry] = iter(entries)

    def __iter__(self) -> _FakeScandir:
        return self

    def __next__(self) -> _FakeEntry:
        return next(self._it)

    def close(self) -> None:
        pass


def _stat_result(
    mode: int, ino: int, dev: int, nlink: int, size: int, mtime: float
) -> os.stat_result:
    return os.stat_result((mode, ino, dev, nlink, 0, 0, size, 0, int(mtime), 0, 0.0, mtime, 0.0))


_stats = st.builds(
    _stat_result,
    mode=st.one_of(
        st.sampled_from([0o100644, 0o40755, 0o120777, 0o10600, 0o140755, 0o20666, 0o60660]),
        st.integers(0o10000, 0o177777),  # an lstat's mode has its type bits
    ),
    ino=st.integers(0, 2**64 - 1),
    dev=st.integers(0, 2**64 - 1),
    nlink=st.integers(0, 2**32),
    size=st.integers(0, 2**63),
    mtime=_mtimes,
)
# A symlink's target: its own stat, dangling (the link's lstat is shown), or outside the home
_targets = st.one_of(_stats, st.sampled_from(["dangling", "escape"]))
_dir = st.lists(
    st.tuples(
        st.one_of(_names, st.just(TEMP_PREFIX + "x" + TEMP_SUFFIX), st.just(TEMP_PREFIX)),
        _stats,
        _targets,
    ),
    max_size=25,
    unique_by=lambda entry: entry[0],  # a directory's names
)


def _read_fake(listed: list[tuple[str, os.stat_result, Any]], fmt: Any, batch: int) -> bytes:
    targets = {name: target for name, _, target in listed}

    def link_stat(real: str, name: str, vpath: str) -> os.stat_result:
        target = targets[name]
        if target == "escape":
            raise PathEscapeError(vpath)
        if target == "dangling":
            raise FileNotFoundError(name)
        assert isinstance(target, os.stat_result)
        return target

    class Listing(listing_stream.LocalListing):
        def _open(self) -> None:
            self._fd, self._real = -1, "/home/d"
            self._it = _FakeScandir([_FakeEntry(n, s) for n, s, _ in listed])

    lfs = listing_stream.LocalDir(lambda v: (-1, "/home/d"), link_stat, _file_stat, None)  # type: ignore[arg-type]
    saved, listing_stream.BATCH = listing_stream.BATCH, batch
    try:
        stream = Listing(lfs, "/d", fmt)
        out = []
        while data := stream._read_sync():
            out.append(data)
        return b"".join(out)
    finally:
        listing_stream.BATCH = saved


def _plain_entries(listed: list[tuple[str, os.stat_result, Any]], batch: int) -> list[FileStat]:
    """What the listing shows, made straight from the stat results (the unique fact is st_dev,
    "g", st_ino in hex), in its order: by name when it fits in one batch."""
    out = []
    for name, s, target in listed:
        if name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX):
            continue
        if stat.S_ISLNK(s.st_mode):
            if target == "escape":
                continue
            if target != "dangling":
                s = target
        unique = f"{s.st_dev:x}g{s.st_ino:x}"
        is_dir = stat.S_ISDIR(s.st_mode)
        out.append(
            FileStat(name, is_dir, s.st_size, s.st_mtime, s.st_mode, s.st_nlink, unique=unique)
        )
    return sorted(out, key=lambda e: e.name) if len(out) <= batch else out


@settings(max_examples=300, deadline=None)
@given(listed=_dir, facts=_facts, perms=_perms, batch=st.sampled_from([listing_stream.BATCH, 3]))
def test_local_rows_are_the_plain_formatting(
    listed: list[tuple[str, os.stat_result, Any]], facts: frozenset[str], perms: str, batch: int
) -> None:
    entries = _plain_entries(listed, batch)
    mlsd = LineFormat(ListingKind.MLSD, facts=facts, perms=perms)
    assert mlsd.fact_rows
    assert _read_fake(listed, mlsd, batch) == plain_mlsd(entries, facts, perms)
    assert _read_fake(listed, LineFormat(ListingKind.LIST, NOW), batch) == plain_list(entries, NOW)
    assert _read_fake(listed, LineFormat(ListingKind.NLST), batch) == plain_nlst(entries)
    # A format without rows gets the FileStat entries: the same ones
    assert _read_fake(listed, lambda es: plain_mlsd(es, facts, perms), batch) == plain_mlsd(
        entries, facts, perms
    )


# The date column's cache is per minute; the cut-off (and "now") can fall inside a minute.
_CUT = NOW - SIX_MONTHS  # 40 s into its minute, as NOW is
_EDGES = [  # (mtime, shown as): all in the cut-off's minute, or all in NOW's
    (_CUT - 0.5, "old"),
    (_CUT + 0.5, "recent"),
    (_CUT, "recent"),
    (_CUT - 40, "old"),
    (_CUT + 19.5, "recent"),
    (NOW, "recent"),
    (NOW + 0.5, "future"),
    (NOW - 0.5, "recent"),
    (NOW + 19, "future"),
    (NOW - 40, "recent"),
]


@pytest.mark.parametrize("order", [1, -1])
def test_cut_off_and_future_inside_one_minute(order: int) -> None:
    assert NOW % 60 == 40 and _CUT // 60 == (_CUT - 40) // 60 == (_CUT + 19.5) // 60
    entries = [
        FileStat(f"{kind}-{i}", False, i, mtime, 0o100644) for i, (mtime, kind) in enumerate(_EDGES)
    ][::order]
    got = LineFormat(ListingKind.LIST, NOW)(entries)
    assert got == plain_list(entries, NOW)
    for line in got.decode().splitlines():
        when, name = line.split()[7:]
        assert (":" in when) == name.startswith("recent"), line


@pytest.mark.parametrize(
    "entry",
    [
        FileStat("a\r\nb", False, 0, NOW, 0o100644),
        FileStat("\r\n226 Transfer complete.", False, 0, NOW, 0o100644),
        FileStat("caf\udce9.txt", False, 1, NOW, 0o100644),
        FileStat("lit\ufffdE9", False, 1, NOW, 0o100644),
        FileStat("%s%d%%", True, 4096, NOW - 400 * 86400, 0o41777, 2**31),
        FileStat("no type bits", True, 2**63, 0.0, 0o2755, 0),
        FileStat("setuid", False, 1, 2**33, 0o104755, 1),
        FileStat("pipe", False, 0, NOW - 59.9, 0o10600, 1),
        FileStat("neg", False, -1, -86400.5, 0o100000, 1),
    ],
    ids=lambda e: repr(e.name),
)
def test_list_edge_entries(entry: FileStat) -> None:
    for prefix in ("", " "):
        fmt = LineFormat(ListingKind.LIST, NOW, prefix=prefix)
        assert fmt([entry]) == plain_list([entry], NOW, prefix)
        assert fmt.rows(rows_of([entry])) == plain_list([entry], NOW, prefix)
    assert LineFormat(ListingKind.NLST)([entry]) == plain_nlst([entry])


# -- a real directory --------------------------------------------------------------------------


def _populate(home: Path, outside: Path) -> None:
    d = home / "d"
    d.mkdir()
    files = {
        "plain.txt": 10,
        "a\r\nb": 1,
        "c\nd": 2,
        "e\rf": 3,
        "%s%d": 4,
        "lit\ufffdE9": 5,
        " lead": 6,
        ".hidden": 7,
        f"{TEMP_PREFIX}notatemp.txt": 8,
    }
    for name, size in files.items():
        (d / name).write_bytes(b"x" * size)
    os.close(os.open(os.fsencode(d) + b"/caf\xe9.txt", os.O_CREAT | os.O_WRONLY, 0o640))
    (d / f"{TEMP_PREFIX}0123abcd{TEMP_SUFFIX}").write_bytes(b"an upload in progress")
    (d / "sub").mkdir()
    (d / "sticky").mkdir(mode=0o1777)
    os.chmod(d / "sticky", 0o1777)
    os.chmod(d / "plain.txt", 0o4751)
    os.mkfifo(d / "fifo")
    os.symlink("plain.txt", d / "link-in")
    os.symlink("sub", d / "link-dir")
    os.symlink("missing", d / "link-dangling")
    os.symlink("loop", d / "loop")
    os.symlink(str(outside), d / "link-out")
    os.symlink("../../", d / "link-up-out")
    for i, p in enumerate(sorted(d.iterdir())):
        if not p.is_symlink():
            t = NOW + (-400 * 86400, -3600, 3600 * 24 * 30, -SIX_MONTHS - 1)[i % 4] + i * 7.25
            os.utime(p, (t, t))


async def _read_all(fs: LocalFS, vpath: str, fmt: LineFormat) -> bytes:
    stream = await fs.open_listing(vpath, fmt)
    out = []
    try:
        while data := await stream.read():
            out.append(data)
    finally:
        await stream.close()
    return b"".join(out)


@pytest.mark.parametrize("batch", [listing_stream.BATCH, 4])
async def test_local_listing_is_the_plain_formatting(
    tmp_path: Path, batch: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, outside = tmp_path / "home", tmp_path / "outside"
    home.mkdir()
    outside.mkdir()
    _populate(home, outside)
    monkeypatch.setattr(listing_stream, "BATCH", batch)  # 4: sent unsorted, several batches
    fs = LocalFS(str(home), None)
    entries = await fs.list("/d")  # FileStat entries, sorted
    names_ = [e.name for e in entries]
    assert "link-out" not in names_ and "link-up-out" not in names_
    assert f"{TEMP_PREFIX}0123abcd{TEMP_SUFFIX}" not in names_
    assert {"caf\udce9.txt", "a\r\nb", "link-in", "link-dangling", "loop"} <= set(names_)
    assert len(entries) == 17

    def same(got: bytes, want: bytes) -> None:
        if batch < len(entries):  # the directory's own order: compare the lines
            assert sorted(got.split(b"\r\n")) == sorted(want.split(b"\r\n"))
        else:
            assert got == want

    for now in (NOW, time.time()):
        for prefix in ("", " "):
            fmt = LineFormat(ListingKind.LIST, now, prefix=prefix)
            assert fmt.row_format() is not None  # the local listing takes the row path
            same(await _read_all(fs, "/d", fmt), plain_list(entries, now, prefix))
    same(await _read_all(fs, "/d", LineFormat(ListingKind.NLST)), plain_nlst(entries))
    for facts, perms in (
        (DEFAULT_FACTS, "elr"),
        (DEFAULT_FACTS, "elradfmwMT"),
        (frozenset({"modify", "unique", "type"}), "elr"),
        (frozenset(), ""),
    ):
        mlsd = LineFormat(ListingKind.MLSD, facts=facts, perms=perms)
        assert mlsd.row_format() is not None and mlsd.fact_rows  # the local rows with unique
        same(await _read_all(fs, "/d", mlsd), plain_mlsd(entries, facts, perms))
    real = os.stat(home / "d" / "sub")
    mlsd = LineFormat(ListingKind.MLSD, facts=frozenset({"type", "unique"}))
    assert f"type=dir;unique={real.st_dev:x}g{real.st_ino:x}; sub\r\n".encode() in await _read_all(
        fs, "/d", mlsd
    )
    # The entries the rows came from are the lstat's (the target's for a link inside the home).
    by_name = {e.name: e for e in entries}
    real = os.stat(home / "d" / "plain.txt")
    assert by_name["link-in"].size == real.st_size and by_name["link-in"].mode == real.st_mode
    assert stat.S_ISLNK(by_name["link-dangling"].mode) and stat.S_ISFIFO(by_name["fifo"].mode)


def test_row_format_per_kind() -> None:
    for kind in ListingKind:
        fmt = LineFormat(kind)
        assert fmt.row_format() is not None
        assert fmt.fact_rows is (kind is ListingKind.MLSD)


async def test_a_format_without_rows_gets_file_stats(tmp_path: Path) -> None:
    (tmp_path / "x").write_bytes(b"abc")
    seen: list[list[FileStat]] = []

    def fmt(entries: list[FileStat]) -> bytes:
        seen.append(entries)
        return b"ok"

    fs = LocalFS(str(tmp_path), None)
    stream = await fs.open_listing("/", fmt)
    assert await stream.read() == b"ok"
    await stream.close()
    (entry,) = seen[0]
    assert isinstance(entry, FileStat) and entry.size == 3
    real = os.stat(tmp_path / "x")
    assert entry.unique == f"{real.st_dev:x}g{real.st_ino:x}"


def test_reading_rows_leaves_the_listing_closed(tmp_path: Path) -> None:
    (tmp_path / "x").write_bytes(b"")

    async def main() -> None:
        fs = LocalFS(str(tmp_path), None)
        stream = await fs.open_listing("/", LineFormat(ListingKind.LIST, NOW))
        assert (await stream.read()).endswith(b" x\r\n")
        assert await stream.read() == b""
        assert stream._fd == -1 and stream._it is None  # type: ignore[attr-defined]

    asyncio.run(main())
