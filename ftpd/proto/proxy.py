"""PROXY protocol v1/v2 headers (HAProxy's ``doc/proxy-protocol.txt``), sans-IO.

A load balancer in TCP mode hides the client: every connection comes from the balancer. With
``send-proxy``/``send-proxy-v2`` it writes one header before the client's bytes naming the real
endpoints. ``parse`` takes the bytes received so far and says: need more (``None``), a header
(``ProxyHeader``, with ``length`` = exactly how many bytes it took, so the caller can consume just
those and start TLS on what follows), or ``ProxyError``; ``NotProxy`` (a subclass) when the bytes
do not begin like either version at all (a plain client under ``proxy_protocol = optional``).

``ProxyPolicy`` decides whose headers count: only peers in ``proxy_trusted`` (the spec: "only
trusted proxies are allowed to use this protocol"); anyone else's header is just bytes.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from enum import Enum

__all__ = [
    "MAX_HEADER",
    "ProxyError",
    "NotProxy",
    "ProxyHeader",
    "ProxyMode",
    "ProxyPolicy",
    "PROXY_MODES",
    "parse",
]

V1_PREFIX = b"PROXY "
V1_MAX = 107  # "If the CRLF sequence is not found in the first 107 characters ... invalid"
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V2_FIXED = 16  # signature, version/command, family/protocol, 2-byte length
V2_MAX_PAYLOAD = 1024  # TLVs included; HAProxy sends far less. Bounds memory per connection.
MAX_HEADER = V2_FIXED + V2_MAX_PAYLOAD
PROXY_MODES = ("off", "optional", "required")

# v2 family/protocol byte (high nibble family, low nibble transport): only streams make sense here.
_TCP4, _TCP6, _UNSPEC = 0x11, 0x21, 0x00


class ProxyError(ValueError):
    """The bytes are not a valid PROXY header (the connection must be closed)."""


class NotProxy(ProxyError):
    """The bytes do not start like a PROXY header of either version."""


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    """A complete header. ``src``/``dst`` are None for v1 ``UNKNOWN``, v2 ``LOCAL`` (health
    checks) and v2 ``UNSPEC``: the receiver then uses the real connection endpoints."""

    length: int
    src: tuple[str, int] | None = None
    dst: tuple[str, int] | None = None
    version: int = 2

    @property
    def local(self) -> bool:
        return self.src is None


def parse(buf: bytes) -> ProxyHeader | None:
    """The header at the start of ``buf``; None if more bytes are needed; ``ProxyError``."""
    if not buf:
        return None
    n = min(len(buf), len(V2_SIGNATURE))
    if buf[:n] == V2_SIGNATURE[:n]:
        return _parse_v2(buf) if n == len(V2_SIGNATURE) else None
    n = min(len(buf), len(V1_PREFIX))
    if buf[:n] == V1_PREFIX[:n]:
        return _parse_v1(buf) if n == len(V1_PREFIX) else None
    raise NotProxy("not a PROXY protocol header")


def _parse_v1(buf: bytes) -> ProxyHeader | None:
    end = buf.find(b"\r\n", 0, V1_MAX)
    if end < 0:
        if len(buf) >= V1_MAX:
            raise ProxyError("PROXY v1 line longer than 107 bytes")
        return None
    try:
        parts = buf[:end].decode("ascii").split(" ")
    except UnicodeDecodeError:
        raise ProxyError("PROXY v1 line is not ASCII") from None
    length = end + 2
    if len(parts) >= 2 and parts[1] == "UNKNOWN":
        return ProxyHeader(length, version=1)  # the rest of the line is to be ignored
    if len(parts) != 6 or parts[1] not in ("TCP4", "TCP6"):
        raise ProxyError("malformed PROXY v1 line")
    version = 4 if parts[1] == "TCP4" else 6
    src = (_ip(parts[2], version), _port(parts[4]))
    dst = (_ip(parts[3], version), _port(parts[5]))
    return ProxyHeader(length, src, dst, version=1)


def _ip(text: str, version: int) -> str:
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise ProxyError(f"bad address in PROXY v1 line: {text!r}") from None
    if addr.version != version:
        raise ProxyError("PROXY v1 address does not match its family")
    return str(addr)


def _port(text: str) -> int:
    # The spec: decimal, no leading zero, 0-65535.
    if not text.isdigit() or (len(text) > 1 and text[0] == "0") or int(text) > 65535:
        raise ProxyError(f"bad port in PROXY v1 line: {text!r}")
    return int(text)


def _parse_v2(buf: bytes) -> ProxyHeader | None:
    if len(buf) < V2_FIXED:
        return None
    ver_cmd, fam, size = struct.unpack_from("!BBH", buf, 12)
    if ver_cmd >> 4 != 2:
        raise ProxyError("PROXY v2: unsupported version")
    command = ver_cmd & 0x0F
    if command > 1:
        raise ProxyError("PROXY v2: unknown command")
    if size > V2_MAX_PAYLOAD:
        raise ProxyError("PROXY v2: header too long")
    length = V2_FIXED + size  # "always exactly 16 + this value"
    if len(buf) < length:
        return None
    if command == 0:  # LOCAL: the proxy's own connection (health check); addresses are ignored
        return ProxyHeader(length)
    body = buf[V2_FIXED:length]
    # TLVs after the addresses (ALPN, authority, CRC32C, unique ID, SSL...) are skipped.
    if fam == _TCP4:
        if size < 12:
            raise ProxyError("PROXY v2: short TCP4 address block")
        s, d, sp, dp = struct.unpack_from("!4s4sHH", body)
        return ProxyHeader(
            length, (str(ipaddress.IPv4Address(s)), sp), (str(ipaddress.IPv4Address(d)), dp)
        )
    if fam == _TCP6:
        if size < 36:
            raise ProxyError("PROXY v2: short TCP6 address block")
        s, d, sp, dp = struct.unpack_from("!16s16sHH", body)
        return ProxyHeader(length, (_v6(s), sp), (_v6(d), dp))
    if fam == _UNSPEC:
        return ProxyHeader(length)  # "the receiver ... must use the real connection endpoints"
    raise ProxyError("PROXY v2: unsupported address family or transport")


def _v6(raw: bytes) -> str:
    a = ipaddress.IPv6Address(raw)
    # An IPv4 client behind a dual-stack proxy: keep the text the rest of the server compares.
    return str(a.ipv4_mapped) if a.ipv4_mapped is not None else str(a)


class ProxyMode(Enum):
    """The ``proxy_protocol`` setting."""

    OFF = "off"  # no header is read
    OPTIONAL = "optional"  # a trusted peer may send one; without it the bytes are FTP
    REQUIRED = "required"  # a trusted peer must send one


_OFF = ProxyMode.OFF
@dataclass(frozen=True, slots=True)
class ProxyPolicy:
    """Who may send headers and what happens without one."""

    mode: ProxyMode = ProxyMode.OFF
    trusted: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    timeout: float = 5.0

    @classmethod
    def from_text(cls, mode: str, trusted: str, timeout: float) -> ProxyPolicy:
        """From the config keys; ``ValueError`` on a bad mode or CIDR."""
        nets = tuple(
            ipaddress.ip_network(p.strip(), strict=False) for p in trusted.split(",") if p.strip()
        )
        return cls(ProxyMode(mode), nets, timeout)

    @property
    def required(self) -> bool:
        return self.mode is ProxyMode.REQUIRED

    def trusts(self, ip: str) -> bool:
        """Whether a header from socket peer ``ip`` is honoured."""
        if self.mode is _OFF:  # once per connection: a module global (proto/enums.py)
            return False
        try:
            addr = ipaddress.ip_address(ip.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        return any(addr in net for net in self.trusted)
