"""A lean asyncio FTP client for load generation (imports nothing from the server side).

One :class:`FtpClient` is the control channel's ``asyncio.Protocol`` *and* the session object, with
``__slots__``, so that ten thousand idle sessions cost little more than their sockets. Replies are
framed by :mod:`ftpd.load.replies` (RFC 959 §4.2). Data connections are passive only (PASV or EPSV, RFC 2428); like curl and
ftplib we connect to the *control* connection's peer address and ignore the IP inside a 227 reply,
which is wrong behind NAT. Plain downloads are spliced to /dev/null (``splice(2)``: the pages
never reach user space, so the tool costs the loopback no second copy and stays faster than the
server it measures); TLS downloads, or any on a system without ``os.splice``, land in one shared,
discarded buffer of 1 MiB through ``BufferedProtocol`` (no allocation per read). Uploads write
1 MiB slices of one block (faster on loopback than ``sendfile`` from a file, measured).

Every socket is created here so that it can be bound to a chosen source address before connecting
(``IP_BIND_ADDRESS_NO_PORT`` lets several source addresses share the ephemeral port range).
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import fcntl
import os
import socket
import ssl
from typing import Any

from ftpd.load.replies import (
    ProtocolError,
    Reply,
    ReplyError,
    ReplyParser,
    ShortTransfer,
    error_key,
    error_text,
    parse_epsv,
    parse_pasv,
)

__all__ = [
    "FtpClient",
    "ProtocolError",
    "Reply",
    "ReplyError",
    "ReplyParser",
    "ShortTransfer",
    "client_context",
    "error_key",
    "error_text",
    "parse_epsv",
    "parse_pasv",
]

READ_BUFFER = 1 << 20  # one shared download buffer per process: reads of up to 1 MiB
WRITE_BLOCK = 1 << 20  # uploads are written in 1 MiB slices

# Linux value; Python exposes the name only from 3.12 on.
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)


_shared_buffer = memoryview(bytearray(READ_BUFFER))
# The TLS session a data connection being opened should resume (see ResumingContext).
_resume: contextvars.ContextVar[ssl.SSLSession | None] = contextvars.ContextVar(
    "ftpd_load_resume", default=None
)
_upload_block = os.urandom(WRITE_BLOCK)

SPLICE_CHUNK = 1 << 20  # bytes per splice(2) call, and the pipe's size
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)  # Linux value; named in fcntl from 3.10
_SPLICE_FLAGS = getattr(os, "SPLICE_F_MOVE", 1) | getattr(os, "SPLICE_F_NONBLOCK", 2)
# (pipe read end, pipe write end, /dev/null) shared by every download of a process; None: no
# splice here. A download empties the pipe before it yields, so sharing it is safe.
_null_pipe: tuple[int, int, int] | None = None
use_splice = hasattr(os, "splice")  # tests switch it off to cover the buffered path


class ResumingContext(ssl.SSLContext):
    """A client context whose data connections resume the control connection's TLS session.

    Servers may require it so that nobody else can hijack a data connection (vsftpd's
    ``require_ssl_reuse``, ftpd's ``tls_require_session_reuse``). asyncio and uvloop have no
    parameter for a session, but both call ``wrap_bio`` from a callback that runs in a copy of
    the context of the ``create_connection`` call, so a context variable carries it there.
    """

    def wrap_bio(  # type: ignore[override]
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        if session is None and not server_side:
            session = _resume.get()
        return super().wrap_bio(incoming, outgoing, server_side, server_hostname, session)


def client_context(cafile: str | None = None, insecure: bool = False) -> ResumingContext:
    """TLS client context: the system CAs (or ``cafile``); no verification when ``insecure``."""
    ctx = ResumingContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif cafile:
        ctx.load_verify_locations(cafile)
    else:
        ctx.load_default_certs()
    return ctx


def make_socket(family: int, source: str | None) -> socket.socket:
    """A non-blocking TCP socket, bound to ``source`` (port chosen at connect time) if given."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if source:
            if family == socket.AF_INET:
                try:
                    sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
                except OSError:
                    pass  # not Linux: bind picks the port now, which is fine at small scale
            sock.bind((source, 0))
    except BaseException:
        sock.close()
        raise
    return sock


async def open_socket(
    loop: asyncio.AbstractEventLoop, addr: tuple[Any, ...], family: int, source: str | None
) -> socket.socket:
    """Connect a new socket to ``addr`` (from ``source`` if given)."""
    sock = make_socket(family, source)
    try:
        await loop.sock_connect(sock, addr)
    except BaseException:
        sock.close()
        raise
    return sock


class _Sink(asyncio.BufferedProtocol):
    """Receives a download into the shared buffer, counting bytes; resolves ``done`` at EOF."""

    __slots__ = ("nbytes", "done")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.nbytes = 0
        self.done: asyncio.Future[int] = loop.create_future()

    def get_buffer(self, sizehint: int) -> memoryview:
        return _shared_buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.nbytes += nbytes

    def eof_received(self) -> bool:
        return False  # let the transport close

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            if exc is None:
                self.done.set_result(self.nbytes)
            else:
                self.done.set_exception(exc)


def _get_null_pipe() -> tuple[int, int, int]:
    global _null_pipe
    if _null_pipe is None:
        r, w = os.pipe()
        try:
            fcntl.fcntl(w, F_SETPIPE_SZ, SPLICE_CHUNK)
        except OSError:
            pass  # a 64 KiB pipe works too, with more calls
        _null_pipe = (r, w, os.open(os.devnull, os.O_WRONLY))
    return _null_pipe


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


async def splice_to_null(sock: socket.socket) -> int:
    """Read ``sock`` (non-blocking) to EOF with ``splice(2)`` into /dev/null; return the bytes."""
    loop = asyncio.get_running_loop()
    r, w, null = _get_null_pipe()
    fd = sock.fileno()
    total = 0
    while True:
        try:
            n = os.splice(fd, w, SPLICE_CHUNK, flags=_SPLICE_FLAGS)
        except BlockingIOError:
            fut: asyncio.Future[None] = loop.create_future()
            loop.add_reader(fd, _wake, fut)
            try:
                await fut
            finally:
                loop.remove_reader(fd)
            continue
        if n == 0:
            return total
        total += n
        while n:  # /dev/null takes everything at once; the loop is for form
            n -= os.splice(r, null, n)


class _Collector(asyncio.Protocol):
    """Keeps what a data connection sends (small listings only)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.chunks: list[bytes] = []
        self.done: asyncio.Future[None] = loop.create_future()

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            if exc is None:
                self.done.set_result(None)
            else:
                self.done.set_exception(exc)


class _Source(asyncio.Protocol):
    """Flow control for an upload: ``wait_writable`` blocks while the transport buffer is full."""

    __slots__ = ("_resume", "closed")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._resume: asyncio.Future[None] | None = None
        self.closed: asyncio.Future[None] = loop.create_future()

    def pause_writing(self) -> None:
        if self._resume is None:
            self._resume = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._resume is not None:
            if not self._resume.done():
                self._resume.set_result(None)
            self._resume = None

    async def wait_writable(self) -> None:
        if self._resume is not None:
            await self._resume

    def data_received(self, data: bytes) -> None:
        pass  # a server has nothing to say on an upload's data connection

    def connection_lost(self, exc: Exception | None) -> None:
        if self._resume is not None and not self._resume.done():
            self._resume.set_exception(exc or ConnectionResetError("data connection closed"))
        if not self.closed.done():
            if exc is None:
                self.closed.set_result(None)
            else:
                self.closed.set_exception(exc)


class FtpClient(asyncio.Protocol):
    """One FTP session: the control connection's protocol and the commands a load run needs.

    Commands are strictly sequential per session (send, then await the next reply). A reply that
    arrives with nobody waiting (e.g. ``421`` idle timeout) is queued and answers the next command,
    so it is counted rather than lost.
    """

    __slots__ = (
        "transport",
        "_parser",
        "_replies",
        "_waiter",
        "_lost",
        "_closed",
        "family",
        "peer",
        "source",
        "ssl_context",
        "server_hostname",
        "data_tls",
        "implicit_tls",
    )

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._parser = ReplyParser()
        self._replies: collections.deque[Reply] | None = None
        self._waiter: asyncio.Future[Reply] | None = None
        self._lost: BaseException | None = None
        self._closed: asyncio.Future[None] | None = None
        self.family: int = socket.AF_INET
        self.peer: str = ""
        self.source: str | None = None
        self.ssl_context: ssl.SSLContext | None = None
        self.server_hostname: str | None = None
        self.data_tls = False
        self.implicit_tls = False

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            replies = self._parser.feed(data)
        except ProtocolError as exc:
            self._fail(exc)
            if self.transport is not None:
                self.transport.abort()
            return
        for reply in replies:
            waiter = self._waiter
            if waiter is not None and not waiter.done():
                self._waiter = None
                waiter.set_result(reply)
            else:
                if self._replies is None:
                    self._replies = collections.deque()
                self._replies.append(reply)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(exc or ConnectionResetError("control connection closed by server"))

    def _fail(self, exc: BaseException) -> None:
        if self._lost is None:
            self._lost = exc
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            self._waiter = None
            waiter.set_exception(self._lost)

    # -- session -----------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        """True while the control connection is open."""
        return self._lost is None and self.transport is not None

    async def connect(
        self,
        addr: tuple[Any, ...],
        family: int,
        source: str | None,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        implicit_tls: bool = False,
    ) -> Reply:
        """Open the control connection and read the greeting (expects 220).

        With ``implicit_tls`` the TLS handshake comes first (``ftps://``, port 990 style); call
        :meth:`start_tls` afterwards all the same, to protect the data connections.
        """
        loop = asyncio.get_running_loop()
        self.family = family
        self.source = source
        self.peer = addr[0]
        self.ssl_context = ssl_context
        self.server_hostname = server_hostname
        self.implicit_tls = implicit_tls and ssl_context is not None
        sock = await open_socket(loop, addr, family, source)
        try:
            if self.implicit_tls:
                await loop.create_connection(
                    lambda: self, sock=sock, ssl=ssl_context, server_hostname=server_hostname
                )
            else:
                await loop.create_connection(lambda: self, sock=sock)
        except BaseException:
            sock.close()
            raise
        return await self.expect(None, (220,))

    def send(self, line: str) -> None:
        """Send one command line."""
        if self._lost is not None:
            raise self._lost
        assert self.transport is not None
        self.transport.write(line.encode("utf-8") + b"\r\n")

    async def reply(self) -> Reply:
        """The next reply."""
        if self._replies:
            return self._replies.popleft()
        if self._lost is not None:
            raise self._lost
        waiter = self._waiter = asyncio.get_running_loop().create_future()
        return await waiter

    async def expect(self, line: str | None, codes: tuple[int, ...]) -> Reply:
        """Send ``line`` (if any) and return its reply; raise ReplyError if not in ``codes``.

        Preliminary 1xx replies are skipped unless ``codes`` asks for one.
        """
        if line is not None:
            self.send(line)
        while True:
            code, text = await self.reply()
            if code in codes:
                return code, text
            if 100 <= code < 200:
                continue
            raise ReplyError(code, text, line.split(" ", 1)[0] if line else "reply")

    async def start_tls(self) -> None:
        """Explicit FTPS (RFC 4217 §4-§9): AUTH TLS, handshake, PBSZ 0, PROT P.

        On an implicit-TLS connection the control channel is already secure: PBSZ and PROT only.
        """
        assert self.ssl_context is not None and self.transport is not None
        if not self.implicit_tls:
            await self.expect("AUTH TLS", (234,))
            loop = asyncio.get_running_loop()
            self.transport = await loop.start_tls(
                self.transport, self, self.ssl_context, server_hostname=self.server_hostname
            )
        await self.expect("PBSZ 0", (200,))
        await self.expect("PROT P", (200,))
        self.data_tls = True

    async def login(self, user: str, password: str) -> None:
        """USER then PASS (or only USER when the server answers 230 at once)."""
        code, _ = await self.expect(f"USER {user}", (230, 331))
        if code == 331:
            await self.expect(f"PASS {password}", (230, 202))

    async def noop(self) -> None:
        """NOOP, expecting 200."""
        await self.expect("NOOP", (200,))

    async def quit(self, linger: float = 1.0) -> None:
        """QUIT, then wait up to ``linger`` s for the server to close first, then close.

        Letting the server close first leaves TIME_WAIT on its side rather than holding one of
        our ephemeral ports for a minute per login. Raises ReplyError unless the reply is 221.
        """
        try:
            await self.expect("QUIT", (221,))
            if self._lost is None and self.transport is not None:
                self._closed = asyncio.get_running_loop().create_future()
                try:
                    async with asyncio.timeout(linger):
                        await self._closed
                except TimeoutError:
                    pass
        finally:
            self.close()

    def close(self) -> None:
        """Drop the control connection at once."""
        if self.transport is not None:
            self.transport.abort()
        self._fail(ConnectionAbortedError("closed by client"))

    # -- data connections --------------------------------------------------------------------

    async def _data_socket(self, epsv: bool) -> socket.socket:
        """PASV/EPSV, then a TCP connection to the control peer at the announced port."""
        if epsv or self.family == socket.AF_INET6:
            _, text = await self.expect("EPSV", (229,))
            port = parse_epsv(text)
        else:
            _, text = await self.expect("PASV", (227,))
            port = parse_pasv(text)
        loop = asyncio.get_running_loop()
        addr: tuple[Any, ...] = (self.peer, port)
        if self.family == socket.AF_INET6:
            addr = (self.peer, port, 0, 0)
        return await open_socket(loop, addr, self.family, self.source)

    async def _wrap(self, sock: socket.socket, protocol: asyncio.BaseProtocol) -> asyncio.Transport:
        loop = asyncio.get_running_loop()
        ctx = self.ssl_context if self.data_tls else None
        token = None
        if ctx is not None and self.transport is not None:
            control = self.transport.get_extra_info("ssl_object")
            token = _resume.set(control.session if control is not None else None)
        try:
            transport, _ = await loop.create_connection(
                lambda: protocol,
                sock=sock,
                ssl=ctx,
                server_hostname=self.server_hostname if ctx else None,
            )
        except BaseException:
            sock.close()
            raise
        finally:
            if token is not None:
                _resume.reset(token)
        return transport  # type: ignore[return-value]

    async def download(self, command: str, epsv: bool = False, expected: int = -1) -> int:
        """Run a download command (RETR, LIST, MLSD, NLST) into the discard buffer.

        Returns the bytes received; raises ShortTransfer when ``expected`` >= 0 and a different
        number of bytes arrived.
        """
        if use_splice and not self.data_tls:
            nbytes = await self._splice_download(command, epsv)
        else:
            sink = _Sink(asyncio.get_running_loop())
            await self._download(command, epsv, sink, sink.done)
            nbytes = sink.nbytes
        if expected >= 0 and nbytes != expected:
            raise ShortTransfer(f"received {nbytes} bytes, expected {expected}")
        return nbytes

    async def _splice_download(self, command: str, epsv: bool) -> int:
        sock = await self._data_socket(epsv)
        try:
            await self.expect(command, (125, 150))
            nbytes = await splice_to_null(sock)
        finally:
            sock.close()
        await self.expect(None, (226, 250))
        return nbytes

    async def fetch(self, command: str, epsv: bool = False) -> bytes:
        """Run a download command and return what it sent (listings during setup/cleanup)."""
        collector = _Collector(asyncio.get_running_loop())
        await self._download(command, epsv, collector, collector.done)
        return b"".join(collector.chunks)

    async def _download(
        self, command: str, epsv: bool, protocol: asyncio.BaseProtocol, done: asyncio.Future[Any]
    ) -> None:
        sock = await self._data_socket(epsv)
        transport: asyncio.Transport | None = None
        try:
            if not self.data_tls:
                transport = await self._wrap(sock, protocol)
                await self.expect(command, (125, 150))
            else:
                # Servers start the data TLS handshake once they have the command (vsftpd,
                # proftpd): send it first, then handshake, as curl does.
                await self.expect(command, (125, 150))
                transport = await self._wrap(sock, protocol)
            await done
            await self.expect(None, (226, 250))
        except BaseException:
            if transport is not None:
                transport.abort()
            else:
                sock.close()
            raise

    async def upload(self, command: str, size: int, epsv: bool = False) -> int:
        """Run STOR/APPE sending ``size`` generated bytes; return the bytes sent."""
        sock = await self._data_socket(epsv)
        loop = asyncio.get_running_loop()
        source = _Source(loop)
        transport: asyncio.Transport | None = None
        try:
            await self.expect(command, (125, 150))
            transport = await self._wrap(sock, source)
            transport.set_write_buffer_limits(high=4 * WRITE_BLOCK)
            block = memoryview(_upload_block)
            remaining = size
            while remaining > 0:
                chunk = block[: min(remaining, WRITE_BLOCK)]
                transport.write(chunk)
                remaining -= len(chunk)
                await source.wait_writable()
            # close() flushes the buffer (and sends TLS close_notify) before the FIN, which is
            # how the server learns the upload is complete (RFC 959 §3.4 stream mode).
            transport.close()
            await source.closed
            await self.expect(None, (226, 250))
        except BaseException:
            if transport is not None:
                transport.abort()
            else:
                sock.close()
            raise
        return size
