"""Fuzzing the control-connection line parser (``ftpd.proto.lines``), bounded for CI.

Hypothesis feeds ``LineReader`` hostile byte streams (Telnet IAC storms, NUL, bare CR/LF, invalid
UTF-8, overlong lines) cut into arbitrary chunks, and checks:

- chunking never matters: the lines out are the same however the stream is split (TCP may split
  anywhere; a parser that depends on it is exploitable);
- a reference model built from the specification in the module docstring gives the same lines;
- memory is bounded: never more than ``max_line`` bytes buffered, whatever arrives;
- no output line contains LF or NUL, and bytes that are not Telnet/NUL/CRLF survive exactly
  (RFC 2640 names, invalid UTF-8 kept by surrogateescape).

The number of examples is ``FTPD_FUZZ_EXAMPLES`` (default 200 per property, a few seconds in all);
docs/HARDENING.md shows a long run.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ftpd.proto.lines import TOO_LONG, LineReader, parse_command

EXAMPLES = int(os.environ.get("FTPD_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
MAX_LINE = 64  # small, so that overlong lines are common; 4096 in the server
ITERATIONS = {"streams": 0, "bytes": 0}

IAC = b"\xff"
# Pieces a hostile stream is made of; the random ones cover everything else.
PIECES = st.one_of(
    st.binary(max_size=40),
    st.sampled_from(
        [
            b"\r\n",
            b"\n",
            b"\r",
            b"\0",
            IAC,
            IAC + IAC,
            IAC + b"\xf4",
            IAC + b"\xf2",
            IAC + b"\xfb\x01",
            IAC + b"\xfd",
            IAC + b"\xfe\x18",
            b"\xff\xff\xff",
            b"\xc3\xa9",
            b"\xc3",
            b"\xed\xa0\x80",
            b"\x80\x81",
            b"USER ",
            b"RETR ",
            b"ABOR",
            b" ",
            b"x" * (MAX_LINE - 1),
            b"y" * MAX_LINE,
            b"z" * (MAX_LINE + 1),
            b"w" * (3 * MAX_LINE),
        ]
    ),
)
STREAMS = st.lists(PIECES, max_size=30).map(b"".join)


def _reference_telnet(raw: bytes) -> bytes:
    """RFC 854 as the lines.py docstring states it: IAC IAC is 0xFF, WILL/WONT/DO/DONT take an
    option byte, every other command is two bytes, a lone trailing IAC is dropped."""
    out = bytearray()
    i = 0
    while i < len(raw):
        if raw[i] != 0xFF:
            out.append(raw[i])
            i += 1
        elif i + 1 >= len(raw):
            i += 1
        elif raw[i + 1] == 0xFF:
            out.append(0xFF)
            i += 2
        elif raw[i + 1] in (0xFB, 0xFC, 0xFD, 0xFE):
            i += 3
        else:
            i += 2
    return bytes(out)


def reference(stream: bytes, max_line: int) -> tuple[list[str], int]:
    """The lines a spec-conforming framer yields for ``stream``, and the bytes left pending."""
    *complete, pending = stream.split(b"\n")
    lines = []
    for raw in complete:
        if len(raw) > max_line:
            lines.append(TOO_LONG)
            continue
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        raw = _reference_telnet(raw).replace(b"\0", b"")
        lines.append(raw.decode("utf-8", "surrogateescape"))
    return lines, len(pending)


def feed_in_chunks(
    stream: bytes, cuts: list[int], max_line: int = MAX_LINE
) -> tuple[list[str], LineReader]:
    reader = LineReader(max_line)
    out: list[str] = []
    prev = 0
    for cut in [*sorted(c % (len(stream) + 1) for c in cuts), len(stream)]:
        out += reader.feed(stream[prev:cut])
        prev = max(prev, cut)
        assert reader.buffered <= max_line, "buffered more than max_line bytes"
    return out, reader


@FUZZ
@given(stream=STREAMS, cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=12))
def test_chunking_never_changes_the_lines(stream: bytes, cuts: list[int]) -> None:
    ITERATIONS["streams"] += 1
    ITERATIONS["bytes"] += len(stream)
    whole, _ = feed_in_chunks(stream, [])
    chunked, _ = feed_in_chunks(stream, cuts)
    bytewise, _ = feed_in_chunks(stream, list(range(len(stream))))
    assert chunked == whole
    assert bytewise == whole


@FUZZ
@given(stream=STREAMS)
def test_matches_the_reference_model(stream: bytes) -> None:
    ITERATIONS["streams"] += 1
    ITERATIONS["bytes"] += len(stream)
    lines, reader = feed_in_chunks(stream, [])
    expected, pending = reference(stream, MAX_LINE)
    # An overlong unterminated tail is discarded at once (bounded memory) and reported as one
    # TOO_LONG when its line end comes; so only a short pending tail may still be buffered.
    assert lines == expected
    assert reader.buffered == (pending if pending <= MAX_LINE else 0)
    for line in lines:
        assert "\n" not in line
        assert line == TOO_LONG or "\0" not in line


@FUZZ
@given(raw=st.binary(max_size=MAX_LINE).filter(lambda b: not set(b) & {0, 10, 13, 255}))
def test_plain_bytes_survive_exactly(raw: bytes) -> None:
    """Anything but NUL, CR, LF and IAC reaches the core byte for byte (invalid UTF-8 too)."""
    ITERATIONS["streams"] += 1
    (line,) = LineReader(MAX_LINE).feed(raw + b"\r\n")
    assert line.encode("utf-8", "surrogateescape") == raw


@FUZZ
@given(line=st.text(max_size=80))
def test_parse_command_never_fails(line: str) -> None:
    verb, arg = parse_command(line)
    assert verb == verb.upper()
    assert " " not in verb
    if verb:
        assert line.lstrip(" ").upper().startswith(verb)


def test_iac_storm_is_bounded() -> None:
    """1 MiB of Telnet commands without a line end: nothing accumulates, one 500 line at the end."""
    reader = LineReader(4096)
    storm = (IAC + b"\xf4" + IAC + b"\xf2" + IAC + b"\xfb\x01") * 1024
    lines: list[str] = []
    for _ in range(128):
        lines += reader.feed(storm)
        assert reader.buffered <= 4096
    lines += reader.feed(b"\r\nNOOP\r\n")
    assert lines == [TOO_LONG, "NOOP"]


def test_report_iterations(figures: object) -> None:
    """Runs last in this module: records how many streams the properties above tried."""
    figures.record(
        "fuzz: line parser (hypothesis)",
        streams=ITERATIONS["streams"],  # type: ignore[attr-defined]
        bytes=ITERATIONS["bytes"],
        examples_per_property=EXAMPLES,
    )
