"""Control-connection framing (ftpd.proto.lines), mostly property-based: chunking never changes
the lines, overlong lines are reported once and never buffered whole, Telnet IAC sequences are
stripped, and bytes that are not UTF-8 survive the decode byte for byte."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ftpd.proto.lines import TOO_LONG, LineReader, parse_command

IAC, IP, DM, WILL, DO, DONT, WONT = 0xFF, 0xF4, 0xF2, 0xFB, 0xFD, 0xFE, 0xFC

# Line contents: any bytes but LF (CR, NUL, 0xFF and invalid UTF-8 included).
content = st.binary(max_size=40).map(lambda b: b.replace(b"\n", b""))
ending = st.sampled_from([b"\r\n", b"\n"])
stream = st.lists(st.tuples(content, ending), max_size=12).map(
    lambda parts: b"".join(c + e for c, e in parts)
)


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, prev = [], 0
    for p in points:
        out.append(data[prev:p])
        prev = p
    out.append(data[prev:])
    return out


def _feed_all(reader: LineReader, chunks: list[bytes]) -> list[str]:
    lines: list[str] = []
    for c in chunks:
        lines += reader.feed(c)
        assert reader.buffered <= reader.max_line
    return lines


@settings(max_examples=300)
@given(
    data=stream,
    tail=content,
    cuts=st.lists(st.integers(0, 10_000), max_size=20),
    max_line=st.integers(1, 48),
)
def test_any_chunking_gives_the_same_lines(
    data: bytes, tail: bytes, cuts: list[int], max_line: int
) -> None:
    whole = data + tail  # an unfinished last line stays buffered (or discarded) either way
    once = LineReader(max_line).feed(whole)
    assert _feed_all(LineReader(max_line), _chunks(whole, cuts)) == once
    assert _feed_all(LineReader(max_line), [bytes([b]) for b in whole]) == once
    assert len(once) == data.count(b"\n")


@given(data=stream)
def test_lines_match_their_source(data: bytes) -> None:
    lines = LineReader(4096).feed(data)
    raw = data.split(b"\n")[:-1]
    assert len(lines) == len(raw)
    for got, src in zip(lines, raw, strict=True):
        if src.endswith(b"\r"):
            src = src[:-1]
        if b"\xff" not in src:
            assert got.encode("utf-8", "surrogateescape") == src.replace(b"\0", b"")


@given(
    body=st.binary(min_size=1, max_size=200).map(lambda b: b.replace(b"\n", b"x")),
    max_line=st.integers(6, 64),
    cuts=st.lists(st.integers(0, 1000), max_size=10),
)
def test_overlong_line_is_too_long_once_and_never_buffered(
    body: bytes, max_line: int, cuts: list[int]
) -> None:
    r = LineReader(max_line)
    line = body * (max_line // len(body) + 2)  # always longer than max_line (+CR)
    assert len(line) > max_line
    lines = _feed_all(r, _chunks(line + b"\r\nNOOP\r\n", cuts))
    assert lines == [TOO_LONG, "NOOP"]
    assert r.buffered == 0


def test_overlong_5000_bytes_then_usable() -> None:
    r = LineReader(4096)
    got = []
    for _ in range(5):
        got += r.feed(b"A" * 1000)
        assert r.buffered <= 4096
    got += r.feed(b"\r\nPWD\r\n")
    assert got == [TOO_LONG, "PWD"]


def test_exactly_max_line_is_accepted() -> None:
    r = LineReader(10)
    assert r.feed(b"A" * 10 + b"\n") == ["A" * 10]
    assert r.feed(b"B" * 10 + b"\r\n") == [TOO_LONG]  # 11 bytes before LF with the CR
    assert r.feed(b"C" * 11 + b"\n") == [TOO_LONG]


def test_too_long_sentinel_cannot_be_sent() -> None:
    assert LineReader().feed(b"\x00too-long\r\n") == ["too-long"]
    assert LineReader().feed(TOO_LONG.encode() + b"\n") != [TOO_LONG]


def test_bare_lf_and_crlf() -> None:
    r = LineReader()
    assert r.feed(b"USER a\nPASS b\r\nNOOP") == ["USER a", "PASS b"]
    assert r.buffered == 4
    assert r.feed(b"\n") == ["NOOP"]
    assert r.feed(b"\r\n\n") == ["", ""]


def test_cr_inside_line_is_kept() -> None:
    assert LineReader().feed(b"STOR a\rb\r\n") == ["STOR a\rb"]


@pytest.mark.parametrize(
    ("raw", "line"),
    [
        (bytes([IAC, IP, IAC, DM]) + b"ABOR\r\n", "ABOR"),  # lftp: IP + SYNCH before ABOR
        (b"STOR a" + bytes([IAC, IAC]) + b"b\r\n", "STOR a\udcffb"),  # a doubled 0xFF byte
        (bytes([IAC, WILL, 1, IAC, DO, 3, IAC, DONT, 5, IAC, WONT, 1]) + b"NOOP\r\n", "NOOP"),
        (b"NO" + bytes([IAC, 0xF1]) + b"OP\r\n", "NOOP"),  # IAC NOP
        (b"NOOP" + bytes([IAC]) + b"\r\n", "NOOP"),  # a lone IAC at the end
        (b"NO\x00OP\r\n", "NOOP"),  # NUL never kept
    ],
)
def test_telnet_sequences(raw: bytes, line: str) -> None:
    assert LineReader().feed(raw) == [line]


def test_iac_iac_is_0xff_in_a_name() -> None:
    (line,) = LineReader().feed("RETR é".encode()[:-1] + b"\xff\xff\r\n")
    assert line.encode("utf-8", "surrogateescape") == "RETR é".encode()[:-1] + b"\xff"


@given(
    name=st.binary(max_size=60).map(
        lambda b: b.replace(b"\n", b"").replace(b"\0", b"").replace(b"\xff", b"").rstrip(b"\r")
    )
)
def test_non_utf8_round_trips(name: bytes) -> None:
    (line,) = LineReader().feed(b"RETR " + name + b"\r\n")
    verb, arg = parse_command(line)
    assert verb == "RETR"
    assert arg.encode("utf-8", "surrogateescape") == name


@given(
    name=st.binary(max_size=60).map(
        lambda b: b.replace(b"\n", b"").replace(b"\0", b"").rstrip(b"\r")
    )
)
def test_doubled_iac_round_trips(name: bytes) -> None:
    """lftp doubles every 0xFF in a name (Telnet); the server must see the original bytes."""
    wire = name.replace(b"\xff", b"\xff\xff")
    (line,) = LineReader().feed(b"RETR " + wire + b"\r\n")
    assert parse_command(line)[1].encode("utf-8", "surrogateescape") == name


@pytest.mark.parametrize(
    ("line", "parsed"),
    [
        ("noop", ("NOOP", "")),
        ("RETR a b  ", ("RETR", "a b  ")),  # spaces in names kept (RFC 959 §5.3)
        ("STOR  lead", ("STOR", " lead")),  # only one separator consumed
        ("  PWD", ("PWD", "")),
        ("", ("", "")),
        ("Cwd /x", ("CWD", "/x")),
    ],
)
def test_parse_command(line: str, parsed: tuple[str, str]) -> None:
    assert parse_command(line) == parsed
