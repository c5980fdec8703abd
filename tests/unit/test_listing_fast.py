"""The fast listing paths make the plain formatting's bytes, whatever the entry.

A LIST or NLST of a local directory never builds a ``FileStat``: ``LocalListing`` hands the
format plain rows (``LineFormat.row_format``), whose lines come from caches shared by every
listing (the columns before the size, the date per minute). Other backends' ``FileStat`` entries
go through the same loop. Each is held here to a deliberately naive ``ls -l`` line (a ``gmtime``
and a ``filemode`` per line, an f-string), for random names (CR, LF, non-UTF-8 bytes, ``%``),
modes, sizes, link counts and times around the six-month cut-off and in the future, and for a
real directory read through ``LocalFS.open_listing``.
"""

from __future__ import annotations

import asyncio
import os
import stat
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ftpd.fs import listing_stream
from ftpd.fs.base import FileStat
from ftpd.fs.local import TEMP_PREFIX, TEMP_SUFFIX, LocalFS
from ftpd.proto import names
from ftpd.proto.listing import DEFAULT_FACTS, LineFormat, ListingKind, mlsd_line

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


def plain_mlsd(entries: list[FileStat], facts: frozenset[str], perms: str) -> bytes:
    return names.encode("".join(f"{mlsd_line(e, facts, perms)}\r\n" for e in entries))


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
    mlsd = LineFormat(ListingKind.MLSD, facts=DEFAULT_FACTS, perms="elr")
    assert mlsd.row_format() is None  # the unique fact: FileStat entries
    same(await _read_all(fs, "/d", mlsd), plain_mlsd(entries, DEFAULT_FACTS, "elr"))
    # The entries the rows came from are the lstat's (the target's for a link inside the home).
    by_name = {e.name: e for e in entries}
    real = os.stat(home / "d" / "plain.txt")
    assert by_name["link-in"].size == real.st_size and by_name["link-in"].mode == real.st_mode
    assert stat.S_ISLNK(by_name["link-dangling"].mode) and stat.S_ISFIFO(by_name["fifo"].mode)


def test_row_format_only_for_list_and_nlst() -> None:
    assert LineFormat(ListingKind.LIST).row_format() is not None
    assert LineFormat(ListingKind.NLST).row_format() is not None
    assert LineFormat(ListingKind.MLSD).row_format() is None


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
