"""Reading a load balancer's PROXY header: the one place that does it, for every connection kind.

The format and the trust policy are sans-IO (``ftpd.proto.proxy``); this module is the IO half:

- ``HeaderPhase``: the control channel (an ``asyncio.Protocol``) gets bytes pushed to it; it
  feeds them here until a header is complete (or its deadline passes), then processes what
  followed as FTP.
- ``read_exactly``: data connections and the implicit-TLS listener read the header off the raw
  socket and not one byte more (a TLS ClientHello or upload bytes after it stay in the socket).

The spec: "The receiver MUST NOT start processing the connection before it receives a complete
and valid PROXY protocol header"; only peers in ``proxy_trusted`` may send one.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

from ..proto.proxy import MAX_HEADER, NotProxy, ProxyError, ProxyHeader, ProxyPolicy, parse
from .sockets import DataTimeout, wait_fd

__all__ = ["HeaderBuffer", "HeaderPhase", "read_exactly", "DIRECT"]

DIRECT = ProxyHeader(0)  # no header (optional mode): the connection's own endpoints count


class HeaderBuffer:
    """The header phase of a pushed byte stream."""

    __slots__ = ("buf", "required")

    def __init__(self, required: bool) -> None:
        self.buf = b""
        self.required = required

    @property
    def empty(self) -> bool:
        return not self.buf

    def feed(self, data: bytes) -> tuple[ProxyHeader, bytes] | None:
        """The header and the bytes after it once complete, else None. ``ProxyError`` for a
        broken header (or none when one is required)."""
        buf = self.buf = self.buf + data
        try:
            header = parse(buf)
        except NotProxy:
            if self.required:
                raise ProxyError("no PROXY header") from None
            return DIRECT, buf  # optional: a direct client, its bytes are FTP
        if header is None:
            return None
        self.buf = b""
        return header, buf[header.length :]


async def read_exactly(
    conn: socket.socket, required: bool, timeout: float, idle_ok: bool = False
) -> ProxyHeader | None:
    """Read a PROXY header from the raw socket and not one byte more; None if the peer closed
    first.

    Peek what is there and parse it: a complete header is then received exactly (its length);
    an incomplete one means every byte peeked belongs to the header, so those are received and we
    wait for the socket to be readable again (no polling). A peer whose bytes start no header is
    headerless (``DIRECT``) unless ``required``. ``ProxyError`` for a broken header (or none
    under ``required``); ``DataTimeout`` if no header is complete within ``timeout``, except that
    with ``idle_ok`` a peer that sent nothing at all is headerless (a data connection's client may
    be waiting for us to speak)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    got = b""  # bytes of the header received so far
    while True:
        try:
            peeked: bytes | None = conn.recv(MAX_HEADER - len(got), socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            peeked = None
        if peeked == b"":
            return None
        if peeked:
            try:
                header = parse(got + peeked)
            except NotProxy:
                if got:  # began like a header, then went astray
                    raise ProxyError("malformed PROXY header") from None
                if required:
                    raise ProxyError("no PROXY header") from None
                return DIRECT
            take = len(peeked) if header is None else header.length - len(got)
            got += _recv_exactly(conn, take)
            if header is not None:
                return header
        remaining = deadline - loop.time()
        if remaining <= 0:
            if idle_ok and not got and not required:
                return DIRECT
            raise DataTimeout()
        try:
            await wait_fd(loop, conn.fileno(), False, remaining)
        except DataTimeout:
            continue  # decided at the top of the loop


def _recv_exactly(conn: socket.socket, n: int) -> bytes:
    """``n`` bytes already peeked, hence in the socket buffer: these reads do not block."""
    chunks = []
    while n > 0:
        chunk = conn.recv(n)
        if not chunk:
            raise ConnectionResetError("PROXY header cut short")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


class HeaderPhase:
    """The control channel's header phase: bytes pushed in (``feed``), a deadline, and one of two
    calls back: ``done(header, rest)`` (the session starts; ``rest`` is FTP) or ``refuse(why)``."""

    __slots__ = ("buffer", "timer", "done", "refuse")

    def __init__(
        self,
        policy: ProxyPolicy,
        done: Callable[[ProxyHeader, bytes], None],
        refuse: Callable[[str], None],
    ) -> None:
        self.buffer = HeaderBuffer(policy.required)
        self.done = done
        self.refuse = refuse
        self.timer: asyncio.TimerHandle | None = asyncio.get_running_loop().call_later(
            policy.timeout, self._timeout
        )

    def feed(self, data: bytes) -> None:
        try:
            got = self.buffer.feed(data)
        except ProxyError as exc:
            self.cancel()
            self.refuse(str(exc))
            return
        if got is not None:
            self.cancel()
            self.done(*got)

    def _timeout(self) -> None:
        self.timer = None
        if self.buffer.empty and not self.buffer.required:
            self.done(DIRECT, b"")  # optional: nothing came, a direct client awaits our 220
        else:
            self.refuse("no complete PROXY header in time")

    def cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
