"""The performer table: request type → the function that performs it for a channel.

Command handlers in the protocol core yield requests (``ftpd.proto.requests``); the channel's one
driver looks the request's type up here and calls the performer with the channel. A performer
returns the result at once (a plain value), or something to wait for: a future (a local file call
on the IO pool, resumed from its callback, no task), or a coroutine (the driver runs it as a task).
An ``OSError`` it raises is thrown back into the handler (the errno table answers it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ..events import EventFS
from ..fs.listing_stream import open_listing
from ..fs.quota import QuotaFS
from ..proto import requests as rq
from ..proto.requests import (
    AbortTransfer,
    Authenticate,
    CloseData,
    FsRequest,
    OpenPassive,
    Outcome,
    QuotaReport,
    QuotaStatus,
    ReadListing,
    Request,
    Sleep,
    StartTLS,
    StartTransfer,
)
from . import tls as tlsmod
from .host import NEED_ASYNC
from .transfer import Channel, TransferTask

__all__ = ["PERFORMERS", "FS_CALLS", "Performer"]

Performer = Callable[[Channel, Any], Any]

# The filesystem call each filesystem request stands for; the result is an awaitable (a bare
# future from LocalFS's pool, or a coroutine).
FS_CALLS: dict[type[FsRequest], Callable[[Any, Any], Any]] = {
    rq.Stat: lambda fs, r: fs.stat(r.vpath),
    rq.ListDir: lambda fs, r: fs.list(r.vpath),
    rq.OpenListing: lambda fs, r: open_listing(fs, r.vpath, r.format),
    rq.OpenRead: lambda fs, r: fs.open_read(r.vpath, r.offset),
    rq.OpenWrite: lambda fs, r: fs.open_write(r.vpath, r.offset, r.append),
    rq.MakeDir: lambda fs, r: fs.mkdir(r.vpath),
    rq.RemoveDir: lambda fs, r: fs.rmdir(r.vpath),
    rq.Delete: lambda fs, r: fs.delete(r.vpath),
    rq.Rename: lambda fs, r: fs.rename(r.src, r.dst),
    rq.SetMtime: lambda fs, r: fs.set_mtime(r.vpath, r.mtime),
    rq.Chmod: lambda fs, r: fs.chmod(r.vpath, r.mode),
    rq.UniqueName: lambda fs, r: fs.unique_name(r.vdir, r.prefix),
}


def _fs_performer(call: Callable[[Any, Any], Any]) -> Performer:
    def perform(ch: Channel, req: FsRequest) -> Any:
        fs = ch.fs
        if fs is None:
            raise PermissionError(13, "not logged in")
        return call(fs, req)

    return perform


def _authenticate(ch: Channel, req: Authenticate) -> Any:
    ip = ch.session.peer_ip
    account = ch.host.login_now(ch, ip, req.name, req.password)
    if account is NEED_ASYNC:
        return _authenticate_slowly(ch, req)
    return ch.logged_in(req.name, account)


async def _authenticate_slowly(ch: Channel, req: Authenticate) -> Any:
    ip = ch.session.peer_ip
    account = await ch.host.login_check(ch, ip, req.name, req.password)
    if ch.closed:
        return None  # the client left while its login was being checked
    return ch.logged_in(req.name, account)


def _open_passive(ch: Channel, req: OpenPassive) -> tuple[str, int]:
    session = ch.session
    host = ch.host
    ch.set_source(None)
    cfg = host.config
    # The lease's client: a data connection from any other address is refused (RFC 2577 §5).
    peer = None if cfg.pasv_promiscuous else session.peer_ip
    listener = host.pasv_pool.open(session.local_ip, peer)
    if session.prot_p and ch.tls_context is not None:
        # The ticket the data connection resumes with goes out with the 227/229: aioftp starts
        # its data handshake right after it (the others after the 150).
        ch.issue_ticket()
        # aioftp runs the data handshake before it sends the transfer command: accept at once.
        ch.set_source(
            tlsmod.EarlyTls(
                listener,
                peer,
                ch.tls_context,
                cfg.tls_handshake_timeout,
                cfg.tls_require_session_reuse,
            )
        )
    else:
        ch.set_source(listener)
    return (host.pasv_address or session.local_ip, listener.port)


def _start_transfer(ch: Channel, req: StartTransfer) -> None:
    ch.transfer_started(TransferTask(ch, req.transfer, ch.take_source()))


def _close_data(ch: Channel, req: CloseData) -> None:
    ch.set_source(None)


async def _abort_transfer(ch: Channel, req: AbortTransfer) -> None:
    running = ch.transfer
    if running is not None and not running.done():
        running.cancel(Outcome.ABORTED)
        await asyncio.wait([running.task])


async def _quota_status(ch: Channel, req: QuotaStatus) -> QuotaReport | None:
    fs: Any = ch.fs
    while isinstance(fs, EventFS):
        fs = fs.inner
    if not isinstance(fs, QuotaFS):
        return None
    usage = await fs.usage()
    return QuotaReport(usage.bytes, usage.files, fs.limits.bytes, fs.limits.files)


def _sleep(ch: Channel, req: Sleep) -> Any:
    return asyncio.sleep(req.seconds)


def _start_tls(ch: Channel, req: StartTLS) -> Any:
    return ch.start_tls()


async def _read_listing(ch: Channel, req: ReadListing) -> bytes:
    # STAT of a directory: the next batch once the previous ones have been read (back-pressure).
    try:
        await ch.drained()
        data: bytes = await req.stream.read()
    except BaseException:
        req.stream.close_now()  # the handler will not read on (closed, cancelled, failed)
        raise
    return data


PERFORMERS: dict[type[Request], Performer] = {
    **{kind: _fs_performer(call) for kind, call in FS_CALLS.items()},
    Authenticate: _authenticate,
    OpenPassive: _open_passive,
    StartTransfer: _start_transfer,
    CloseData: _close_data,
    AbortTransfer: _abort_transfer,
    Sleep: _sleep,
    StartTLS: _start_tls,
    QuotaStatus: _quota_status,
    ReadListing: _read_listing,
}
