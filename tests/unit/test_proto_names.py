"""The wire form of names (ftpd/proto/names.py): always valid UTF-8, and reversible."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ftpd.proto import names
from ftpd.proto.names import ESC, encode, from_wire, to_wire
from ftpd.proto.paths import resolve


def _disk(raw: bytes) -> str:
    """A name as os.listdir gives it (undecodable bytes as surrogate escapes)."""
    return raw.decode("utf-8", "surrogateescape")


def test_undecodable_bytes_become_esc_and_hex() -> None:
    assert to_wire(_disk(b"caf\xe9.txt")) == f"caf{ESC}E9.txt"
    assert to_wire(_disk(b"\xff\x80")) == f"{ESC}FF{ESC}80"
    assert encode(_disk(b"caf\xe9.txt")) == f"caf{ESC}E9.txt".encode()


def test_valid_names_are_unchanged() -> None:
    for name in ("plain.txt", "répertoire ü", "日本語", "a%E9b", "\\xe9", f"a{ESC}b", f"x{ESC}"):
        assert to_wire(name) == name
        assert encode(name) == name.encode("utf-8")
        assert from_wire(name) == name


def test_a_literal_esc_is_doubled_only_where_it_would_read_as_an_escape() -> None:
    assert to_wire(f"{ESC}E9") == f"{ESC}{ESC}E9"  # would read as the byte E9
    assert to_wire(f"{ESC}e9") == f"{ESC}{ESC}e9"  # lower case hex is read too
    assert to_wire(f"{ESC}{ESC}") == f"{ESC}{ESC}{ESC}"
    assert to_wire(f"{ESC}" + _disk(b"\xe9")) == f"{ESC}{ESC}{ESC}E9"
    assert to_wire(f"{ESC}12") == f"{ESC}12"  # 0x12 is never escaped: no ambiguity
    assert to_wire(f"{ESC}E") == f"{ESC}E"


def test_from_wire_reads_escapes_back() -> None:
    assert from_wire(f"caf{ESC}E9.txt") == _disk(b"caf\xe9.txt")
    assert from_wire(f"caf{ESC}e9.txt") == _disk(b"caf\xe9.txt")
    assert from_wire(f"{ESC}{ESC}E9") == f"{ESC}E9"
    assert from_wire(f"a{ESC}b") == f"a{ESC}b"  # a lone ESC is itself
    assert from_wire(f"a{ESC}7F") == f"a{ESC}7F"  # only bytes 80..FF are escaped


def test_paths_from_clients_are_read_back() -> None:
    assert resolve("/", f"dir{ESC}FE/caf{ESC}E9") == "/" + _disk(b"dir\xfe/caf\xe9")
    assert resolve("/", _disk(b"raw\xe9")) == "/" + _disk(b"raw\xe9")  # legacy clients' bytes


def test_other_surrogates_never_reach_the_wire() -> None:
    assert encode("a\ud800b") == b"a?b"


_ALPHABET = st.sampled_from(["a", "E", "9", "8", "f", "1", ESC, "\udce9", "\udc80", "\udcff", "é"])


@given(st.lists(_ALPHABET, max_size=12).map("".join))
def test_round_trip_and_valid_utf8(name: str) -> None:
    wire = encode(name)
    text = wire.decode("utf-8")  # strict: never invalid UTF-8
    assert from_wire(text) == name
    assert names.to_wire(name) == text


@given(st.binary(max_size=40))
def test_any_bytes_name_round_trips(raw: bytes) -> None:
    name = _disk(raw)
    assert from_wire(encode(name).decode("utf-8")).encode("utf-8", "surrogateescape") == raw


@given(st.lists(_ALPHABET, max_size=8).map("".join), st.lists(_ALPHABET, max_size=8).map("".join))
def test_distinct_names_have_distinct_wire_forms(a: str, b: str) -> None:
    if a != b:
        assert encode(a) != encode(b)
