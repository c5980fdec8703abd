"""Socket helpers shared by the listeners, the data channels and TLS on data connections.

Data connections are plain non-blocking sockets driven with ``add_reader``/``add_writer`` futures
rather than asyncio transports (zero-copy ``os.sendfile``, large reusable receive buffers); these
are the few primitives that drive them, plus listening-socket set-up and address normalisation.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable
from typing import Any

__all__ = ["DataTimeout", "wake", "wait_fd", "sendall", "norm_ip", "listen_socket", "abort_socket"]

# SO_LINGER {on, 0 s}: close() sends RST and frees the socket at once (no FIN_WAIT, no buffer).
_LINGER_ABORT = b"\x01\x00\x00\x00\x00\x00\x00\x00"


class DataTimeout(Exception):
    """The data connection did not come, or stalled for longer than the data timeout."""


def wake(fut: asyncio.Future[None]) -> None:
    """A reader or writer callback: completes the future a wait is on (once)."""
    if not fut.done():
        fut.set_result(None)


def _expire(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_exception(DataTimeout())


async def wait_fd(
    loop: asyncio.AbstractEventLoop, fd: int, write: bool, timeout: float | None = None
) -> None:
    """Wait until ``fd`` is readable/writable. Transfers pass no timeout: the server's sweeper
    aborts a transfer that makes no progress for ``data_timeout`` (no timer per wait)."""
    fut: asyncio.Future[None] = loop.create_future()
    add: Callable[..., Any] = loop.add_writer if write else loop.add_reader
    remove: Callable[[int], Any] = loop.remove_writer if write else loop.remove_reader
    add(fd, wake, fut)
    timer = loop.call_later(timeout, _expire, fut) if timeout is not None else None
    try:
        await fut
    finally:
        remove(fd)
        if timer is not None:
            timer.cancel()


async def sendall(
    sock: socket.socket, data: bytes | memoryview, timeout: float | None = None
) -> None:
    """Send all of ``data`` on a non-blocking socket, waiting for room as needed."""
    view = memoryview(data)
    loop = asyncio.get_running_loop()
    while view:
        try:
            n = sock.send(view)
        except BlockingIOError:
            await wait_fd(loop, sock.fileno(), True, timeout)
            continue
        view = view[n:]


def norm_ip(ip: str) -> str:
    """Canonical text of an address; IPv4-mapped IPv6 becomes IPv4 (dual-stack sockets)."""
    if ":" not in ip:
        return ip  # IPv4 as the socket layer reports it: already canonical
    try:
        a = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return ip
    if isinstance(a, ipaddress.IPv6Address) and a.ipv4_mapped is not None:
        return str(a.ipv4_mapped)
    return str(a)


def abort_socket(sock: socket.socket) -> None:
    """Close with RST: nothing more is sent, and the kernel frees the buffers at once."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ABORT)
    except OSError:
        pass
    sock.close()


def listen_socket(host: str, port: int, backlog: int, reuse_port: bool = False) -> socket.socket:
    """A non-blocking listening socket on ``host``:``port`` ('::' serves IPv4 too)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        # Inherited by accepted sockets (Linux copies the flag): keeps the urgent byte of a Telnet
        # SYNCH (lftp's ABOR) or ftplib's MSG_OOB "ABOR" in the stream instead of losing it.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_OOBINLINE, 1)
        if family == socket.AF_INET6 and host == "::":
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock
