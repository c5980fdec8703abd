"""IP address text as the protocol compares and formats it (PORT/EPRT checks, PASV replies)."""

from __future__ import annotations

import functools
import ipaddress

__all__ = ["normalise_ip", "ipv4_octets", "pasv_numbers"]


def normalise_ip(ip: str) -> str:
    """``::ffff:1.2.3.4`` → ``1.2.3.4``, so that IPv4 clients on a dual-stack socket compare equal."""
    if ":" not in ip:
        return ip  # IPv4 as the socket layer gives it: already canonical (the common case)
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return ip
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(addr)


@functools.lru_cache(maxsize=64)  # once per PASV, for the server's few addresses
def ipv4_octets(host: str) -> tuple[int, ...]:
    """The four numbers of a dotted IPv4 address (for the PASV reply); ``ValueError`` otherwise."""
    parts = host.split(".")
    if len(parts) != 4 or not all(p.isdigit() and int(p) < 256 for p in parts):
        raise ValueError(host)
    return tuple(int(p) for p in parts)


@functools.lru_cache(maxsize=64)
def pasv_numbers(host: str) -> str:
    """``h1,h2,h3,h4`` of a dotted IPv4 address, as the PASV reply gives it (RFC 959 §4.1.2);
    ``ValueError`` otherwise. Once per PASV, for the server's few addresses."""
    return ",".join(str(b) for b in ipv4_octets(host))
