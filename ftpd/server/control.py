"""The control channel: an ``asyncio.Protocol`` that drives one ``proto.Session``.

Lean by design (C10K): no standing task per idle session. Lines are framed in ``data_received``; a
command that needs IO gets a short-lived task that drives the handler generator; a transfer runs as its
own task so that ABOR, STAT, NOOP and QUIT are answered while it runs. Commands are processed one at a
time, in order; lines that arrive meanwhile wait in a small queue, and reading pauses when the queue
grows or the client stops reading our replies (back-pressure both ways). Timeouts are checked by the
server's sweeper from ``last_activity``, so an idle session costs no timer either.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from ..proto import proxy as proxyproto
from ..proto import requests as rq
from ..proto.lines import LineReader, parse_command
from ..proto.replies import Reply
from ..proto.requests import (
    AbortTransfer,
    Authenticate,
    CloseData,
    FsRequest,
    OpenPassive,
    Outcome,
    ReadListing,
    Sleep,
    StartTLS,
    StartTransfer,
    Transfer,
)
from ..proto.session import Done, Session
from . import data as datamod
from . import tls as tlsmod

if TYPE_CHECKING:
    from .server import Server

__all__ = ["ControlChannel"]

log = logging.getLogger("ftpd.session")
xfer_log = logging.getLogger("ftpd.transfer")

MAX_QUEUED_LINES = 32
BATCH = 16  # commands run per turn of one session before the others get theirs
NEED_ASYNC = object()  # Server.authenticate_fast: "cannot answer without awaiting"

# The filesystem call each filesystem request stands for (ftpd.proto.requests); the result is an
# awaitable (a bare future from LocalFS's pool, or a coroutine).
FS_CALLS: dict[type[FsRequest], Callable[[Any, Any], Any]] = {
    rq.Stat: lambda fs, r: fs.stat(r.vpath),
    rq.ListDir: lambda fs, r: fs.list(r.vpath),
    rq.OpenListing: lambda fs, r: fs.open_listing(r.vpath, r.format),
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


class ControlChannel(asyncio.Protocol):
    """IO for one client's control connection."""

    __slots__ = (
        "server", "transport", "session", "reader", "fs", "queue", "busy", "last_activity",
        "transfer_task", "passive", "peer", "closed", "sid", "read_paused", "write_paused",
        "counted_ip", "counted_user", "connected_at", "timed_out", "early", "draining",
        "scheduled", "passive_since", "proxy_buf", "proxy_timer", "drain_waiter",
    )

    def __init__(self, server: Server, peer: tuple[str, int] | None = None) -> None:
        self.server = server
        self.transport: Any = None
        self.session: Session = None  # type: ignore[assignment]
        self.reader = LineReader(server.max_line)
        self.fs: Any = None
        self.queue: deque[str] | None = None  # created on first use only
        self.busy = False
        self.last_activity = 0.0
        self.transfer_task: asyncio.Task[None] | None = None
        self.passive: datamod.PassiveListener | None = None
        # Given by the server's own accept loop (implicit FTPS behind a balancer: the PROXY header
        # was read off the raw socket before TLS): the real client, so no header phase here.
        self.peer = peer or ("", 0)
        self.closed = False
        self.sid = 0
        self.read_paused = False
        self.write_paused = False
        self.counted_ip = ""
        self.counted_user = ""
        self.connected_at = 0.0
        self.timed_out = False  # the sweeper cancelled the transfer for lack of progress
        self.early: tlsmod.EarlyTls | None = None  # PROT P passive connection accepted at once
        self.draining = False  # _process_queue is running (no re-entry from _after_command)
        self.scheduled = False  # a _process_queue call is pending on the loop
        self.passive_since = 0.0  # when the current passive listener was opened
        self.proxy_buf: bytes | None = None  # not None while waiting for a PROXY header
        self.proxy_timer: asyncio.TimerHandle | None = None
        self.drain_waiter: asyncio.Future[None] | None = None  # ReadListing waits for drain

    # ------------------------------------------------------------------ asyncio.Protocol
    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        self.transport = transport
        self.last_activity = self.connected_at = time.monotonic()
        if self.peer[0]:  # the real client is known already (see __init__)
            self._open_session()
            return
        peer = transport.get_extra_info("peername") or ("?", 0)
        self.peer = (peer[0], peer[1])
        # SO_OOBINLINE (the urgent byte of Telnet SYNCH / ftplib's OOB "ABOR" stays in the stream) is
        # set on the listening socket and inherited by accepted ones; both loops set TCP_NODELAY.
        if self.server.proxy.trusts(peer[0]):
            # A load balancer: the session (limits, bans, greeting) starts once its PROXY header
            # names the real client. The spec: "The receiver MUST NOT start processing the
            # connection before it receives a complete and valid PROXY protocol header".
            self.proxy_buf = b""
            self.proxy_timer = asyncio.get_running_loop().call_later(
                self.server.proxy.timeout, self._proxy_timeout)
            return
        self._open_session()

    def _open_session(self) -> None:
        transport = self.transport
        server = self.server
        local = transport.get_extra_info("sockname") or ("", 0)
        # peer_ip is the real client's (PROXY header) for limits, bans, PORT checks and the data
        # connection check; local_ip stays this node's address, where passive ports are bound.
        # On the implicit FTPS listener the connection is under TLS from the first byte.
        implicit = server.tls_context is not None and transport.get_extra_info("ssl_object") is not None
        self.session = Session(server.session_settings, self.peer[0], local[0], implicit_tls=implicit)
        refusal = server.admit(self)
        if refusal is not None:
            log.info("refused %s: %s", self._who(), refusal)
            transport.write(Reply(421, refusal).encode())
            self.closed = True
            transport.close()
            return
        if log.isEnabledFor(logging.INFO):
            log.info("connect %s", self._who(), extra={"event": "connect"})
        transport.write(server.greeting)

    def _proxy_header(self, data: bytes) -> bytes | None:
        """Header phase: the bytes after a complete header (the session then runs), or None."""
        buf = self.proxy_buf = (self.proxy_buf or b"") + data
        policy = self.server.proxy
        try:
            header = proxyproto.parse(buf)
        except proxyproto.NotProxy:
            if policy.required:
                return self._proxy_refuse("no PROXY header")
            header = proxyproto.ProxyHeader(0)  # optional: a direct client, bytes are FTP
        except proxyproto.ProxyError as exc:
            return self._proxy_refuse(str(exc))
        if header is None:
            return None
        self._proxy_done(header)
        if self.closed:
            return None
        return buf[header.length:]

    def _proxy_done(self, header: proxyproto.ProxyHeader) -> None:
        if self.proxy_timer is not None:
            self.proxy_timer.cancel()
            self.proxy_timer = None
        self.proxy_buf = None
        if header.src is not None:
            log.debug("PROXY header from %s: client %s:%d", self.peer[0], *header.src)
            self.peer = header.src
        self._open_session()

    def _proxy_timeout(self) -> None:
        self.proxy_timer = None
        if self.closed:
            return
        if self.proxy_buf == b"" and not self.server.proxy.required:
            # optional: nothing came, so this is a direct client waiting for our greeting.
            self._proxy_done(proxyproto.ProxyHeader(0))
        elif self.proxy_buf is not None:
            self._proxy_refuse("no complete PROXY header in time")

    def _proxy_refuse(self, why: str) -> None:
        log.info("closing connection from %s:%d: %s", self.peer[0], self.peer[1], why)
        if self.proxy_timer is not None:
            self.proxy_timer.cancel()
            self.proxy_timer = None
        self.proxy_buf = None
        self.closed = True
        self.transport.abort()  # the spec: reject partial or invalid headers; nothing to say
        return None

    def data_received(self, data: bytes) -> None:
        if self.proxy_buf is not None:
            rest = self._proxy_header(data)
            if not rest:
                return
            data = rest
        if self.closed:
            return
        self.last_activity = time.monotonic()
        reader = self.reader
        lines = reader.feed(data, MAX_QUEUED_LINES)
        if not lines:
            return
        q = self.queue
        if q is None:
            q = self.queue = deque()
        q.extend(lines)
        if reader.has_more():
            # More pipelined commands than we take at once: they wait as raw bytes, and reading
            # pauses until the session has worked through them (bounded memory per client).
            self._pause_reading()
        self._process_queue()

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if self.closed and self.transport is None:
            return
        self.closed = True
        self._drop_passive()
        self._wake_drain()
        task = self.transfer_task
        if task is not None and not task.done():
            task.cancel()
        self.server.release(self)
        if log.isEnabledFor(logging.INFO):
            log.info("disconnect %s", self._who(), extra={"event": "disconnect"})

    def pause_writing(self) -> None:
        # The client does not read our replies: stop reading its commands until it does.
        self.write_paused = True
        self._pause_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        self._wake_drain()
        if (self.queue or self.read_paused) and not self.draining and not self.scheduled:
            self.scheduled = True
            asyncio.get_running_loop().call_soon(self._process_queue)
        self._maybe_resume_reading()

    # ------------------------------------------------------------------ command processing
    def _run(self, line: str) -> None:
        if self.server.log_commands:
            masked = _mask(line)
            log.debug("%s <- %s", self._who(), masked, extra={"event": "command", "command": masked})
        result = self.session.handle(line)
        if Session.is_generator(result):
            self._step(result)
            return
        if result is not None:
            if type(result) is list:
                for r in result:
                    self._reply(r)
            else:
                self._reply(result)  # type: ignore[arg-type]
        self._after_command()

    def _step(self, gen: Any, value: Any = None, exc: BaseException | None = None) -> None:
        """Drive a handler synchronously while its requests can be answered at once; hand it to a
        task at the first request that must wait (hashing, sleeping, TLS, a remote filesystem).
        PASV, the start of a transfer and most logins (a constant-time compare for the single
        user) need no task; a local file call (a bare future from the IoPool) resumes the handler
        from the future's callback, so it needs none either."""
        session = self.session
        while True:
            item = session.advance(gen, value, exc)
            value = exc = None
            kind = type(item)
            if kind is Done:
                for r in item.replies:  # type: ignore[union-attr]
                    self._reply(r)
                self._after_command()
                return
            if kind is Reply:
                self._reply(item)  # type: ignore[arg-type]
                continue
            call = FS_CALLS.get(kind)  # type: ignore[arg-type]
            if call is not None:
                fs = self.fs
                if fs is None:
                    exc = PermissionError(13, "not logged in")
                    continue
                try:
                    pending = call(fs, item)
                except OSError as e:
                    exc = e
                    continue
                self.busy = True
                if isinstance(pending, asyncio.Future):
                    pending.add_done_callback(partial(self._resume, gen))
                else:
                    asyncio.get_running_loop().create_task(self._drive(gen, None, pending))
                return
            try:
                value = self._perform_now(item)
            except OSError as e:
                exc = e
                continue
            if value is NEED_ASYNC:
                self.busy = True
                asyncio.get_running_loop().create_task(self._drive(gen, item))
                return

    def _perform_now(self, req: Any) -> Any:
        """Requests that complete without waiting; ``NEED_ASYNC`` for the others."""
        kind = type(req)
        if kind is OpenPassive:
            self._drop_passive()
            session = self.session
            server = self.server
            listener = server.pasv_pool.open(session.local_ip)
            self.passive_since = time.monotonic()
            if session.prot_p and server.tls_context is not None:
                peer = None if server.config.pasv_promiscuous else session.peer_ip
                self.early = tlsmod.EarlyTls(listener, peer, server.tls_context,
                                             server.config.tls_handshake_timeout,
                                             server.config.tls_require_session_reuse)
            else:
                self.passive = listener
            return (server.pasv_address or session.local_ip, listener.port)
        if kind is StartTransfer:
            t: Transfer = req.transfer
            t.started = time.monotonic()
            self.transfer_task = asyncio.get_running_loop().create_task(self._transfer(t))
            return None
        if kind is CloseData:
            self._drop_passive()
            return None
        if kind is Authenticate:
            return self.server.authenticate_fast(self, req.name, req.password)
        return NEED_ASYNC

    def _resume(self, gen: Any, fut: asyncio.Future[Any]) -> None:
        """A file call's future is done: carry on with the handler where ``_step`` left it."""
        self.busy = False
        if fut.cancelled():  # only the pool's shutdown does this
            gen.close()
            return
        exc = fut.exception()
        if exc is not None and not isinstance(exc, Exception):
            gen.close()
            return
        self._step(gen, None if exc is not None else fut.result(), exc)

    async def _drive(self, gen: Any, first: Any, pending: Any = None) -> None:
        session = self.session
        value: Any = None
        exc: BaseException | None = None
        item = first
        try:
            while True:
                try:
                    if pending is not None:
                        value, pending = await pending, None
                    else:
                        value = await self._perform(item)
                except OSError as e:
                    pending = None
                    exc = e
                item = session.advance(gen, value, exc)
                value = exc = None
                kind = type(item)
                if kind is Done:
                    for r in item.replies:  # type: ignore[union-attr]
                        self._reply(r)
                    break
                while kind is Reply:
                    self._reply(item)  # type: ignore[arg-type]
                    item = session.advance(gen, None)
                    kind = type(item)
                if kind is Done:
                    for r in item.replies:  # type: ignore[union-attr]
                        self._reply(r)
                    break
        except asyncio.CancelledError:
            gen.close()
            return
        finally:
            self.busy = False
        self._after_command()

    async def _perform(self, req: Any) -> Any:
        kind = type(req)
        call = FS_CALLS.get(kind)
        if call is not None:
            if self.fs is None:
                raise PermissionError(13, "not logged in")
            return await call(self.fs, req)
        if kind is Authenticate:
            return await self.server.authenticate(self, req.name, req.password)
        if kind is AbortTransfer:
            task = self.transfer_task
            if task is not None and not task.done():
                task.cancel()
                await asyncio.wait([task])
            return None
        if kind is Sleep:
            await asyncio.sleep(req.seconds)
            return None
        if kind is StartTLS:
            await self._start_tls()
            return None
        if kind is ReadListing:
            await self._drained()
            return await req.stream.read()
        value = self._perform_now(req)
        if value is NEED_ASYNC:
            raise TypeError(f"unknown request {req!r}")
        return value

    async def _drained(self) -> None:
        """Wait until the client has read our replies (STAT of a directory streams its lines
        batch by batch, never more than one batch ahead of the client)."""
        while self.write_paused and not self.closed:
            waiter = self.drain_waiter = asyncio.get_running_loop().create_future()
            await waiter
        if self.closed:
            raise asyncio.CancelledError()  # the client left: stop reading the directory

    def _wake_drain(self) -> None:
        waiter, self.drain_waiter = self.drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _after_command(self) -> None:
        if self.session.closing:
            self.close()
            return
        if (self.queue or self.read_paused) and not self.draining:
            self._process_queue()
        else:
            self._maybe_resume_reading()

    def _process_queue(self) -> None:
        """Run queued commands in order, at most ``BATCH`` now: a client that pipelines thousands
        of commands then yields the loop to the other sessions between batches. Nothing runs
        while a command is in progress, while the client is not reading our replies, or (except
        ABOR, STAT, NOOP and QUIT, which jump the queue) while a transfer runs."""
        self.scheduled = False
        if self.draining:
            return
        self.draining = True
        session = self.session
        q = self.queue
        if q is None:
            q = self.queue = deque()
        done = 0
        try:
            while not self.busy and not self.closed and not self.write_paused:
                if not q:
                    if not self.reader.has_more():
                        break
                    q.extend(self.reader.feed(b"", BATCH))
                if done >= BATCH:
                    if not self.scheduled:
                        self.scheduled = True
                        asyncio.get_running_loop().call_soon(self._process_queue)
                    break
                if session.transfer is not None and not session.allowed_during_transfer(q[0]):
                    # ABOR, STAT, NOOP and QUIT jump the queue while a transfer runs.
                    for i, line in enumerate(q):
                        if session.allowed_during_transfer(line):
                            del q[i]
                            break
                    else:
                        if len(q) < 4 * MAX_QUEUED_LINES and self.reader.has_more():
                            q.extend(self.reader.feed(b"", BATCH))
                            continue
                        break
                else:
                    line = q.popleft()
                done += 1
                self._run(line)
        finally:
            self.draining = False
        if session.closing and not self.closed:
            self.close()
            return
        self._maybe_resume_reading()

    def _reply(self, reply: Reply) -> None:
        if self.closed:
            return
        self._note_reply(reply)
        self.transport.write(reply.encode())

    def _replies(self, replies: list[Reply]) -> None:
        """Several replies in one write (one syscall, one wake-up of the client)."""
        if self.closed:
            return
        for r in replies:
            self._note_reply(r)
        self.transport.write(b"".join([r.encode() for r in replies]))

    def _note_reply(self, reply: Reply) -> None:
        if reply.code >= 400:
            self.server.observer.error_reply(self, reply.code)
            if reply.code != 421 and log.isEnabledFor(logging.INFO):
                log.info("%s -> %d %s", self._who(), reply.code, reply.lines[0],
                         extra={"event": "reply", "code": reply.code})
        elif self.server.log_commands:
            log.debug("%s -> %d %s", self._who(), reply.code, reply.lines[0])

    async def _start_tls(self) -> None:
        # Nothing sent in plain text after AUTH may run as if it came under TLS (the STARTTLS
        # command-injection class of bugs): drop the framer's buffer and any queued lines.
        self.reader = LineReader(self.server.max_line)
        if self.queue:
            self.queue.clear()
        server = self.server
        loop = asyncio.get_running_loop()
        try:
            self.transport = await loop.start_tls(
                self.transport, self, server.tls_context, server_side=True,
                ssl_handshake_timeout=server.config.tls_handshake_timeout)
        except (OSError, ssl.SSLError, TimeoutError, ConnectionError) as exc:
            log.info("%s TLS handshake failed: %r", self._who(), exc)
            self.closed = True
            if self.transport is not None:
                self.transport.abort()
            raise asyncio.CancelledError() from None

    # ------------------------------------------------------------------ transfers
    async def _data_connection(self) -> Any:
        server = self.server
        session = self.session
        timeout = server.config.data_timeout
        if self.passive is not None:
            listener = self.passive
            self.passive = None
            peer = None if server.config.pasv_promiscuous else session.peer_ip
            return await listener.accept(peer)
        if session.active_addr is None:
            raise datamod.DataTimeout()
        host, port = session.active_addr
        return await datamod.connect_active(host, port, self.transport.get_extra_info("sockname")[0],
                                            timeout)

    async def _transfer(self, t: Transfer) -> None:
        session = self.session
        outcome = Outcome.OK
        error: OSError | None = None
        try:
            outcome, error = await self._run_transfer(t)
        except asyncio.CancelledError:
            if self.timed_out:
                outcome = Outcome.TIMEOUT if t.connected else Outcome.NO_CONNECTION
            else:
                outcome = Outcome.ABORTED
            self.timed_out = False
        finally:
            await self._finish_files(t, outcome)
        self.transfer_task = None
        seconds = time.monotonic() - t.started
        if xfer_log.isEnabledFor(logging.INFO):
            xfer_log.info("%s %s %s bytes=%d seconds=%.3f result=%s", self._who(), t.kind, t.vpath,
                          t.bytes, seconds, outcome,
                          extra={"event": "transfer", "kind": t.kind, "path": t.vpath,
                                 "bytes": t.bytes, "seconds": round(seconds, 3), "result": outcome})
        self.server.observer.transfer(self, t, outcome, seconds)
        replies = session.transfer_finished(t, outcome, error)
        held, t.held = t.held, None
        self._replies([held, *replies] if held is not None else replies)
        if not self.closed:
            self._after_command()

    async def _run_transfer(self, t: Transfer) -> tuple[Outcome, OSError | None]:
        """Connect, send 150, pump; returns the outcome for ``Session.transfer_finished``."""
        timeout = self.server.config.data_timeout

        def progress(n: int) -> None:
            t.bytes += n
            self.last_activity = time.monotonic()

        early, self.early = self.early, None
        try:
            sock = await (early.accepted if early is not None else self._data_connection())
        except (datamod.DataTimeout, OSError) as exc:
            log.info("%s data connection failed: %r", self._who(), exc)
            return Outcome.NO_CONNECTION, None
        t.connected = True
        opened = self.session.transfer_opened(t)
        try:
            if t.tls:
                self._reply(opened)
                return await self._pump_tls(sock, t, timeout, progress, early)
            if t.writer is not None:
                self._reply(opened)  # the client waits for it before it sends
                outcome = await datamod.receive_upload(
                    sock, t.writer, t.ascii, progress, self.server.bulk,
                    partial(self._commit_upload, t))
                return outcome or Outcome.LOST, None
            # A download that fits in the socket buffer (a small file, most listings) completes
            # without waiting: its 150 then goes out with the 226 in one write, which saves a
            # syscall and a wake-up of the client. Before any wait, the 150 is sent at once.
            t.held = opened

            def send_held() -> None:
                held, t.held = t.held, None
                if held is not None:
                    self._reply(held)

            if t.payload is not None:
                await datamod.send_bytes(sock, t.payload, progress, send_held)
            else:
                await datamod.send_file(sock, t.reader, t.ascii, progress, send_held)
            return Outcome.OK, None
        except datamod.DataTimeout:
            return Outcome.TIMEOUT, None
        except (ConnectionError, BrokenPipeError, ssl.SSLError) as exc:
            log.info("%s data connection lost: %r", self._who(), exc)
            return Outcome.LOST, None
        except OSError as exc:
            return Outcome.LOCAL_ERROR, exc
        finally:
            sock.close()

    async def _pump_tls(self, sock: Any, t: Transfer, timeout: float, progress: Any,
                        early: tlsmod.EarlyTls | None = None) -> tuple[Outcome, OSError | None]:
        server = self.server
        try:
            conn = await early.claim() if early is not None else None
            if conn is None:
                conn = await tlsmod.wrap_data(
                    sock, server.tls_context, server.config.tls_handshake_timeout,
                    server.config.tls_require_session_reuse, tickets=0 if t.writer else 1)
        except tlsmod.TlsNotResumed:
            log.info("%s PROT P data connection did not resume the TLS session", self._who())
            return Outcome.TLS_NO_REUSE, None
        except (datamod.DataTimeout, ssl.SSLError, OSError) as exc:
            log.info("%s TLS on the data connection failed: %r", self._who(), exc)
            return Outcome.TLS_FAILED, None
        conn.timeout = timeout
        try:
            if t.writer is not None:
                await tlsmod.tls_receive_upload(conn, t.writer, t.ascii, progress)
                return await self._commit_upload(t), None
            if t.payload is not None:
                await tlsmod.tls_send_bytes(conn, t.payload, progress)
            else:
                await tlsmod.tls_send_file(conn, t.reader, t.ascii, progress)
            return Outcome.OK, None
        finally:
            await conn.close(min(timeout, 5.0))

    async def _commit_upload(self, t: Transfer, tail: bytes | memoryview = b"") -> Outcome:
        """Commit an upload whose data connection has ended; ``tail`` is its last, unwritten
        bytes (written in the commit's own hop by writers that can, e.g. ``LocalWriter``)."""
        await asyncio.sleep(0)  # let a simultaneous control-connection loss land first
        if self.closed:
            return Outcome.LOST  # the client vanished: never report a partial upload as complete
        writer = t.writer
        if tail and not getattr(writer, "COMMIT_TAKES_TAIL", False):
            await writer.write(tail)
            tail = b""
        commit = asyncio.ensure_future(writer.commit(tail) if tail else writer.commit())
        try:
            await asyncio.shield(commit)
        except asyncio.CancelledError:
            # ABOR (or a timeout, or shutdown) after the client's last byte: the upload is
            # complete and the commit runs to its end whatever happens, so say so. RFC 959
            # §4.1.3: ABOR of a completed transfer gets 226, not 426 for a file that exists.
            await asyncio.wait([commit])
            commit.result()  # a failed commit is still a local error (452/451...)
        return Outcome.OK

    async def _finish_files(self, t: Transfer, outcome: Outcome) -> None:
        try:
            if t.reader is not None:
                close_now = getattr(t.reader, "close_sync", None)
                if close_now is not None and outcome is Outcome.OK:
                    # A finished download has no read in flight, and closing a read-only fd never
                    # waits on the disk: no executor hop for it.
                    close_now()
                else:
                    await t.reader.close()
            if t.writer is not None and outcome is not Outcome.OK:
                await t.writer.abort()
                if t.kind == "STOU" and self.fs is not None:
                    try:
                        await self.fs.delete(t.vpath)  # the placeholder unique_name created
                    except OSError:
                        pass
        except OSError:
            log.exception("closing files of %r", t)

    # ------------------------------------------------------------------ lifecycle helpers
    def _drop_passive(self) -> None:
        if self.passive is not None:
            self.passive.close()
            self.passive = None
        if self.early is not None:
            self.early.close()
            self.early = None

    def _pause_reading(self) -> None:
        if not self.read_paused and not self.closed:
            self.read_paused = True
            self.transport.pause_reading()

    def _maybe_resume_reading(self) -> None:
        if self.read_paused and not self.write_paused and not self.closed:
            q = self.queue
            if (q is None or len(q) < MAX_QUEUED_LINES // 2) and not self.reader.has_more():
                self.read_paused = False
                self.transport.resume_reading()

    def close(self, reply: Reply | None = None) -> None:
        """Send ``reply`` (if any) and close once the buffered replies are written."""
        if self.closed:
            return
        if reply is not None:
            self._reply(reply)
        self.closed = True
        self._drop_passive()
        self._wake_drain()
        task = self.transfer_task
        if task is not None and not task.done():
            task.cancel()
        self.transport.close()

    def _who(self) -> str:
        s = self.session
        user = s.account.name if s is not None and s.account is not None else "-"
        return f"[{self.sid}] {self.peer[0]}:{self.peer[1]} {user}"


def _mask(line: str) -> str:
    # The verb as the session parses it (leading spaces tolerated): " PASS x" is a PASS too.
    if parse_command(line)[0] == "PASS":
        return "PASS ****"  # never log a password
    return line
