"""One data transfer as a task: data connection, the 150, the pump, the files, the outcome.

A transfer command's handler opens the file (or builds the listing) and yields ``StartTransfer``;
the channel starts a ``TransferTask``, so that ABOR, STAT, NOOP and QUIT are answered meanwhile.
The task owns the data connection's source (passive listener, early PROT P accept), the data
socket, the receive buffers and the open file: each is released in this module, on every exit
(the task's ``finally`` and its done-callback), whether the transfer ends, is aborted (ABOR), times
out (the sweeper) or its session finishes. It ends with an ``Outcome``, which the protocol core
turns into the final reply (``proto.requests.Outcome``).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from ..auth.base import Account
from ..proto.requests import Outcome, Transfer, TransferKind
from . import data as datamod
from . import tls as tlsmod
from .hangup import Hangup, UploadCut
from .sockets import DataTimeout

if TYPE_CHECKING:
    import socket

    from ..fs.base import FileSystem, Writer
    from ..proto.replies import Reply
    from ..proto.session import Session
    from .host import SessionHost
    from .rates import RateLimiter

__all__ = ["Outcome", "TransferTask", "Channel", "Source", "commit_upload"]

log = logging.getLogger("ftpd.session")
xfer_log = logging.getLogger("ftpd.transfer")


Source = datamod.PassiveListener | tlsmod.EarlyTls | None

_OK = Outcome.OK  # a module global: Python 3.11's enum lookup is slow (proto/enums.py)


class Channel(Protocol):
    """The control channel as the transfer task and the performers (``perform.py``) see it: a
    ``Protocol``, so that neither needs to import ``control.py`` (which imports them)."""

    host: SessionHost
    session: Session
    fs: FileSystem | None
    transport: Any
    last_activity: float
    transfer: TransferTask | None
    sid: int
    peer: tuple[str, int]
    tls_context: ssl.SSLContext | None  # the session's own (kept across a reload)

    @property
    def closed(self) -> bool: ...

    def who(self) -> str: ...

    def reply(self, reply: Reply) -> None: ...

    async def drained(self) -> None:
        """Wait until the client has read the replies written so far."""
        ...

    def set_source(self, source: Source) -> None:
        """Register the passive listener for the next transfer (None: drop the current one)."""
        ...

    def take_source(self) -> Source:
        """Hand the passive listener over to a transfer, which then owns it."""
        ...

    def logged_in(self, name: str, account: Any) -> Any: ...

    async def start_tls(self) -> None: ...

    def issue_ticket(self) -> None:
        """One fresh TLS 1.3 session ticket for the PROT P data connection the client is about
        to open; it goes out with the reply written next (``TlsControl.issue_ticket``). Nothing
        on a plain connection."""
        ...

    def transfer_started(self, task: TransferTask) -> None: ...

    def transfer_ended(
        self, task: TransferTask, outcome: Outcome, error: OSError | None, held: Reply | None
    ) -> None: ...


class TransferTask:
    """See the module docstring. ``cancel(reason)`` stops it; the reason becomes its outcome."""

    __slots__ = (
        "ch",
        "t",
        "source",
        "task",
        "reason",
        "connected",
        "held",
        "started",
        "hangup",
        "detached",
        "limit",
    )

    def __init__(self, ch: Channel, t: Transfer, source: Source) -> None:
        self.ch = ch
        self.t = t
        self.source = source
        self.reason: Outcome | None = None  # why it was cancelled
        self.connected = False  # the data connection is up
        self.held: Reply | None = None  # a 150 held back to go out with the final reply
        self.limit: RateLimiter | None = None  # bandwidth (rates.py), while connected
        self.started = t.started = time.monotonic()
        self.hangup: Hangup | None = None  # an upload's, while it receives (hangup.py)
        self.detached = False  # it outlives its control connection (control_lost)
        self.task = asyncio.get_running_loop().create_task(self._run())
        # A task cancelled before its first step never runs its body: release the source here.
        self.task.add_done_callback(self._release_source)

    def cancel(self, reason: Outcome) -> None:
        if self.reason is None:
            self.reason = reason
        self.task.cancel()

    def done(self) -> bool:
        return self.task.done()

    def control_lost(self, after_quit: bool) -> bool:
        """The control connection is gone (issue 17). True if the transfer goes on by itself
        (``finish`` must not cancel it): after QUIT it runs to its end, under its own
        ``data_timeout`` watch since nobody sweeps the session any more; an upload that is
        receiving takes only what the kernel holds, committed if its end is in (hangup.py).
        False for anything else, which ``finish`` cancels."""
        if after_quit:
            self.detached = True
            self._watch()
        elif self.hangup is not None and self.hangup.hang_up():
            self.detached = True
        return self.detached

    def _watch(self) -> None:
        if self.task.done():
            return
        timeout = self.ch.host.config.data_timeout
        idle = time.monotonic() - self.ch.last_activity
        if idle > timeout:
            log.info("%s data timeout after QUIT", self.ch.who())
            self.cancel(Outcome.TIMEOUT)
            return
        asyncio.get_running_loop().call_later(timeout - idle + 0.5, self._watch)

    def _release_source(self, _task: object = None) -> None:
        source, self.source = self.source, None
        if source is not None:
            source.close()

    async def _run(self) -> None:
        ch = self.ch
        t = self.t
        outcome = _OK
        error: OSError | None = None
        try:
            outcome, error = await self._pump()
        except asyncio.CancelledError:
            outcome = self.reason or Outcome.ABORTED
            if outcome is Outcome.TIMEOUT and not self.connected:
                outcome = Outcome.NO_CONNECTION
        except Exception:  # our bug: logged, answered 451, and the session goes on
            log.exception("%s internal error in a transfer", ch.who())
            outcome = Outcome.LOCAL_ERROR
        finally:
            if self.limit is not None:
                self.limit.close()  # its share of a server-wide rate goes to the others
            try:
                await _close_files(ch, t, outcome)
            except asyncio.CancelledError:
                # The session finished meanwhile: the close or abort runs on (shielded), and
                # the transfer is still logged and counted below.
                pass
        seconds = time.monotonic() - self.started
        if xfer_log.isEnabledFor(logging.INFO):
            xfer_log.info(
                "%s %s %s bytes=%d seconds=%.3f result=%s",
                ch.who(),
                t.kind,
                t.vpath,
                t.bytes,
                seconds,
                outcome,
                extra={
                    "event": "transfer",
                    "kind": t.kind,
                    "path": t.vpath,
                    "bytes": t.bytes,
                    "seconds": round(seconds, 3),
                    "result": str(outcome),
                },
            )
        ch.host.observer.transfer(ch, t, outcome, seconds)
        held, self.held = self.held, None
        ch.transfer_ended(self, outcome, error, held)

    def _progress(self, n: int) -> None:
        self.t.bytes += n
        self.ch.last_activity = time.monotonic()

    async def _connect(self) -> socket.socket:
        ch = self.ch
        host = ch.host
        session = ch.session
        source = self.source
        peer = None if host.config.pasv_promiscuous else session.peer_ip
        if isinstance(source, tlsmod.EarlyTls):
            return await source.accepted
        if source is not None:
            return await source.accept(peer)
        if session.active_addr is None:
            raise DataTimeout()
        addr, port = session.active_addr
        return await datamod.connect_active(addr, port, session.local_ip, host.config.data_timeout)

    async def _pump(self) -> tuple[Outcome, OSError | None]:
        """Connect, send 150, pump; the outcome for ``Session.transfer_finished``. One pump per
        direction serves plain and TLS data connections (``data.Stream``)."""
        ch = self.ch
        t = self.t
        try:
            sock = await self._connect()
        except (DataTimeout, OSError) as exc:
            log.info("%s data connection failed: %r", ch.who(), exc)
            return Outcome.NO_CONNECTION, None
        self.connected = True
        self.limit = limit = self._limiter()
        opened = ch.session.transfer_opened(t)
        tls: tlsmod.TlsData | None = None
        try:
            stream: datamod.Stream
            if t.tls:
                if not isinstance(self.source, tlsmod.EarlyTls):
                    # The ticket this connection resumes with goes out with the 150: active
                    # mode, or a PASV sent before PROT P (a PASV under PROT P sent one with its
                    # 227/229, ``perform._open_passive``).
                    ch.issue_ticket()
                ch.reply(opened)  # the client waits for it before its TLS handshake
                shaken = await self._handshake(sock)
                if isinstance(shaken, Outcome):
                    return shaken, None
                stream = tls = shaken
            else:
                stream = datamod.PlainStream(sock)
            if t.writer is not None:
                if tls is None:
                    ch.reply(opened)  # the client waits for it before it sends
                self.hangup = Hangup()
                result = await datamod.receive_upload(
                    stream,
                    t.writer,
                    t.ascii,
                    self._progress,
                    ch.host.bulk,
                    partial(commit_upload, t.writer),
                    self.hangup,
                    limit,
                )
                # A TLS upload counts only with the client's close_notify (vsftpd's
                # strict_ssl_read_eof): a truncated stream raised ssl.SSLEOFError above.
                return result or Outcome.LOST, None
            if tls is None:
                # A download that fits in the socket buffer (a small file, most listings)
                # completes without waiting: its 150 then goes out with the 226 in one write,
                # which saves a syscall and a wake-up of the client. Before any wait, the 150
                # is sent at once.
                self.held = opened
            if t.payload is not None:
                await datamod.send_bytes(stream, t.payload, self._progress, self._send_held)
            else:
                await datamod.send_file(
                    stream,
                    t.reader,
                    t.ascii,
                    self._progress,
                    self._send_held,
                    limit=limit,
                    listing=t.kind.listing,
                )
            return _OK, None
        except DataTimeout:
            return Outcome.TIMEOUT, None
        except UploadCut:
            log.info("%s control connection lost before the upload's end", ch.who())
            return Outcome.LOST, None
        except (ConnectionError, BrokenPipeError, ssl.SSLError) as exc:
            log.info("%s data connection lost: %r", ch.who(), exc)
            return Outcome.LOST, None
        except OSError as exc:
            return Outcome.LOCAL_ERROR, exc
        finally:
            if tls is not None:
                await tls.close(min(ch.host.config.data_timeout, 5.0))
            sock.close()

    def _limiter(self) -> RateLimiter | None:
        """This transfer's bandwidth limit: the account's rate (users file) or the server's,
        and the server-wide share; None when unlimited. Listings are never throttled."""
        t = self.t
        if t.payload is not None:
            return None
        upload = t.writer is not None
        account = self.ch.session.account
        rate = 0
        if isinstance(account, Account):
            rate = account.max_upload_rate if upload else account.max_download_rate
        return self.ch.host.bandwidth.limiter(upload, rate)

    def _send_held(self) -> None:
        held, self.held = self.held, None
        if held is not None:
            self.ch.reply(held)

    async def _handshake(self, sock: socket.socket) -> tlsmod.TlsData | Outcome:
        """TLS on the data connection (PROT P): the client's early one, or ours now."""
        ch = self.ch
        cfg = ch.host.config
        early = self.source if isinstance(self.source, tlsmod.EarlyTls) else None
        try:
            conn = await early.claim() if early is not None else None
            if conn is None:
                assert ch.tls_context is not None  # PROT P needs a TLS session
                conn = await tlsmod.wrap_data(
                    sock,
                    ch.tls_context,
                    cfg.tls_handshake_timeout,
                    cfg.tls_require_session_reuse,
                    tickets=tlsmod.data_tickets(ch.tls_context, self.t.writer is not None),
                )
        except tlsmod.TlsNotResumed as refused:
            log.info("%s PROT P data connection did not resume the TLS session", ch.who())
            await tlsmod.refuse(refused.conn, self.t.writer is not None, min(cfg.data_timeout, 5.0))
            return Outcome.TLS_NO_REUSE
        except (DataTimeout, ssl.SSLError, OSError) as exc:
            log.info("%s TLS on the data connection failed: %r", ch.who(), exc)
            return Outcome.TLS_FAILED
        conn.timeout = cfg.data_timeout
        return conn


