"""Data connection setup (RFC 959 §4.1.2, RFC 2428): PASV, EPSV, PORT, EPRT, and ABOR.

Each moves the data machine of ``ftpd.proto.state`` (NONE → PASSIVE | ACTIVE); the passive listener
itself belongs to the IO layer, asked for with ``OpenPassive`` and dropped with ``CloseData``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Generator
from typing import Any

from ..errors import ArgumentError, CannotOpenData
from ..netaddr import normalise_ip, pasv_numbers
from ..replies import Reply
from ..requests import AbortTransfer, CloseData, HandlerGen, OpenPassive, Request
from ..state import DATA, Data, Event, SessionState, step

__all__ = [
    "reset_data",
    "ftp_PASV",
    "ftp_EPSV",
    "ftp_PORT",
    "ftp_EPRT",
    "ftp_ABOR",
]

# Module globals: Python 3.11's enum lookup is slow (proto/enums.py); named per transfer.
_NO_DATA, _RESET, _PASV = Data.NONE, Event.RESET, Event.PASV


def reset_data(s: SessionState) -> Generator[Request, Any, None]:
    """Drop the data connection set up for a transfer that will not happen."""
    if s.data is not _NO_DATA:
        yield CloseData()
    s.data = step(DATA, s.data, _RESET)
    s.active_addr = None


def ftp_PASV(s: SessionState, arg: str, path: str) -> HandlerGen:
    return _passive(s, extended=False)


def ftp_EPSV(s: SessionState, arg: str, path: str) -> Reply | HandlerGen:
    a = arg.strip().upper()
    if a == "ALL":
        # RFC 2428 §3: from now on only EPSV sets up data connections (Need.NOT_EPSV_ALL).
        s.epsv_all = True
        return Reply(200, "EPSV ALL ok.")
    if a:
        v6 = ":" in s.local_ip
        if not a.isdigit():
            raise ArgumentError("Invalid EPSV argument.")  # RFC 2428 §3: a protocol number
        if a not in ("1", "2"):
            return Reply(522, "Network protocol not supported, use (1,2).")
        if (a == "2") != v6:
            return Reply(522, f"Network protocol not supported, use ({'2' if v6 else '1'}).")
    return _passive(s, extended=True)


def _passive(s: SessionState, extended: bool) -> HandlerGen:
    yield from reset_data(s)
    try:
        host, port = yield OpenPassive(extended)
    except OSError:
        raise CannotOpenData("Can't open passive connection: no free port.") from None
    s.data = step(DATA, s.data, _PASV)
    if extended:
        return Reply(229, f"Entering Extended Passive Mode (|||{port}|)")
    try:
        nums = pasv_numbers(normalise_ip(host))
    except ValueError:
        yield CloseData()
        s.data = step(DATA, s.data, _RESET)
        raise CannotOpenData("PASV needs IPv4; use EPSV on IPv6 connections.") from None
    return Reply(227, f"Entering Passive Mode ({nums},{port >> 8},{port & 0xFF}).")


def ftp_PORT(s: SessionState, arg: str, path: str) -> HandlerGen:
    try:
        nums = [int(x) for x in arg.strip().split(",")]
    except ValueError:
        raise ArgumentError("Invalid PORT format.") from None
    if len(nums) != 6 or not all(0 <= n <= 255 for n in nums):
        raise ArgumentError("Invalid PORT format.")
    host = ".".join(str(n) for n in nums[:4])
    return _active(s, host, nums[4] << 8 | nums[5], "PORT")


def ftp_EPRT(s: SessionState, arg: str, path: str) -> Reply | HandlerGen:
    a = arg.strip()
    if len(a) < 2:
        raise ArgumentError("Invalid EPRT format.")
    parts = a[1:].split(a[0])  # RFC 2428 §2: the first character is the delimiter
    if len(parts) != 4 or parts[3] != "":
        raise ArgumentError("Invalid EPRT format.")
    proto, host, port_s = parts[0], parts[1], parts[2]
    if proto not in ("1", "2"):
        return Reply(522, "Network protocol not supported, use (1,2).")
    try:
        addr = ipaddress.ip_address(host)
        port = int(port_s)
    except ValueError:
        raise ArgumentError("Invalid EPRT format.") from None
    if (proto == "1") != (addr.version == 4) or not 0 < port < 65536:
        raise ArgumentError("Invalid EPRT format.")
    return _active(s, str(addr), port, "EPRT")


def _active(s: SessionState, host: str, port: int, verb: str) -> HandlerGen:
    if not s.settings.port_promiscuous:
        # Bounce/FXP protection (RFC 2577 §3): only the client itself, never a privileged port.
        if normalise_ip(host) != s.peer_ip:
            raise ArgumentError(f"Rejected {verb}: data connection to a foreign address.")
        if port < 1024:
            raise ArgumentError(f"Rejected {verb}: data connection to a privileged port.")
    if port == 0:
        raise ArgumentError(f"Invalid {verb} port.")
    yield from reset_data(s)
    s.active_addr = (normalise_ip(host), port)
    s.data = step(DATA, s.data, Event.PORT)
    return Reply(200, f"{verb} command successful. Consider using PASV.")


def ftp_ABOR(s: SessionState, arg: str, path: str) -> Reply | HandlerGen:
    if s.transfer is not None:
        return _abort_running()
    if s.data is not _NO_DATA:
        return _abort_idle(s)
    return Reply(225, "No transfer to abort.")


def _abort_running() -> HandlerGen:
    # RFC 959 §4.1.3: the transfer's command gets 426, then ABOR gets 226.
    yield AbortTransfer()
    return Reply(226, "ABOR command successful.")


def _abort_idle(s: SessionState) -> HandlerGen:
    yield from reset_data(s)
    return Reply(225, "ABOR command successful; data channel closed.")
