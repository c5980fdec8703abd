"""What the protocol core asks the IO layer to do.

Command handlers that need IO are generators: they ``yield`` a request, the IO layer performs it and
sends the result back in (or throws the ``OSError`` it raised), and the handler carries on. A handler
may also yield a ``Reply`` to send one at once. This keeps every reply code in the core while all IO
stays at the edges, and lets unit tests drive handlers with fake results, without sockets.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "Request",
    "FsCall",
    "Authenticate",
    "Sleep",
    "OpenPassive",
    "CloseData",
    "StartTransfer",
    "AbortTransfer",
    "StartTLS",
    "ReadListing",
    "Transfer",
]


class Request:
    """Base class of everything a handler can ask of the IO layer."""

    __slots__ = ()


class FsCall(Request):
    """``await fs.<method>(*args)``; the result is sent back, an ``OSError`` thrown back."""

    __slots__ = ("method", "args")

    def __init__(self, method: str, *args: Any) -> None:
        self.method = method
        self.args = args

    def __repr__(self) -> str:
        return f"FsCall({self.method!r}, {self.args!r})"


class Authenticate(Request):
    """Check credentials. Result: an account object, ``None`` (bad credentials) or a refusal text."""

    __slots__ = ("name", "password")

    def __init__(self, name: str, password: str) -> None:
        self.name = name
        self.password = password

    def __repr__(self) -> str:
        return f"Authenticate({self.name!r}, '***')"  # never the password, even in a debug repr


class Sleep(Request):
    """Wait (a failed-login delay) without blocking other sessions."""

    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds


class OpenPassive(Request):
    """Open a passive listener. Result: ``(advertised_host, port)``; ``OSError`` if none is free."""

    __slots__ = ("extended",)

    def __init__(self, extended: bool) -> None:
        self.extended = extended


class CloseData(Request):
    """Drop the passive listener or active address set up for a transfer that will not happen."""

    __slots__ = ()


class StartTLS(Request):
    """Upgrade the control connection to TLS (after the 234 reply has been queued)."""

    __slots__ = ()


class ReadListing(Request):
    """The next batch of a listing sent on the control connection (STAT of a directory), once
    the replies already written have drained (back-pressure). Result: bytes, ``b""`` at the end.
    """

    __slots__ = ("stream",)

    def __init__(self, stream: Any) -> None:
        self.stream = stream


class AbortTransfer(Request):
    """Abort the running transfer; returns once its final reply (426) has been sent."""

    __slots__ = ()


class Transfer:
    """One data transfer, from the transfer command to its final reply.

    ``kind`` is the verb (RETR, STOR, APPE, STOU, LIST, NLST, MLSD). Downloads carry a ``reader``
    (RETR) or a ready ``payload`` (listings); uploads carry a ``writer``. ``ascii`` asks for TYPE A
    line-end conversion.
    """

    __slots__ = ("kind", "vpath", "offset", "ascii", "reader", "writer", "payload", "name",
                 "bytes", "started", "tls", "connected", "held")

    def __init__(self, kind: str, vpath: str, *, offset: int = 0, ascii: bool = False,
                 reader: Any = None, writer: Any = None, payload: bytes | None = None,
                 name: str = "") -> None:
        self.kind = kind
        self.vpath = vpath
        self.offset = offset
        self.ascii = ascii
        self.reader = reader
        self.writer = writer
        self.payload = payload
        self.name = name
        self.bytes = 0
        self.started = 0.0
        self.tls = False  # PROT P: the data connection is wrapped in TLS
        self.connected = False  # the data connection is up (150 sent)
        self.held: Any = None  # a 150 reply the IO layer holds back to send with the final one

    @property
    def upload(self) -> bool:
        return self.writer is not None

    def __repr__(self) -> str:
        return f"Transfer({self.kind} {self.vpath!r} offset={self.offset})"


class StartTransfer(Request):
    """Start ``transfer`` as its own task; the session stays responsive (ABOR, STAT, NOOP, QUIT)."""

    __slots__ = ("transfer",)

    def __init__(self, transfer: Transfer) -> None:
        self.transfer = transfer
