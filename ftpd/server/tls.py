"""TLS for FTPS (RFC 4217): the server context, and TLS on data connections.

One ``ssl.SSLContext`` serves the control connections (explicit AUTH TLS and the implicit listener,
both run by ftpd's own layer over memory BIOs, ``tls_control.py``) and the data connections of a
process, so a data connection can resume the control connection's session: TLS 1.2 session IDs
from the context's cache, TLS 1.3 tickets from its ticket key. Where ``tickets.usable`` (CPython on
OpenSSL 3), the control connection issues one fresh ticket per PROT P data connection
(``TlsControl.issue_ticket``) and none at its handshake; elsewhere it issues 8 at the handshake, so
that clients opening many data connections keep resuming (Cyberduck/vsftpd: a client that used
up its two tickets falls back to a full handshake and is refused).

Data connections are raw sockets; under PROT P, ``TlsData`` runs TLS over them through memory BIOs,
always as the TLS *server* whichever side connected (RFC 4217 §7), in large blocks (no sendfile under
TLS). Each transfer ends with close_notify both ways (ftplib's ``unwrap()`` waits for ours), and an
upload counts only if the client's close_notify arrived.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from typing import Any, cast

from ..config import Config, ConfigError, show
from .data import RECV_BUF
from .sockets import DataTimeout, sendall, wait_fd
from .tickets import usable as can_mint

__all__ = ["make_context", "TlsNotResumed", "TlsData", "wrap_data", "refuse", "EarlyTls"]

TICKETS = 8  # per control handshake where tickets cannot be issued on demand


def on_demand(ctx: ssl.SSLContext) -> bool:
    """The control connections of ``ctx`` issue a ticket per PROT P data connection."""
    return ctx.num_tickets == 0 and can_mint(ctx)


def data_tickets(ctx: ssl.SSLContext, upload: bool) -> int:
    """Tickets a PROT P data connection issues after its handshake. None on uploads: lftp and
    rclone never read an upload's data connection, and an unread ticket makes their kernel
    answer the close with RST and drop the upload's tail. One on downloads where the control
    connection cannot issue them on demand: curl (OpenSSL) uses a TLS 1.3 ticket once and
    resumes its next data connection with the newest one."""
    return 0 if upload or on_demand(ctx) else 1


class TlsNotResumed(Exception):
    """A PROT P data connection did not resume the TLS session and reuse is required. ``conn``
    is the connection, handshake done: end it with ``refuse`` so the client sees the 522."""

    def __init__(self, conn: TlsData) -> None:
        super().__init__("TLS session not resumed")
        self.conn = conn


def make_context(config: Config) -> ssl.SSLContext:
    """The server context; a clear ``ConfigError`` when the certificate or key is unusable."""
    if not (config.tls_cert and config.tls_key):
        raise ConfigError(
            f"invalid value for tls_cert: {show(config.tls_cert)} (FTPS needs "
            "tls_cert and tls_key: PEM certificate and key files)"
        )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = (
        ssl.TLSVersion.TLSv1_3 if config.tls_min_version == "1.3" else ssl.TLSVersion.TLSv1_2
    )
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    try:
        ctx.load_cert_chain(config.tls_cert, config.tls_key)
    except FileNotFoundError as exc:
        raise ConfigError(
            f"invalid value for tls_cert/tls_key: {show(exc.filename or config.tls_cert)} "
            "(file not found)"
        ) from None
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(
            f"invalid value for tls_cert/tls_key: {show(config.tls_cert)}, "
            f"{show(config.tls_key)} (cannot load the certificate and key: {reason})"
        ) from None
    ctx.set_alpn_protocols(["ftp"])  # FileZilla sends ALPN "ftp" (RFC 7301 registry)
    try:
        ctx.num_tickets = 0 if can_mint(ctx) else TICKETS
    except (AttributeError, ValueError):  # pragma: no cover - old OpenSSL
        pass
    return ctx


class TlsData:
    """TLS (server side) over a raw non-blocking data socket, with ``ssl.MemoryBIO``.

    Driving OpenSSL through memory BIOs keeps data connections on the same raw sockets as plain
    ones and tells a clean close_notify (the end of an upload) from a truncated stream, which an
    upload must never be committed on (vsftpd's ``strict_ssl_read_eof``).
    """

    __slots__ = ("sock", "fd", "loop", "inc", "out", "obj", "timeout", "peer_closed")

    def __init__(
        self, sock: socket.socket, ctx: ssl.SSLContext, timeout: float, tickets: int = 0
    ) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.loop = asyncio.get_running_loop()
        self.inc = ssl.MemoryBIO()
        self.out = ssl.MemoryBIO()
        # Session tickets on a data connection: see ``data_tickets``. OpenSSL copies
        # num_tickets into each new SSL object, so changing it around this (synchronous,
        # single-threaded) call affects this connection only.
        saved = ctx.num_tickets
        ctx.num_tickets = tickets
        try:
            self.obj = ctx.wrap_bio(self.inc, self.out, server_side=True)
        finally:
            ctx.num_tickets = saved
        self.timeout = timeout
        self.peer_closed = False  # close_notify received

    async def _flush(self) -> None:
        data = self.out.read()
        if data:
            await sendall(self.sock, data, self.timeout)

    async def _fill(self) -> None:
        while True:
            try:
                data = self.sock.recv(RECV_BUF)
            except BlockingIOError:
                await wait_fd(self.loop, self.fd, False, self.timeout)
                continue
            if data:
                self.inc.write(data)
            else:
                self.inc.write_eof()
            return

    async def handshake(self) -> None:
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                await self._flush()
                await self._fill()
        await self._flush()  # the last flight, and TLS 1.3 session tickets

    async def send(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            try:
                n = self.obj.write(view[:RECV_BUF])
            except ssl.SSLWantReadError:
                await self._flush()
                await self._fill()
                continue
            view = view[n:]
            await self._flush()

    # -- the data.Stream interface (one pump per direction for plain and TLS connections)
    def raw_socket(self) -> None:
        return None  # bytes are encrypted: no sendfile, no bulk thread

    def try_send(self, data: bytes | memoryview) -> int:
        return 0  # every send goes through the TLS object (awaited)

    def recv_into_now(self, view: memoryview) -> int | None:
        """Application data into ``view``: the count, 0 after the peer's close_notify, None if
        more ciphertext must arrive first. A stream that ends without close_notify raises
        ``ssl.SSLEOFError`` (a truncated transfer, never committed)."""
        while True:
            try:
                # With a buffer, read() returns the count (typeshed knows only the bytes form).
                return cast(int, self.obj.read(len(view), view))
            except ssl.SSLWantReadError:
                if self.out.pending:
                    return None  # our pending output first (``readable`` flushes it)
                try:
                    data = self.sock.recv(RECV_BUF)
                except BlockingIOError:
                    return None
                if data:
                    self.inc.write(data)
                else:
                    self.inc.write_eof()
            except ssl.SSLZeroReturnError:
                self.peer_closed = True
                return 0

    async def readable(self) -> None:
        if self.out.pending:
            await self._flush()  # then ``recv_into_now`` reads the socket again
            return
        await wait_fd(self.loop, self.fd, False, self.timeout)

    async def recv(self) -> bytes:
        """The next block of application data; b"" after the peer's close_notify. A stream that
        ends without close_notify raises ``ssl.SSLEOFError`` (a truncated transfer)."""
        while True:
            try:
                return self.obj.read(RECV_BUF)
            except ssl.SSLWantReadError:
                await self._flush()
                await self._fill()
            except ssl.SSLZeroReturnError:
                self.peer_closed = True
                return b""

    async def close(self, wait: float) -> None:
        """Send close_notify; then wait up to ``wait`` s for the peer's (ftplib's unwrap())."""
        try:
            self.obj.unwrap()
        except ssl.SSLWantReadError:
            pass
        except (ssl.SSLError, ValueError):
            return
        try:
            await self._flush()
        except (OSError, DataTimeout):
            return
        if self.peer_closed:
            return
        self.timeout = wait
        try:
            while True:
                try:
                    self.obj.read(RECV_BUF)
                except ssl.SSLWantReadError:
                    await self._fill()
                except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                    return
        except (OSError, ssl.SSLError, DataTimeout):
            return


async def wrap_data(
    sock: socket.socket, ctx: ssl.SSLContext, timeout: float, require_reuse: bool, tickets: int = 0
) -> TlsData:
    """Run the TLS handshake on an accepted/connected data socket, as the server side."""
    conn = TlsData(sock, ctx, timeout, tickets)
    await conn.handshake()
    if require_reuse and not conn.obj.session_reused:
        raise TlsNotResumed(conn)
    return conn


async def refuse(conn: TlsData, upload: bool, wait: float) -> None:
    """End a data connection refused after its handshake (no session reuse) with a clean TLS
    close, so that the client goes on to read the 522 on the control connection (vsftpd's
    order). Closing the socket at once left stock ``ftplib.FTP_TLS`` with an SSL error
    (``SHUTDOWN_WHILE_IN_INIT``) or a reset instead. An upload's bytes are read and dropped up
    to the client's close_notify (for at most ``wait`` seconds): closing with unread bytes would
    reset the connection under the client's last writes."""
    if upload:
        try:
            async with asyncio.timeout(wait):
                while await conn.recv():
                    pass
        except (TimeoutError, OSError, ssl.SSLError, DataTimeout):
            pass
    await conn.close(wait)


