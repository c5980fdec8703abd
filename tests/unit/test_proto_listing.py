"""Listing formats (LIST ``ls -l``, NLST, MLSD/MLST facts, MDTM), reply wire format, and the TYPE A
line-end converters."""

from __future__ import annotations

import calendar
import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ftpd.fs.base import FileStat
from ftpd.proto import names
from ftpd.proto.listing import (
    ALL_FACTS,
    DEFAULT_FACTS,
    LineFormat,
    ListingKind,
    list_line,
    mdtm_time,
    mlsd_line,
    mlsx_facts,
    nlst_line,
    parse_time_val,
)
from ftpd.proto.replies import Reply, sanitize
from ftpd.proto.textmode import FromNetwork, ToNetwork

NOW = calendar.timegm((2024, 6, 15, 12, 0, 0))
DAY = 86400
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

LS_RE = re.compile(
    r"^(?P<mode>[-dl][-rwxsStT]{9}) +(?P<links>\d+) +(?P<owner>\S+) +(?P<group>\S+) +"
    r"(?P<size>\d+) (?P<month>[A-Z][a-z]{2}) (?P<day>[ \d]\d) (?P<when>\d\d:\d\d| \d{4}) "
    r"(?P<name>.+)$"
)


def _file(
    name: str = "a.txt", size: int = 123, mtime: float = NOW - 3600, **kw: object
) -> FileStat:
    kw.setdefault("mode", 0o100644)
    return FileStat(name, False, size, mtime, **kw)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------- LIST
def test_list_line_recent_file() -> None:
    line = list_line(_file(), NOW)
    m = LS_RE.match(line)
    assert m, line
    assert m["mode"] == "-rw-r--r--" and m["size"] == "123" and m["name"] == "a.txt"
    assert (m["month"], m["day"], m["when"]) == ("Jun", "15", "11:00")


@pytest.mark.parametrize(
    ("age", "recent"),
    [
        (0, True),
        (60, True),
        (181 * DAY, True),
        (182 * DAY - 1, True),
        (182 * DAY + 1, False),
        (400 * DAY, False),
        (-60, False),
        (-365 * DAY, False),
    ],
)
def test_list_line_date_format(age: int, recent: bool) -> None:
    mtime = NOW - age
    m = LS_RE.match(list_line(_file(mtime=mtime), NOW))
    assert m
    t = time.gmtime(mtime)  # UTC, like MDTM
    assert m["month"] == MONTHS[t.tm_mon - 1] and int(m["day"]) == t.tm_mday
    if recent:
        assert m["when"] == f"{t.tm_hour:02d}:{t.tm_min:02d}"
    else:
        assert m["when"] == f" {t.tm_year}"  # "Mmm dd  YYYY": two spaces before the year


def test_list_line_single_digit_day_is_padded() -> None:
    mtime = calendar.timegm((2024, 6, 5, 8, 7, 0))
    assert " Jun  5 08:07 " in list_line(_file(mtime=mtime), NOW)


def test_list_line_directory_and_mode_bits() -> None:
    d = FileStat("sub", True, 4096, NOW, 0o755, 3)
    m = LS_RE.match(list_line(d, NOW))
    assert m and m["mode"] == "drwxr-xr-x" and m["links"] == "3"
    f = FileStat("x", False, 0, NOW, 0o600)  # no file type bits: a regular file
    assert list_line(f, NOW).startswith("-rw------- ")
    link = FileStat("l", False, 0, NOW, 0o120777)
    assert list_line(link, NOW).startswith("lrwxrwxrwx ")


def test_list_line_hides_ids_and_keeps_spaces_in_names() -> None:
    m = LS_RE.match(list_line(_file(" lead and trail "), NOW))
    assert m and m["owner"] == "ftp" and m["group"] == "ftp"
    assert m["name"] == " lead and trail "


def test_list_line_big_size() -> None:
    m = LS_RE.match(list_line(_file(size=2**40 + 3), NOW))
    assert m and int(m["size"]) == 2**40 + 3


