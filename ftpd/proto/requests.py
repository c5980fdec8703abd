"""What the protocol core asks the IO layer to do.

Command handlers that need IO are generators: they ``yield`` a request, the IO layer performs it and
sends the result back in (or throws the ``OSError`` it raised), and the handler carries on. A handler
may also yield a ``Reply`` to send one at once. This keeps every reply code in the core while all IO
stays at the edges, and lets unit tests drive handlers with fake results, without sockets.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeAlias

from .replies import Reply

__all__ = [
    "Request",
    "HandlerGen",
    "HandlerResult",
    "FsRequest",
    "Stat",
    "ListDir",
    "OpenListing",
    "OpenRead",
    "OpenWrite",
    "MakeDir",
    "RemoveDir",
    "Delete",
    "Rename",
    "SetMtime",
    "Chmod",
    "UniqueName",
    "Outcome",
    "TransferKind",
    "Authenticate",
    "Sleep",
    "OpenPassive",
    "CloseData",
    "StartTransfer",
    "AbortTransfer",
    "StartTLS",
    "ReadListing",
    "Transfer",
    "QuotaStatus",
    "QuotaReport",
]


class Request:
    """Base class of everything a handler can ask of the IO layer.

    Every request is a frozen dataclass: what a handler asks for cannot change on its way to the
    IO layer, which dispatches on the request's type, never on a name.
    """

    __slots__ = ()


# A command handler that needs IO: it yields requests (or a reply to send at once), gets each
# request's result sent back in, and returns the command's final replies.
HandlerGen: TypeAlias = Generator[Request | Reply, Any, Reply | list[Reply] | None]
# What a command handler returns: its replies, or a generator to drive.
HandlerResult: TypeAlias = Reply | list[Reply] | None | HandlerGen


class FsRequest(Request):
    """A filesystem operation: one frozen subclass per ``FileSystem`` method (``ftpd.fs.base``).

    The IO layer performs it through a table keyed by the request's type (nothing is looked up by
    name); the result is sent back into the handler, an ``OSError`` thrown back in.
    """

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Stat(FsRequest):
    """``fs.stat(vpath)`` → ``FileStat``."""

    vpath: str


@dataclass(frozen=True, slots=True)
class ListDir(FsRequest):
    """``fs.list(vpath)`` → ``list[FileStat]`` (the directory's entries)."""

    vpath: str


@dataclass(frozen=True, slots=True)
class OpenListing(FsRequest):
    """``fs.open_listing(vpath, format)`` → a stream of the directory's entries formatted by
    ``format`` (``listing.LineFormat``) in batches; nothing is read before its first ``read``,
    which the IO layer does once the data connection exists (``ftpd.fs.listing_stream``)."""

    vpath: str
    format: Any


@dataclass(frozen=True, slots=True)
class OpenRead(FsRequest):
    """``fs.open_read(vpath, offset)`` → a ``Reader``; ``EINVAL`` when ``offset`` is past the end."""

    vpath: str
    offset: int


@dataclass(frozen=True, slots=True)
class OpenWrite(FsRequest):
    """``fs.open_write(vpath, offset, append)`` → a ``Writer``."""

    vpath: str
    offset: int
    append: bool


@dataclass(frozen=True, slots=True)
class MakeDir(FsRequest):
    """``fs.mkdir(vpath)``."""

    vpath: str


@dataclass(frozen=True, slots=True)
class RemoveDir(FsRequest):
    """``fs.rmdir(vpath)``."""

    vpath: str


@dataclass(frozen=True, slots=True)
class Delete(FsRequest):
    """``fs.delete(vpath)`` (a file)."""

    vpath: str


@dataclass(frozen=True, slots=True)
class Rename(FsRequest):
    """``fs.rename(src, dst)``."""

    src: str
    dst: str


@dataclass(frozen=True, slots=True)
class SetMtime(FsRequest):
    """``fs.set_mtime(vpath, mtime)`` (MFMT)."""

    vpath: str
    mtime: float


@dataclass(frozen=True, slots=True)
class Chmod(FsRequest):
    """``fs.chmod(vpath, mode)`` (SITE CHMOD)."""

    vpath: str
    mode: int


@dataclass(frozen=True, slots=True)
class UniqueName(FsRequest):
    """``fs.unique_name(vdir, prefix)`` → the virtual path of a new, empty file (STOU)."""

    vdir: str
    prefix: str


@dataclass(frozen=True, slots=True, repr=False)
class Authenticate(Request):
    """Check credentials. Result: an account object, ``None`` (bad credentials) or a refusal text."""

    name: str
    password: str

    def __repr__(self) -> str:
        return f"Authenticate({self.name!r}, '***')"  # never the password, even in a debug repr


@dataclass(frozen=True, slots=True)
class Sleep(Request):
    """Wait (a failed-login delay) without blocking other sessions."""

    seconds: float


@dataclass(frozen=True, slots=True)
class OpenPassive(Request):
    """Open a passive listener. Result: ``(advertised_host, port)``; ``OSError`` if none is free."""

    extended: bool


@dataclass(frozen=True, slots=True)
class CloseData(Request):
    """Drop the passive listener or active address set up for a transfer that will not happen."""


@dataclass(frozen=True, slots=True)
class StartTLS(Request):
    """Upgrade the control connection to TLS (after the 234 reply has been queued)."""


@dataclass(frozen=True, slots=True)
class QuotaStatus(Request):
    """The logged-in user's quota (SITE QUOTA). Result: a ``QuotaReport``, or ``None``."""


@dataclass(frozen=True, slots=True)
class QuotaReport:
    """Usage and limits of a home (0: no limit)."""

    bytes_used: int
    files_used: int
    bytes_limit: int
    files_limit: int


@dataclass(frozen=True, slots=True)
class ReadListing(Request):
    """The next batch of a listing sent on the control connection (STAT of a directory), once
    the replies already written have drained (back-pressure). Result: bytes, ``b""`` at the end.
    """

    stream: Any


@dataclass(frozen=True, slots=True)
class AbortTransfer(Request):
    """Abort the running transfer; returns once its final reply (426) has been sent."""


class Outcome(StrEnum):
    """How a data transfer ended, as the IO layer reports it to ``Session.transfer_finished``.

    A ``StrEnum`` so that its value is also the label in logs, metrics and the xferlog.
    """

    OK = "ok"  # 226
    ABORTED = "aborted"  # ABOR (or shutdown): 426
    LOST = "lost"  # the data connection broke: 426
    NO_CONNECTION = "no-connection"  # none came or none could be made: 425
    TIMEOUT = "timeout"  # no progress within the data timeout: 426
    TLS_NO_REUSE = "tls-no-reuse"  # PROT P without TLS session resumption, when required: 522
    TLS_FAILED = "tls-failed"  # the data connection's TLS handshake failed: 522
    LOCAL_ERROR = "local-error"  # the filesystem failed: the errno table's reply


class TransferKind(StrEnum):
    """The command a transfer serves (a ``StrEnum``: its value is the verb, as logs show it)."""

    RETR = "RETR"
    STOR = "STOR"
    APPE = "APPE"
    STOU = "STOU"
    LIST = "LIST"
    NLST = "NLST"
    MLSD = "MLSD"

    @property
    def listing(self) -> bool:
        """A directory listing (a stream as ``Transfer.reader``, or a one-entry ``payload``)."""
        return self in _LISTINGS


# Module globals: Python 3.11's enum lookup is slow (enums.py); ``listing`` is asked per transfer.
_LISTINGS = (TransferKind.LIST, TransferKind.NLST, TransferKind.MLSD)


class Transfer:
    """One data transfer, from the transfer command to its final reply.

    ``kind`` is the command it serves. Downloads carry a ``reader`` (RETR, or a listing stream)
    or a ready ``payload`` (the listing of one file); uploads carry a ``writer``. ``ascii`` asks for TYPE A line-end conversion. The IO
    layer keeps its own bookkeeping here (``bytes``, ``started``, ``connected``, ``held``).
    """

    __slots__ = (
        "kind",
        "vpath",
        "offset",
        "ascii",
        "reader",
        "writer",
        "payload",
        "name",
        "bytes",
        "started",
        "tls",
        "connected",
        "held",
    )

    def __init__(
        self,
        kind: TransferKind,
        vpath: str,
        *,
        offset: int = 0,
        ascii: bool = False,
        reader: Any = None,
        writer: Any = None,
        payload: bytes | None = None,
        name: str = "",
    ) -> None:
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

    def __repr__(self) -> str:
        return f"Transfer({self.kind} {self.vpath!r} offset={self.offset})"


@dataclass(frozen=True, slots=True)
class StartTransfer(Request):
    """Start ``transfer`` as its own task; the session stays responsive (ABOR, STAT, NOOP, QUIT)."""

    transfer: Transfer
