"""File transfers (RFC 959 §4.1.3): RETR, STOR, APPE, STOU, and the start of every transfer.

A transfer command opens its file (``OpenRead`` / ``OpenWrite``), consumes the data connection set
up by PASV or PORT (``begin_transfer``) and hands a ``Transfer`` to the IO layer
(``StartTransfer``), which runs it as its own task and reports its ``Outcome`` to
``Session.transfer_finished``.
"""

from __future__ import annotations

import errno
from collections.abc import Generator
from typing import Any

from ..errors import (
    BadSequence,
    CannotOpenData,
    FileUnavailable,
    FtpError,
    NameNotAllowed,
    ParamNotImplemented,
)
from ..listing import LineFormat
from ..paths import basename, parent
from ..requests import (
    HandlerGen,
    OpenListing,
    OpenRead,
    OpenWrite,
    Request,
    StartTransfer,
    Transfer,
    TransferKind,
    UniqueName,
)
from ..state import DATA, Data, Event, SessionState, TlsMode, step

__all__ = [
    "begin_transfer",
    "require_data_setup",
    "send_listing",
    "ftp_RETR",
    "ftp_STOR",
    "ftp_APPE",
    "ftp_STOU",
]

# Module globals: Python 3.11's enum lookup is slow (proto/enums.py); named per transfer.
_NO_DATA, _START, _TLS_REQUIRED = Data.NONE, Event.START, TlsMode.REQUIRED


def require_data_setup(s: SessionState) -> None:
    """Before a transfer command touches the filesystem: its data connection can be made."""
    if s.settings.tls_mode is _TLS_REQUIRED and not s.prot_p:
        # Under tls = required a data connection without PROT P is refused (vsftpd's 522).
        raise FtpError("Data connections must be encrypted: use PROT P.", 522)
    if s.data is _NO_DATA:
        raise CannotOpenData("Use PORT or PASV first.")


def begin_transfer(s: SessionState, t: Transfer) -> None:
    """The file is open: the transfer consumes the data connection setup and is now running."""
    if s.transfer is not None:
        raise BadSequence("A transfer is in progress.")
    if s.data is _NO_DATA:
        raise CannotOpenData("Use PORT or PASV first.")
    s.data = step(DATA, s.data, _START)
    t.tls = s.prot_p
    s.transfer = t


def send_listing(s: SessionState, kind: TransferKind, path: str, format: LineFormat | None = None,
                 payload: bytes | None = None) -> HandlerGen:
    """LIST, NLST, MLSD: a transfer of a directory's listing, streamed (``OpenListing`` reads
    nothing: the IO layer reads and formats it in batches once the data connection is up), or of
    one file's ``payload``."""
    name = basename(path) or "/"
    if payload is not None:
        t = Transfer(kind, path, payload=payload, name=name)
    else:
        stream = yield OpenListing(path, format)
        t = Transfer(kind, path, reader=stream, name=name)
    begin_transfer(s, t)
    yield StartTransfer(t)
    return None


def _take_rest(s: SessionState) -> int:
    offset, s.rest = s.rest, 0
    return offset


def _open_at(call: OpenRead | OpenWrite, offset: int) -> Generator[Request, Any, Any]:
    try:
        return (yield call)
    except OSError as exc:
        if offset and exc.errno == errno.EINVAL:
            # RFC 1123 §4.1.3.4 / RFC 3659 §5.3: a bad marker is reported on the transfer.
            raise FtpError("Invalid REST parameter: beyond the end of the file.", 554) from None
        raise


def ftp_RETR(s: SessionState, arg: str, path: str) -> HandlerGen:
    require_data_setup(s)
    offset = _take_rest(s)
    reader = yield from _open_at(OpenRead(path, offset), offset)
    t = Transfer(
        TransferKind.RETR, path, offset=offset, ascii=s.ascii, reader=reader, name=basename(path)
    )
    begin_transfer(s, t)
    yield StartTransfer(t)
    return None


def ftp_STOR(s: SessionState, arg: str, path: str) -> HandlerGen:
    return _upload(s, TransferKind.STOR, path, append=False)


def ftp_APPE(s: SessionState, arg: str, path: str) -> HandlerGen:
    return _upload(s, TransferKind.APPE, path, append=True)


def _upload(s: SessionState, kind: TransferKind, path: str, append: bool) -> HandlerGen:
    if (s.rest or append) and not s.caps.resume_write:
        # Object storage cannot write into the middle or the end of an existing object:
        # refused before any data connection is used.
        s.rest = 0
        raise ParamNotImplemented("Resuming or appending uploads is not supported by this storage.")
    require_data_setup(s)
    if path == "/":
        raise NameNotAllowed("Not a file name.")
    offset = _take_rest(s)
    # REST then APPE resumes at the offset like REST+STOR (RFC 3659 §5.5 allows either).
    writer = yield from _open_at(OpenWrite(path, offset, append and offset == 0), offset)
    t = Transfer(kind, path, offset=offset, ascii=s.ascii, writer=writer, name=basename(path))
    begin_transfer(s, t)
    yield StartTransfer(t)
    return None


def ftp_STOU(s: SessionState, arg: str, path: str) -> HandlerGen:
    require_data_setup(s)
    if s.rest:
        s.rest = 0
        raise FileUnavailable("Can't STOU while REST request is pending.")
    if arg.strip():
        vdir, prefix = parent(path), basename(path)
    else:
        vdir, prefix = s.cwd, "ftpd"
    target: str = yield UniqueName(vdir, prefix)
    writer = yield OpenWrite(target, 0, False)
    t = Transfer(TransferKind.STOU, target, ascii=s.ascii, writer=writer, name=basename(target))
    begin_transfer(s, t)
    yield StartTransfer(t)
    return None