class EarlyTls:
    """A PROT P passive data connection accepted as soon as it arrives, with TLS started as soon
    as the client speaks. aioftp's client runs the data handshake right after connecting, before
    it sends the transfer command (pyftpdlib and aioftp's server accept at once); curl, lftp and
    FileZilla start it only after the 150 reply, and then the transfer runs the handshake itself
    with the ticket policy of its direction."""

    __slots__ = ("accepted", "task", "sock", "started")

    def __init__(
        self,
        listener: Any,
        peer: str | None,
        ctx: ssl.SSLContext,
        timeout: float,
        require_reuse: bool,
    ) -> None:
        loop = asyncio.get_running_loop()
        self.accepted: asyncio.Future[socket.socket] = loop.create_future()
        self.sock: socket.socket | None = None
        self.started = False
        self.task = loop.create_task(self._run(listener, peer, ctx, timeout, require_reuse))
        self.task.add_done_callback(_swallow)

    async def _run(
        self,
        listener: Any,
        peer: str | None,
        ctx: ssl.SSLContext,
        timeout: float,
        require_reuse: bool,
    ) -> TlsData:
        try:
            sock = await listener.accept(peer)
        except BaseException as exc:
            if not self.accepted.done():
                if isinstance(exc, asyncio.CancelledError):
                    self.accepted.cancel()
                else:
                    self.accepted.set_exception(exc)
                    self.accepted.add_done_callback(_swallow)
            raise
        self.sock = sock
        self.accepted.set_result(sock)
        await wait_fd(asyncio.get_running_loop(), sock.fileno(), False)  # the ClientHello
        self.started = True
        # The direction is not known yet: a download's policy (clients that start early read
        # their connection).
        return await wrap_data(sock, ctx, timeout, require_reuse, data_tickets(ctx, False))

    async def claim(self) -> TlsData | None:
        """After the 150: the handshake the client started early, or None (run it yourself)."""
        if self.started:
            return await self.task
        self.task.cancel()
        await asyncio.wait([self.task])
        return None

    def close(self) -> None:
        self.task.cancel()
        if self.sock is not None:
            self.sock.close()


def _swallow(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()  # retrieved: a data connection that never came is not an error to log
