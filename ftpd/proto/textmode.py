"""TYPE A (ASCII) line-end conversion for transfers (RFC 959 §3.1.1.1).

The network form of a line end is CRLF. Downloads turn LF into CRLF (a file that already has CRLF is
sent unchanged); uploads turn CRLF into LF. Both are stateful so that a CR at the end of one block and
the LF at the start of the next are still seen as one line end.
"""

from __future__ import annotations

__all__ = ["ToNetwork", "FromNetwork"]


class ToNetwork:
    """LF → CRLF, leaving existing CRLF alone."""

    __slots__ = ("_cr",)

    def __init__(self) -> None:
        self._cr = False  # the previous block ended with CR

    def convert(self, data: bytes) -> bytes:
        if not data:
            return data
        held = b"\r" if self._cr else b""
        self._cr = data.endswith(b"\r")
        if self._cr:
            data = data[:-1]
        return (held + data).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") + (b"")

    def flush(self) -> bytes:
        if self._cr:
            self._cr = False
            return b"\r"
        return b""


class FromNetwork:
    """CRLF → LF; a lone CR is kept."""

    __slots__ = ("_cr",)

    def __init__(self) -> None:
        self._cr = False

    def convert(self, data: bytes | memoryview) -> bytes:
        data = bytes(data)
        if not data:
            return data
        if self._cr:
            data = b"\r" + data
        self._cr = data.endswith(b"\r")
        if self._cr:
            data = data[:-1]
        return data.replace(b"\r\n", b"\n")

    def flush(self) -> bytes:
        if self._cr:
            self._cr = False
            return b"\r"
        return b""
