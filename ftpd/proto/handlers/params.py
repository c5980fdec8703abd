"""Transfer parameters (RFC 959 §4.1.2, RFC 3659 §5): TYPE, STRU, MODE, ALLO, REST."""

from __future__ import annotations

from ..errors import ArgumentError, ParamNotImplemented
from ..replies import Reply, printable
from ..state import SessionState

__all__ = ["ftp_TYPE", "ftp_STRU", "ftp_MODE", "ftp_ALLO", "ftp_REST"]

# Constant replies, encoded once (see ``Reply``).
_TYPE_A = Reply(200, "Type set to: ASCII.")
_TYPE_I = Reply(200, "Type set to: Binary.")


def ftp_TYPE(s: SessionState, arg: str, path: str) -> Reply:
    t = arg.strip().upper().replace(" ", "")
    if t in ("A", "AN"):
        s.ascii = True
        return _TYPE_A
    if t in ("I", "L8"):
        s.ascii = False
        return _TYPE_I
    if t in ("E", "EN", "AT", "AC", "L7") or t.startswith("L"):
        raise ParamNotImplemented(f"Type {printable(arg)!r} not supported.")
    raise ArgumentError(f"Unrecognized TYPE {printable(arg)!r}.")


def ftp_STRU(s: SessionState, arg: str, path: str) -> Reply:
    v = arg.strip().upper()
    if v == "F":
        return Reply(200, "File transfer structure set to: F.")
    if v in ("R", "P"):
        raise ParamNotImplemented("Unimplemented STRU type.")
    raise ArgumentError("Unrecognized STRU type.")


def ftp_MODE(s: SessionState, arg: str, path: str) -> Reply:
    m = arg.strip().upper()
    if m == "S":
        return Reply(200, "Transfer mode set to: S.")
    if m in ("B", "C", "Z"):
        raise ParamNotImplemented("Unimplemented MODE type.")
    raise ArgumentError("Unrecognized MODE type.")


def ftp_ALLO(s: SessionState, arg: str, path: str) -> Reply:
    return Reply(202, "No storage allocation necessary.")


def ftp_REST(s: SessionState, arg: str, path: str) -> Reply:
    value = arg.strip()
    if not value.isdigit():
        raise ArgumentError("Invalid REST parameter.")
    offset = int(value)
    if offset and s.ascii:
        # RFC 3659 §5.1: the marker counts bytes as sent; in TYPE A that is not a file offset.
        raise ArgumentError("Resuming transfers not allowed in ASCII mode.")
    s.rest = offset
    return Reply(350, f"Restarting at position {s.rest}.")