async def commit_upload(writer: Writer, tail: bytes | memoryview = b"") -> Outcome:
    """Commit an upload whose data connection has ended; ``tail`` is its last, unwritten bytes
    (written in the commit's own hop by writers that can, e.g. ``LocalWriter``). Its end came:
    it is committed whatever happens to the control connection now (hangup.py)."""
    commit = asyncio.ensure_future(writer.commit(tail))
    try:
        await asyncio.shield(commit)
    except asyncio.CancelledError:
        # ABOR (or a timeout, or shutdown) after the client's last byte: the upload is
        # complete and the commit runs to its end whatever happens, so say so. RFC 959
        # §4.1.3: ABOR of a completed transfer gets 226, not 426 for a file that exists.
        await asyncio.wait([commit])
        commit.result()  # a failed commit is still a local error (452/451...)
    return _OK


async def _close_files(ch: Channel, t: Transfer, outcome: Outcome) -> None:
    try:
        # A finished download has no read in flight: the backend may close it at once.
        if t.reader is not None and (outcome is not _OK or not t.reader.close_now()):
            await t.reader.close()
        if t.writer is not None and outcome is not _OK:
            await t.writer.abort()
            if t.kind is TransferKind.STOU and ch.fs is not None:
                try:
                    await ch.fs.delete(t.vpath)  # the placeholder unique_name created
                except OSError:
                    pass
    except OSError:
        log.exception("closing files of %r", t)
