"""The implicit-FTPS listener (``implicit_tls_port``): TLS from the first byte.

This listener accepts connections itself rather than through ``create_server(ssl=...)``, for two
reasons. The connection is *admitted* (a session slot and its address's ``max_per_ip`` count) at
accept, before the handshake: a client that opens handshakes and never finishes them takes the
slots it holds and no more (issue 16.1: they were not counted at all). And behind a balancer the
PROXY header comes before TLS, often in the same segment as the ClientHello: exactly the header's
bytes are read off the raw socket (``proxyhdr.read_exactly``), then TLS runs on the same socket
(``connect_accepted_socket`` with ftpd's own TLS layer, ``tls_control.py``, as for AUTH TLS).
A task per connection lives until its handshake is done; the slot passes to the channel then,
or is released here on every other exit (a failed, stalled or abandoned handshake, a refused
header, shutdown).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from typing import TYPE_CHECKING

from ..proto.proxy import ProxyError
from .control import ControlChannel
from .proxyhdr import read_exactly
from .sockets import DataTimeout, norm_ip
from .tls_control import TlsControl

if TYPE_CHECKING:
    from .host import SessionHost

__all__ = ["ImplicitListener"]

log = logging.getLogger("ftpd")

ACCEPT_RETRY_DELAY = 1.0  # out of file descriptors: wait before accepting again (as asyncio does)
# accept() errors that concern one connection only (it was reset before we took it).
_ACCEPT_SKIP = (errno.ECONNABORTED, errno.EPROTO, errno.EPERM, errno.EINTR)


class ImplicitListener:
    """Accept loop and per-connection hand-off of the implicit-TLS port."""

    def __init__(self, host: SessionHost, sock: socket.socket) -> None:
        self.host = host
        self.sock = sock
        self.accept_task: asyncio.Task[None] | None = None
        self.handoffs: set[asyncio.Task[None]] = set()
        self.headers_pending = 0  # connections of trusted peers still reading their header

    def start(self) -> None:
        self.accept_task = asyncio.get_running_loop().create_task(self._serve())

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, addr = await loop.sock_accept(self.sock)
            except OSError as exc:
                if exc.errno in _ACCEPT_SKIP:
                    continue
                # EMFILE/ENFILE/ENOBUFS/ENOMEM: the connection waits in the backlog meanwhile.
                log.error(
                    "implicit FTPS listener: accept failed (%s); retrying in %.0f s",
                    exc.strerror or exc,
                    ACCEPT_RETRY_DELAY,
                )
                await asyncio.sleep(ACCEPT_RETRY_DELAY)
                continue
            task = loop.create_task(self._connection(conn, (addr[0], addr[1])))
            self.handoffs.add(task)
            task.add_done_callback(self.handoffs.discard)

    async def _connection(self, conn: socket.socket, peer: tuple[str, int]) -> None:
        """One accepted connection: its PROXY header (trusted peers), admission, TLS, a session."""
        host = self.host
        cfg = host.config
        handed = False
        slot = None
        try:
            conn.setblocking(False)
            if host.proxy.trusts(peer[0]):
                real = await self._header(conn, peer)
                if real is None:
                    return
                peer = real
            got = host.admit(norm_ip(peer[0]))
            if isinstance(got, str):
                # No TLS yet, so no way to say 421: RST, as a full server does on its backlog.
                log.info("refused %s:%d (implicit FTPS): %s", peer[0], peer[1], got)
                return
            slot = got
            assert host.tls_context is not None  # the listener exists only with one
            # The channel hears of the connection once the handshake is done (it greets then).
            layer = TlsControl(
                host.tls_context,
                ControlChannel(host, peer, slot),
                cfg.tls_handshake_timeout,
                greet=True,
            )
            waiter = layer.handshake
            assert waiter is not None
            handed = True  # from here the transport owns the socket (and closes it on failure)
            try:
                await asyncio.get_running_loop().connect_accepted_socket(lambda: layer, conn)
                await waiter
            except BaseException:
                if not layer.secure:  # the handshake failed, or shutdown cancelled it
                    waiter.cancel()  # waited for no more (its error, if any, is retrieved)
                    layer.abort()
                raise
        except (OSError, TimeoutError) as exc:  # ssl.SSLError is an OSError
            # A failed or stalled handshake: as quiet as a create_server listener.
            log.debug("implicit FTPS connection from %s:%d failed: %r", peer[0], peer[1], exc)
        except Exception:  # our bug: logged, and the listener goes on
            log.exception("implicit FTPS connection from %s:%d", peer[0], peer[1])
        finally:
            # The channel took the slot if its handshake finished; else it is given back here,
            # whatever ended the attempt (reset, timeout, shutdown's cancellation).
            if slot is not None and slot.owner is None:
                slot.release()
            if not handed:
                conn.close()

    async def _header(self, conn: socket.socket, peer: tuple[str, int]) -> tuple[str, int] | None:
        """The real client named by a trusted balancer's header (None: drop the connection)."""
        policy = self.host.proxy
        if self.headers_pending >= self.host.config.backlog:
            log.warning(
                "closing connection from %s:%d: %d connections already waiting for "
                "their PROXY header",
                peer[0],
                peer[1],
                self.headers_pending,
            )
            return None
        self.headers_pending += 1
        try:
            header = await read_exactly(conn, policy.required, policy.timeout)
        except DataTimeout:
            log.info("closing connection from %s:%d: no complete PROXY header in time", *peer)
            return None
        except ProxyError as exc:  # NotProxy included: "no PROXY header" (required)
            log.info("closing connection from %s:%d: %s", peer[0], peer[1], exc)
            return None
        finally:
            self.headers_pending -= 1
        if header is None:
            log.debug("connection from %s:%d closed before its PROXY header", *peer)
            return None
        if header.src is not None:
            log.debug("PROXY header from %s: client %s:%d", peer[0], *header.src)
            return header.src
        return peer

    async def stop(self) -> None:
        """Stop accepting and drop the connections not yet sessions (header or handshake)."""
        tasks = list(self.handoffs)
        if self.accept_task is not None:
            tasks.append(self.accept_task)
            self.accept_task = None
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)
        self.sock.close()
