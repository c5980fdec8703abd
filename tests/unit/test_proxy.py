"""The sans-IO PROXY protocol parser (ftpd.proto.proxy) against headers built from the spec
(HAProxy's doc/proxy-protocol.txt): v1 lines, v2 binary headers, LOCAL, TLVs, limits, trust."""

from __future__ import annotations

import ipaddress
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ftpd.proto.proxy import (
    MAX_HEADER,
    V2_SIGNATURE,
    NotProxy,
    ProxyError,
    ProxyHeader,
    ProxyPolicy,
    parse,
)


def v2(
    command: int = 1,
    fam: int = 0x11,
    src: str = "192.0.2.7",
    dst: str = "127.0.0.10",
    sport: int = 40000,
    dport: int = 2121,
    tlvs: bytes = b"",
    version: int = 2,
) -> bytes:
    if fam == 0x11:
        body = struct.pack(
            "!4s4sHH",
            ipaddress.IPv4Address(src).packed,
            ipaddress.IPv4Address(dst).packed,
            sport,
            dport,
        )
    elif fam == 0x21:
        body = struct.pack(
            "!16s16sHH",
            ipaddress.IPv6Address(src).packed,
            ipaddress.IPv6Address(dst).packed,
            sport,
            dport,
        )
    else:
        body = b""
    body += tlvs
    return V2_SIGNATURE + struct.pack("!BBH", (version << 4) | command, fam, len(body)) + body


def test_v1_tcp4_and_what_follows() -> None:
    raw = b"PROXY TCP4 192.0.2.7 127.0.0.10 40000 2121\r\n"
    h = parse(raw + b"USER bob\r\n")
    assert h == ProxyHeader(len(raw), ("192.0.2.7", 40000), ("127.0.0.10", 2121), version=1)
    assert not h.local


def test_v1_tcp6_and_unknown() -> None:
    h = parse(b"PROXY TCP6 2001:db8::1 ::1 1 65535\r\n")
    assert h is not None and h.src == ("2001:db8::1", 1) and h.dst == ("::1", 65535)
    h = parse(b"PROXY UNKNOWN ignored stuff\r\n")
    assert h is not None and h.local and h.length == 29


@pytest.mark.parametrize(
    "line",
    [
        b"PROXY TCP4 192.0.2.7 127.0.0.10 40000\r\n",  # a field short
        b"PROXY TCP5 192.0.2.7 127.0.0.10 1 2\r\n",  # no such protocol
        b"PROXY TCP4 ::1 127.0.0.10 1 2\r\n",  # family mismatch
        b"PROXY TCP4 192.0.2.300 127.0.0.10 1 2\r\n",  # not an address
        b"PROXY TCP4 192.0.2.7 127.0.0.10 01 2\r\n",  # leading zero
        b"PROXY TCP4 192.0.2.7 127.0.0.10 1 65536\r\n",  # port out of range
        b"PROXY TCP4 192.0.2.7 127.0.0.10 1 \xff\r\n",  # not ASCII
    ],
)
def test_v1_malformed(line: bytes) -> None:
    with pytest.raises(ProxyError) as info:
        parse(line)
    assert not isinstance(info.value, NotProxy)


def test_v1_needs_crlf_within_107_bytes() -> None:
    assert parse(b"PROXY TCP4 192.0.2.7") is None
    assert parse(b"PROXY " + b"x" * 100) is None  # 106 bytes: still possible
    with pytest.raises(ProxyError):
        parse(b"PROXY " + b"x" * 101)  # 107 bytes and no CRLF
    with pytest.raises(ProxyError):
        parse(b"PROXY " + b"x" * 101 + b"\r\n")  # the CRLF must be within the first 107


def test_v2_tcp4_tcp6_with_tlvs_skipped() -> None:
    tlv = b"\x01\x00\x03ftp" + b"\x04\x00\x00"  # ALPN, NOOP
    raw = v2(tlvs=tlv)
    h = parse(raw + b"\x16\x03\x01")  # a TLS ClientHello right after stays unread
    assert h == ProxyHeader(16 + 12 + len(tlv), ("192.0.2.7", 40000), ("127.0.0.10", 2121))
    raw6 = v2(fam=0x21, src="2001:db8::5", dst="::1", sport=5, dport=6)
    assert parse(raw6) == ProxyHeader(52, ("2001:db8::5", 5), ("::1", 6))
    mapped = v2(fam=0x21, src="::ffff:192.0.2.9", dst="::1")
    h = parse(mapped)
    assert h is not None and h.src == ("192.0.2.9", 40000)


def test_v2_local_and_unspec_use_the_socket() -> None:
    h = parse(v2(command=0))  # HAProxy's health checks
    assert h is not None and h.local and h.length == 28
    h = parse(v2(fam=0x00))
    assert h is not None and h.local and h.length == 16


@pytest.mark.parametrize(
    "raw",
    [
        v2(version=1),
        v2(command=2),
        v2(fam=0x12),  # TCP4 over UDP: not a stream
        V2_SIGNATURE + struct.pack("!BBH", 0x21, 0x11, 4) + b"\0" * 4,  # short address block
        V2_SIGNATURE + struct.pack("!BBH", 0x21, 0x21, 12) + b"\0" * 12,
        V2_SIGNATURE + struct.pack("!BBH", 0x21, 0x11, MAX_HEADER),  # too long
    ],
)
def test_v2_malformed(raw: bytes) -> None:
    with pytest.raises(ProxyError):
        parse(raw)


def test_not_a_header() -> None:
    assert parse(b"") is None
    assert parse(b"PRO") is None  # could still be v1
    assert parse(b"\r\n\r\n") is None  # could still be v2
    for raw in (b"USER bob\r\n", b"\x16\x03\x01\x02", b"\r\n\r\nX", b"PROXX"):
        with pytest.raises(NotProxy):
            parse(raw)


@given(st.integers(min_value=0, max_value=200), st.binary(max_size=40))
def test_byte_at_a_time_gives_the_same_header(tlv_len: int, rest: bytes) -> None:
    raw = v2(tlvs=b"\x04" + struct.pack("!H", tlv_len) + b"z" * tlv_len)
    for i in range(len(raw)):
        assert parse(raw[:i]) is None
    h = parse(raw + rest)
    assert h is not None and h.length == len(raw) and h.src == ("192.0.2.7", 40000)


def test_policy_trust() -> None:
    p = ProxyPolicy.from_text("optional", "127.0.0.5/32, 10.0.0.0/8,::1/128", 3.0)
    assert p.trusts("127.0.0.5") and p.trusts("10.1.2.3") and p.trusts("::1")
    assert p.trusts("::ffff:127.0.0.5")  # a dual-stack listener's view of an IPv4 peer
    assert not p.trusts("127.0.0.6") and not p.trusts("garbage") and not p.required
    assert not ProxyPolicy.from_text("off", "0.0.0.0/0", 3.0).trusts("127.0.0.1")
    assert ProxyPolicy.from_text("required", "::/0", 1.0).required


# Cases a mutation run found unchecked (docs/TESTING.md).
@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            b"PROXY TCP4 192.0.2.7 127.0.0.10 40000 2121" + b" " * 70 + b"\r\n",
            "PROXY v1 line longer than 107 bytes",
        ),
        (b"PROXY TCP4 192.0.2.\xe9 127.0.0.10 1 2\r\n", "PROXY v1 line is not ASCII"),
        (b"PROXY TCP5 192.0.2.7 127.0.0.10 1 2\r\n", "malformed PROXY v1 line"),
        (b"PROXY TCP4 192.0.2.7  127.0.0.10 1 2\r\n", "malformed PROXY v1 line"),
        (b"PROXY TCP4 ::1 127.0.0.10 1 2\r\n", "PROXY v1 address does not match its family"),
        (b"PROXY TCP4 192.0.2.7 127.0.0.10 01 2\r\n", "bad port in PROXY v1 line: '01'"),
    ],
)
def test_v1_errors_say_what_is_wrong(raw: bytes, message: str) -> None:
    """The message is what the server logs about a bad balancer: it must name the problem."""
    with pytest.raises(ProxyError) as exc:
        parse(raw)
    assert str(exc.value) == message


def test_v1_edges() -> None:
    # CRLF exactly at the 107-byte limit is a whole line; one byte later is too long.
    line = b"PROXY UNKNOWN " + b"x" * (107 - 16) + b"\r\n"
    assert len(line) == 107 and parse(line) == ProxyHeader(107, version=1)
    assert parse(b"PROXY UNKNOWN\r\n") == ProxyHeader(15, version=1)  # no addresses at all
    # The CR LF is searched from the start: a line that is only the prefix and CRLF.
    with pytest.raises(ProxyError, match="malformed"):
        parse(b"PROXY \r\n")
    h = parse(b"PROXY TCP4 192.0.2.7 127.0.0.10 0 65535\r\n")  # port 0 is a valid number
    assert h is not None and h.src == ("192.0.2.7", 0) and h.dst == ("127.0.0.10", 65535)


def test_policy_trust_edges() -> None:
    p = ProxyPolicy.from_text("optional", "10.1.2.3/8, fe80::/10", 2.5)
    assert p.timeout == 2.5 and not p.required
    assert p.trusts("10.200.0.1")  # a CIDR with host bits set still means its network
    assert p.trusts("fe80::1%eth0")  # a zone id is not part of the address
    assert p.trusts("10.1.2.3%a%b")  # everything from the first % on is the zone
    assert ProxyPolicy.from_text("required", "10.0.0.0/8", 1).required


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"GET / HTTP/1.1\r\n", "not a PROXY protocol header"),
        (v2(version=1), "PROXY v2: unsupported version"),
        (v2(command=2), "PROXY v2: unknown command"),
        (v2(fam=0x12), "PROXY v2: unsupported address family or transport"),
        (
            V2_SIGNATURE + struct.pack("!BBH", 0x21, 0x11, 11) + b"\0" * 11,
            "PROXY v2: short TCP4 address block",
        ),
        (
            V2_SIGNATURE + struct.pack("!BBH", 0x21, 0x21, 35) + b"\0" * 35,
            "PROXY v2: short TCP6 address block",
        ),
        (V2_SIGNATURE + struct.pack("!BBH", 0x21, 0x11, MAX_HEADER), "PROXY v2: header too long"),
    ],
)
def test_v2_errors_say_what_is_wrong(raw: bytes, message: str) -> None:
    with pytest.raises(ProxyError) as exc:
        parse(raw)
    assert str(exc.value) == message


def test_v2_edges() -> None:
    # Exactly the 12-byte TCP4 block and the largest allowed payload are accepted; ports and
    # lengths are unsigned (a port above 32767 stays positive).
    raw = v2(sport=65535, dport=40000)
    h = parse(raw)
    assert h is not None and h.src == ("192.0.2.7", 65535) and h.length == len(raw) == 28
    big = v2(tlvs=b"\0" * (MAX_HEADER - 16 - 12))
    h = parse(big)
    assert h is not None and h.length == len(big)
    # A prefix of either signature is "need more bytes", not an error.
    assert parse(V2_SIGNATURE[:5]) is None and parse(b"PROX") is None