@pytest.mark.parametrize("name", ["a\r\nb", "a\nb", "a\rb", "\r\n226 Transfer complete.\r\n"])
def test_names_with_cr_lf_are_sanitised(name: str) -> None:
    for out in (
        list_line(_file(name), NOW),
        nlst_line(name),
        mlsd_line(_file(name), DEFAULT_FACTS, "elr"),
    ):
        assert "\r" not in out and "\n" not in out
        assert out.endswith(name.replace("\r", "?").replace("\n", "?"))
    assert nlst_line("plain name") == "plain name"


# ---------------------------------------------------------------------------------- MLSx
FACT_RE = re.compile(r"^(?P<facts>(?:[a-z.]+=[^;= ]*;)+) (?P<name>.+)$")


def _facts(line: str) -> dict[str, str]:
    m = FACT_RE.match(line)
    assert m, line
    return dict(f.split("=", 1) for f in m["facts"].split(";") if f)


def test_mlsd_line_format() -> None:
    st_ = FileStat(
        "my file.txt", False, 42, calendar.timegm((2020, 1, 2, 3, 4, 5)), 0o100640, unique="801g2a"
    )
    line = mlsd_line(st_, DEFAULT_FACTS, "elradfmwMT")
    m = FACT_RE.match(line)
    assert m and m["name"] == "my file.txt"  # exactly one space, then the name (RFC 3659 §7.2)
    assert _facts(line) == {
        "type": "file",
        "size": "42",
        "modify": "20200102030405",
        "perm": "rwadf",
        "unique": "801g2a",
        "unix.mode": "0640",
    }
    assert list(_facts(line)) == [f for f in ALL_FACTS]  # a stable order


def test_mlsd_selected_facts_and_no_unique() -> None:
    st_ = FileStat("d", True, 0, 0.0, 0o40700)
    assert mlsx_facts(st_, frozenset({"type"}), "") == "type=dir;"
    assert mlsx_facts(st_, frozenset(), "") == ""
    assert "unique" not in _facts(mlsd_line(st_, DEFAULT_FACTS, "e"))
    assert mlsx_facts(st_, frozenset({"type"}), "", type_override="cdir") == "type=cdir;"
    assert mlsd_line(st_, frozenset({"unix.mode"}), "") == "unix.mode=0700; d"


@pytest.mark.parametrize(
    ("is_dir", "perms", "fact"),
    [
        (False, "elradfmwMT", "rwadf"),
        (False, "elr", "r"),
        (False, "", ""),
        (False, "w", "w"),
        (False, "a", "a"),
        (False, "d", "d"),
        (False, "f", "f"),
        (False, "elmMT", ""),
        (True, "elradfmwMT", "elcmdfp"),
        (True, "elr", "el"),
        (True, "w", "c"),
        (True, "d", "dp"),
        (True, "m", "m"),
        (True, "", ""),
    ],
)
def test_perm_fact_from_letters(is_dir: bool, perms: str, fact: str) -> None:
    st_ = FileStat("x", is_dir, 0, 0.0)
    assert _facts(mlsd_line(st_, frozenset({"perm"}), perms)) == {"perm": fact}


# ---------------------------------------------------------------------------------- MDTM
@pytest.mark.parametrize(
    ("t", "s"),
    [
        (0, "19700101000000"),
        (calendar.timegm((2020, 1, 2, 3, 4, 5)), "20200102030405"),
        (1_700_000_000.9, "20231114221320"),
        (calendar.timegm((2038, 1, 19, 3, 14, 8)), "20380119031408"),
    ],
)
def test_mdtm_time(t: float, s: str) -> None:
    assert mdtm_time(t) == s
    assert re.fullmatch(r"\d{14}", s)


