"""What an upload does when its control connection goes away (issue 17, item 2).

The rule: an upload whose data connection reached EOF is committed whole, whatever happens to the
control connection afterwards; one cut before EOF is abandoned (with atomic uploads the previous
file stays untouched, and no temporary file is left).

The server learns of the two events in whatever order its event loop sees them, not the order
the client made them: a client that closes its data connection and then its control connection
(or exits, which closes both) may have its control connection's loss noticed first. So when the
control connection goes, the receiving loop is told (``Hangup.hang_up``) and from then on takes
only what the kernel already holds for it: if the client's EOF is among it, the upload ends
normally and is committed; if reading would wait, the upload was cut before its end
(``UploadCut``). A client that crashes mid-upload closes both connections too: its upload is
complete only if its EOF arrived, i.e. what the server has is what it sent before closing.

After a ``QUIT`` the control connection's loss is no cut: the client ended its session in order,
and the transfer runs to its end (see ``ControlChannel.connection_lost``).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from .sockets import wake

__all__ = ["Hangup", "UploadCut"]


class UploadCut(Exception):
    """The control connection went away before the upload's data connection reached EOF."""


class Hangup:
    """Shared by one upload's receiving loop, armed while it reads the data connection, and its
    control channel, which calls ``hang_up`` when the control connection goes."""

    __slots__ = ("set", "armed", "waiter", "sock", "cut")

    def __init__(self) -> None:
        self.set = False  # the control connection is gone: take nothing that needs waiting
        self.armed = False  # a receiving loop reads the data connection and will honour ``set``
        self.waiter: asyncio.Future[None] | None = None  # its wait for data (``wait``)
        self.sock: socket.socket | None = None  # its socket while a bulk thread reads it
        self.cut = False  # the bulk thread was woken by us, not by the client's EOF

    def arm(self) -> None:
        self.armed = True

    def disarm(self) -> None:
        self.armed = False
        self.sock = None

    def hang_up(self) -> bool:
        """The control connection is gone. True if the receiving loop takes it from here (it
        ends by itself, at once); False if nobody is receiving: the caller cancels."""
        self.set = True
        if not self.armed:
            return False
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            # Ends the wait: the receiver reads what is there, then UploadCut. ``wait``'s waiter
            # is a task running the stream's wait (cancelled); ``wait_fd``'s a bare future.
            if isinstance(waiter, asyncio.Task):
                waiter.cancel()
            else:
                waiter.set_result(None)
        sock = self.sock
        if sock is not None:
            self._wake_bulk(sock)
        return True

    def _wake_bulk(self, sock: socket.socket) -> None:
        """A bulk thread is blocked in ``recv`` (or about to be). If the kernel holds nothing for
        it, there is no EOF to come without waiting: mark the upload cut and wake the thread
        (its ``recv`` then returns 0). If it holds bytes or the EOF, the thread gets them at
        once and, seeing ``set``, goes on without blocking (``thread_recv``)."""
        try:
            sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            self.cut = True
            try:
                sock.shutdown(socket.SHUT_RD)
            except OSError:
                pass
        except OSError:
            # A reset. The error is reported once: this peek took it, and the thread's recv now
            # returns 0 as if the client's EOF had come. The upload was cut, not ended.
            self.cut = True

    async def wait(self, readable: Callable[[], Awaitable[None]]) -> None:
        """Await ``readable()`` (the stream's wait for data). ``UploadCut`` at once if hung up;
        a hang-up during the wait ends it early, so that the receiver reads what is there and
        ends with ``UploadCut`` where it would wait again."""
        if self.set:
            raise UploadCut()
        fut = asyncio.ensure_future(readable())
        self.waiter = fut
        try:
            await asyncio.wait([fut])
        finally:
            self.waiter = None
            if not fut.done():  # we were cancelled (ABOR, timeout): stop the wait, let it clean up
                fut.cancel()
                await asyncio.wait([fut])
        if not fut.cancelled():
            fut.result()  # a stream's own error (a TLS data timeout)

    async def wait_fd(self, loop: asyncio.AbstractEventLoop, fd: int) -> None:
        """``wait`` for a plain socket's ``fd``: the wait is a bare future woken by the loop's
        reader or by ``hang_up``, with no task and no ``asyncio.wait`` per wait (an upload waits
        once per block it receives)."""
        if self.set:
            raise UploadCut()
        fut: asyncio.Future[None] = loop.create_future()
        loop.add_reader(fd, wake, fut)
        self.waiter = fut
        try:
            await fut
        finally:
            self.waiter = None
            loop.remove_reader(fd)

    def thread_recv(self, sock: socket.socket, view: Any) -> int:
        """``sock.recv_into(view)`` in a bulk thread: blocking until the control connection goes,
        then only what is there (``UploadCut`` where it would block)."""
        if self.set:
            try:
                return sock.recv_into(view, 0, socket.MSG_DONTWAIT)
            except BlockingIOError:
                raise UploadCut() from None
        return sock.recv_into(view)