@given(t=st.integers(0, 2**33))
def test_mdtm_parse_round_trip(t: int) -> None:
    assert parse_time_val(mdtm_time(t)) == t


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("20200102030405", calendar.timegm((2020, 1, 2, 3, 4, 5))),
        ("20200102030405.5", calendar.timegm((2020, 1, 2, 3, 4, 5)) + 0.5),
        ("2020010203040", None),
        ("202001020304056", None),
        ("20201302030405", None),
        ("20200230030405", None),
        ("2020010203040x", None),
        ("20200102030405.", None),
        ("", None),
        ("20200102030405.x", None),
        ("-0200102030405", None),
    ],
)
def test_parse_time_val(value: str, parsed: float | None) -> None:
    assert parse_time_val(value) == parsed


# ---------------------------------------------------------------------------------- replies
def test_single_line_reply() -> None:
    assert Reply(200, "OK.").encode() == b"200 OK.\r\n"
    assert Reply(200).encode() == b"200 \r\n"
    assert Reply(200, "x") == Reply(200, "x") and Reply(200, "x") != Reply(201, "x")
    assert "200" in repr(Reply(200, "x"))


def test_multi_line_reply() -> None:
    r = Reply(211, "Features:", "EPRT", "226 not an end line", "End")
    assert r.encode() == (b"211-Features:\r\n EPRT\r\n 226 not an end line\r\n211 End\r\n")
    assert r.text == "Features:\nEPRT\n226 not an end line\nEnd"


@given(lines=st.lists(st.text(max_size=30), min_size=1, max_size=6), code=st.integers(100, 599))
def test_reply_wire_format(lines: list[str], code: int) -> None:
    wire = Reply(code, *lines).encode()
    assert wire.endswith(b"\r\n")
    rows = wire[:-2].split(b"\r\n")
    assert len(rows) == len(lines)  # no CR/LF in any text can add a line
    assert b"\r" not in wire[:-2].replace(b"\r\n", b"") and b"\n" not in wire[:-2].replace(
        b"\r\n", b""
    )
    assert b"\0" not in wire
    last = rows[-1]
    assert last.startswith(f"{code} ".encode())
    for row in rows[:-1]:
        assert not re.match(rb"^\d{3} ", row)  # only the last line may end the reply
    if len(rows) > 1:
        assert rows[0].startswith(f"{code}-".encode())


def test_reply_injection() -> None:
    wire = Reply(250, "name\r\n226 fake").encode()
    assert wire.count(b"\r\n") == 1 and wire.startswith(b"250 name")
    assert sanitize("a\0b\rc\nd") == "a\\0b\\rc\\nd"
    assert sanitize("clean") == "clean"


def test_reply_escapes_non_utf8_bytes() -> None:
    # Always valid UTF-8 (strict clients): the byte E9 goes out as U+FFFD "E9" (names.py).
    name = b"caf\xe9".decode("utf-8", "surrogateescape")
    wire = Reply(257, f'"/{name}" created').encode()
    assert wire == '257 "/caf\ufffdE9" created\r\n'.encode()
    wire.decode("utf-8")


# ---------------------------------------------------------------------------------- textmode
def _convert(conv: ToNetwork | FromNetwork, chunks: list[bytes]) -> bytes:
    return b"".join(conv.convert(c) for c in chunks) + conv.flush()


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, prev = [], 0
    for p in points:
        out.append(data[prev:p])
        prev = p
    return [*out, data[prev:]]


text = st.lists(
    st.sampled_from([b"a", b"\r", b"\n", b"\r\n", b"xyz", b"\xff", b""]), max_size=40
).map(b"".join)


@settings(max_examples=200)
@given(data=text, cuts=st.lists(st.integers(0, 200), max_size=15))
def test_to_network_chunking_invariant(data: bytes, cuts: list[int]) -> None:
    once = _convert(ToNetwork(), [data])
    assert _convert(ToNetwork(), _split(data, cuts)) == once
    assert _convert(ToNetwork(), [bytes([b]) for b in data]) == once
    assert b"\n" not in once.replace(b"\r\n", b"")  # every LF is now part of a CRLF


@settings(max_examples=200)
@given(data=text, cuts=st.lists(st.integers(0, 200), max_size=15))
def test_from_network_chunking_invariant(data: bytes, cuts: list[int]) -> None:
    once = _convert(FromNetwork(), [data])
    assert _convert(FromNetwork(), _split(data, cuts)) == once
    assert _convert(FromNetwork(), [memoryview(bytes([b])) for b in data]) == once
    assert b"\r\n" not in once or b"\r\r\n" in data


@given(
    lines=st.lists(
        st.binary(max_size=20).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")), max_size=10
    ),
    final=st.booleans(),
)
def test_round_trips(lines: list[bytes], final: bool) -> None:
    unix = b"\n".join(lines) + (b"\n" if final else b"")
    dos = b"\r\n".join(lines) + (b"\r\n" if final else b"")
    assert _convert(ToNetwork(), [unix]) == dos
    assert _convert(FromNetwork(), [dos]) == unix
    assert _convert(FromNetwork(), [_convert(ToNetwork(), [unix])]) == unix
    assert _convert(ToNetwork(), [_convert(FromNetwork(), [dos])]) == dos


@pytest.mark.parametrize(
    ("src", "net"),
    [
        (b"a\nb\n", b"a\r\nb\r\n"),
        (b"a\r\nb", b"a\r\nb"),
        (b"\n\n", b"\r\n\r\n"),
        (b"a\rb", b"a\rb"),
        (b"end\r", b"end\r"),
        (b"", b""),
    ],
)
def test_to_network_examples(src: bytes, net: bytes) -> None:
    assert _convert(ToNetwork(), [src]) == net


@pytest.mark.parametrize(
    ("net", "disk"),
    [
        (b"a\r\nb\r\n", b"a\nb\n"),
        (b"a\nb", b"a\nb"),
        (b"a\rb", b"a\rb"),
        (b"end\r", b"end\r"),
        (b"\r\r\n", b"\r\n"),
    ],
)
def test_from_network_examples(net: bytes, disk: bytes) -> None:
    assert _convert(FromNetwork(), [net]) == disk


def test_cr_split_from_lf_across_blocks() -> None:
    up = FromNetwork()
    assert up.convert(b"line\r") + up.convert(b"\nnext") + up.flush() == b"line\nnext"
    down = ToNetwork()
    assert down.convert(b"line\r") + down.convert(b"\nnext\n") + down.flush() == b"line\r\nnext\r\n"


# LineFormat caches the date and mode columns of a LIST for every listing (one gmtime per minute,
# one filemode per mode); whatever the entries, its lines must be list_line's, computed afresh
# (test_listing_fast.py holds both to a naive formatting).
_NOW = 1_780_000_000.0
_modes = st.sampled_from([0o100644, 0o100755, 0o40755, 0o120777, 0o644, 0o755, 0o10644])
_entries = st.lists(
    st.builds(
        FileStat,
        name=st.text(min_size=1, max_size=12).filter(lambda n: "/" not in n),
        is_dir=st.booleans(),
        size=st.integers(0, 2**40),
        # around the six-month cut-off and the future, and minutes shared by many entries
        mtime=st.one_of(
            st.sampled_from([_NOW - 182 * 86400 + d for d in (-61, -60, -1, 0, 1, 59, 60)]),
            st.sampled_from([_NOW + d for d in (-59.5, -0.5, 0.0, 0.5, 30, 61)]),
            st.floats(0, 2 * _NOW, allow_nan=False),
        ),
        mode=_modes,
        nlink=st.integers(1, 999),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(_entries)
def test_list_format_caches_change_no_line(entries: list[FileStat]) -> None:
    fmt = LineFormat(ListingKind.LIST, _NOW)
    got = fmt(entries) + fmt(list(reversed(entries)))  # a second batch: the caches are warm
    want = "".join(f"{list_line(e, _NOW)}\r\n" for e in entries + list(reversed(entries)))
    assert got == names.encode(want)
