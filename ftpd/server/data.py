"""Data channels: the passive port pool, active connects, and the transfer pumps.

Data connections are plain non-blocking sockets driven with ``add_reader``/``add_writer`` futures
rather than asyncio transports: that lets RETR use ``os.sendfile`` (zero copy; uvloop has no
``loop.sendfile``) and STOR receive straight into large reusable buffers, with no per-chunk objects.
A transfer that makes no progress for ``data_timeout`` is aborted by the server's sweeper.

- Passive: the port pool is ``passive.py`` (a port waits for one session per client address at once;
  re-exported here).
- Active: connect to the address PORT/EPRT gave (checked for bounce by the protocol core), from the
  control connection's local address.
- Pumps: one per direction (``send_bytes``/``send_file``, ``receive_upload``) over a ``Stream``,
  plain (``PlainStream``) or TLS (``tls.TlsData``); the plain one adds sendfile and bulk threads.
"""

from __future__ import annotations

import asyncio
import logging
import mmap
import os
import socket
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ..proto.textmode import FromNetwork, ToNetwork
from .hangup import Hangup, UploadCut
from .passive import PassiveListener, PassivePool
from .rates import RateLimiter
from .sockets import DataTimeout, norm_ip, sendall, wait_fd

if TYPE_CHECKING:
    from ..fs.base import Reader, Writer

T = TypeVar("T")

__all__ = [
    "PassivePool",
    "DataTimeout",
    "PassiveListener",
    "connect_active",
    "Stream",
    "PlainStream",
    "send_file",
    "send_bytes",
    "receive_upload",
    "BulkThreads",
]

log = logging.getLogger("ftpd.data")

RECV_BUF = 256 * 1024  # per buffer; an upload uses two (double buffering)
BULK_AFTER = 4 * 1024 * 1024  # an upload this far along is big: finish it in a bulk thread
BULK_BUF = 1024 * 1024  # per write in a bulk thread
READ_BLOCK = 256 * 1024  # RETR blocks when sendfile cannot be used
# Per os.sendfile call, then the pump yields to the loop: one download cannot hold the others
# (1 MiB to loopback: p99 ~150 µs per call here, docs/PERFORMANCE.md "The IO model").
SENDFILE_MAX = 1024 * 1024


async def connect_active(host: str, port: int, local_ip: str, timeout: float) -> socket.socket:
    """Connect to the client's PORT/EPRT address from our control connection's local address."""
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        src = norm_ip(local_ip)
        if (":" in src) == (family == socket.AF_INET6):
            sock.bind((src, 0))
        try:
            await asyncio.wait_for(loop.sock_connect(sock, (host, port)), timeout)
        except TimeoutError:
            raise DataTimeout() from None
    except BaseException:
        sock.close()
        raise
    return sock


class Stream(Protocol):
    """A data connection as the pumps see it: plain (``PlainStream``) or TLS (``tls.TlsData``).
    One pump per direction serves both; the plain stream adds zero-copy sends and bulk threads."""

    def raw_socket(self) -> socket.socket | None:
        """The socket itself when bytes go to it unchanged (sendfile, bulk threads), else None."""
        ...

    def try_send(self, data: bytes | memoryview) -> int:
        """Send what fits now, without waiting; the count sent."""
        ...

    async def send(self, data: bytes | memoryview) -> None: ...

    def recv_into_now(self, view: memoryview) -> int | None:
        """Receive into ``view`` what is there: the count, 0 at the end of the data, None if
        nothing is there yet (then await ``readable``). A TLS stream cut short raises."""
        ...

    async def readable(self) -> None: ...


class PlainStream:
    """A plain data connection (a non-blocking socket)."""

    __slots__ = ("sock", "fd", "loop")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.loop = asyncio.get_running_loop()

    def raw_socket(self) -> socket.socket:
        return self.sock

    def try_send(self, data: bytes | memoryview) -> int:
        try:
            return self.sock.send(data)
        except BlockingIOError:
            return 0

    async def send(self, data: bytes | memoryview) -> None:
        await sendall(self.sock, data)

    def recv_into_now(self, view: memoryview) -> int | None:
        try:
            return self.sock.recv_into(view)
        except BlockingIOError:
            return None

    async def readable(self) -> None:
        await wait_fd(self.loop, self.fd, False)


async def send_bytes(
    stream: Stream,
    data: bytes,
    progress: Callable[[int], None],
    before_wait: Callable[[], None] | None = None,
) -> None:
    """Send a prepared payload (a listing). ``before_wait`` runs once, before the first wait
    (the caller's held 150 reply goes out then, see ``TransferTask._pump``)."""
    n = stream.try_send(data)
    if n < len(data):
        if before_wait is not None:
            before_wait()
        await stream.send(memoryview(data)[n:])
    progress(len(data))


async def send_file(
    stream: Stream,
    reader: Reader,
    ascii: bool,
    progress: Callable[[int], None],
    before_wait: Callable[[], None] | None = None,
    limit: RateLimiter | None = None,
    listing: bool = False,
) -> None:
    """RETR: zero-copy ``os.sendfile`` for binary transfers on a plain stream, else blocks
    (converted in TYPE A). ``before_wait`` runs once, before the first wait (see ``send_bytes``).
    A ``listing`` (a stream read in batches) holds it until the first wait on the socket
    instead, so that a small directory's 150 still goes out with its 226.

    ``sendfile`` reads the file synchronously, so it is only called on a slice the reader says
    is in the page cache (``resident``); otherwise ``fill`` brings the slice in from a pool
    thread first (``ftpd.fs.local_io``). After each slice the pump yields to the loop. With a
    ``limit`` (rates.py) each slice is what the limiter grants and the pump sleeps in between;
    blocks are a quantum each, paid for after they are sent."""
    loop = asyncio.get_running_loop()
    fd = reader.fileno() if not ascii else None
    sock = stream.raw_socket()
    if fd is not None and sock is not None:
        offset = reader.position()
        remaining = reader.size - offset
        out = sock.fileno()
        # Readers that can tell what the page cache holds (``LocalReader``); others are sent as
        # they are (a backend without them has no disk under its fd).
        resident = getattr(reader, "resident", None)
        fill = getattr(reader, "fill", None)
        burst = 0  # bytes sent since the pump last let the loop run
        while remaining > 0:
            count = min(remaining, SENDFILE_MAX - burst)
            if limit is not None:
                granted = limit.grant(count)
                if not granted:
                    if before_wait is not None:
                        before_wait()
                        before_wait = None
                    await limit.wait(count)
                    burst = 0
                    continue
                count = granted
            if resident is not None and fill is not None and not resident(count):
                if before_wait is not None:
                    before_wait()
                    before_wait = None
                await fill(count)
            try:
                n = os.sendfile(out, fd, offset, count)
            except BlockingIOError:
                if limit is not None:
                    limit.refund(count)
                if before_wait is not None:
                    before_wait()
                    before_wait = None
                await wait_fd(loop, out, True)
                burst = 0
                continue
            if limit is not None:
                limit.refund(count - n)
            if n == 0:
                break  # the file shrank under us: send what there was
            offset += n
            remaining -= n
            reader.advance(n)
            progress(n)
            burst += n
            if burst >= SENDFILE_MAX and remaining > 0:
                # A client that keeps up never makes us wait: let the others run.
                burst = 0
                if before_wait is not None:
                    before_wait()
                    before_wait = None
                await asyncio.sleep(0)
        return
    if before_wait is not None and not listing:
        before_wait()  # block reads wait on the IO pool
        before_wait = None
    conv = ToNetwork() if ascii else None
    size = READ_BLOCK if limit is None else limit.block(READ_BLOCK)
    while True:
        block = await reader.read(size)
        if not block:
            break
        progress(len(block))
        if conv is not None:
            block = conv.convert(block)
        if before_wait is not None:
            # The held 150 must be out before we wait on the socket (a client may read the
            # data connection only after the 150); waits on the IO pool need not release it.
            n = stream.try_send(block)
            if n == len(block):
                continue
            before_wait()
            before_wait = None
            await stream.send(memoryview(block)[n:])
            continue
        await stream.send(block)
        if limit is not None:
            await limit.spend(len(block))
    if conv is not None:
        tail = conv.flush()
        if tail:
            await stream.send(tail)


class BulkThreads:
    """A few threads for the bulk of large uploads: there a blocking ``recv_into`` + ``write`` loop
    runs at disk/loopback speed with one executor round trip per upload instead of one per block.
    Used only while a thread is free, so uploads never queue behind each other."""

    __slots__ = ("executor", "size", "busy")

    def __init__(self, executor: Any, size: int) -> None:
        self.executor = executor
        self.size = size
        self.busy = 0


def _bulk_receive(
    sock: socket.socket,
    write: Callable[[memoryview], None],
    progress: Callable[[int], None],
    hangup: Hangup | None = None,
) -> None:
    buf = mmap.mmap(-1, BULK_BUF)  # pages come as they are filled (see _take_buffer)
    view = memoryview(buf)
    recv_into: Callable[[memoryview], int] = sock.recv_into
    if hangup is not None:
        recv_into = partial(hangup.thread_recv, sock)
    while True:
        filled = 0
        while filled < BULK_BUF:
            n = recv_into(view[filled:])
            if n == 0:
                break
            filled += n
        if filled:
            write(view[:filled])
            progress(filled)
        if filled < BULK_BUF:
            return


async def receive_upload(
    stream: Stream,
    writer: Writer,
    ascii: bool,
    progress: Callable[[int], None],
    bulk: BulkThreads | None = None,
    finish: Callable[[bytes | memoryview], Awaitable[T]] | None = None,
    hangup: Hangup | None = None,
    limit: RateLimiter | None = None,
) -> T | None:
    """STOR/APPE: receive into large buffers; write one while the next fills (double buffering).
    Past ``BULK_AFTER`` bytes a binary upload moves to a bulk thread when one is free.

    At end of data, ``finish(tail)`` gets the last bytes not yet written (its result is returned):
    the caller commits them with the upload in one hop, so a small upload costs no separate
    write. Without ``finish`` the tail is written here. Once ``hangup`` is hung up (the control
    connection is gone) nothing more is waited for: ``UploadCut`` unless the end of the data
    (EOF, or a TLS close_notify) is already there (hangup.py)."""
    bufs = (_take_buffer(), _take_buffer())
    which = 0
    pending: asyncio.Future[Any] | None = None
    conv = FromNetwork() if ascii else None
    received = 0
    sock = stream.raw_socket()
    loop = asyncio.get_running_loop()
    # A limited upload stays on the loop, where it can stop reading between grants.
    plain = bulk is not None and conv is None and sock is not None and limit is None
    blocking = writer.blocking_write() if plain else None
    reusable = False  # the buffers go back to the free list only if nothing can still read them

    def flush(data: memoryview) -> asyncio.Future[Any]:
        chunk: bytes | memoryview = conv.convert(data) if conv is not None else data
        return asyncio.ensure_future(writer.write(chunk))

    if hangup is not None:
        hangup.arm()
    try:
        while True:
            view = memoryview(bufs[which])
            filled = 0
            eof = False
            while filled < RECV_BUF:
                end = RECV_BUF
                if limit is not None:
                    # Read no more than granted; while waiting nothing is read, so the
                    # client's TCP window closes: it is slowed, not buffered.
                    granted = limit.grant(RECV_BUF - filled)
                    if not granted:
                        if filled and pending is None:
                            break  # write what we have while the bucket refills
                        await limit.wait(RECV_BUF - filled)
                        continue
                    end = filled + granted
                n = stream.recv_into_now(view[filled:end])
                if limit is not None:
                    limit.refund(end - filled - (n or 0))
                if n is None:
                    if filled and pending is None:
                        break  # nothing queued for disk: write what we have rather than wait
                    if hangup is None:
                        await stream.readable()
                    elif sock is not None:
                        await hangup.wait_fd(loop, sock.fileno())  # a plain stream: no task
                    else:
                        await hangup.wait(stream.readable)
                    continue
                if n == 0:
                    eof = True
                    break
                filled += n
                progress(n)
            received += filled
            if pending is not None:
                await pending
                pending = None
            if eof:
                tail: bytes | memoryview = view[:filled]
                if conv is not None:
                    tail = conv.convert(tail) + conv.flush()
                break
            if filled:
                pending = flush(view[:filled])
                which ^= 1
            if blocking is not None and received >= BULK_AFTER and bulk.busy < bulk.size:  # type: ignore[union-attr]
                if pending is not None:
                    await pending
                pending = None
                await _receive_in_thread(sock, blocking, progress, bulk, hangup)  # type: ignore[arg-type]
                tail = b""
                break
        if hangup is not None:
            hangup.disarm()  # the end of the data came: committed whatever happens now
        if finish is not None:
            result = await finish(tail)  # the buffers stay ours until it has written the tail
        else:
            if tail:
                await writer.write(tail)
            result = None
        reusable = True
        return result
    finally:
        if hangup is not None:
            hangup.disarm()
        if pending is not None:
            pending.cancel()
            try:
                await pending
            except BaseException:  # noqa: BLE001 - the writer is aborted by the caller
                pass
        # Back to the free list only after a normal end. After a cancellation or an error, a
        # write or a shielded commit may still be reading a buffer in a pool thread: reusing it
        # for the next upload would put that upload's bytes into this file. The garbage
        # collector frees those buffers once the thread is done with them.
        if reusable:
            _give_buffers(bufs)
        else:
            BUFFERS.out -= len(bufs)


# Receive buffers are reused: allocating and zeroing two fresh 256 KiB buffers per upload cost a
# fifth of the server's CPU in small-STOR benchmarks (page faults, memset). The free list is
# bounded, so a burst of concurrent uploads does not pin its memory afterwards. Each buffer is an
# anonymous mapping, not a bytearray: a bytearray is zeroed when made (all 64 pages resident at
# once), a mapping gets a page only where data is received, so a small upload's buffers (and the
# spare ones it leaves) hold a page or two, not 512 KiB (``mixed``: memory per session).
_FREE_BUFFERS: list[mmap.mmap] = []
_MAX_FREE_BUFFERS = 64


class _BufferCount:
    """Receive buffers held by uploads right now (the lifecycle tests check it returns to 0),
    and the most held at once since the last ``trim_buffers``."""

    __slots__ = ("out", "peak")

    def __init__(self) -> None:
        self.out = 0
        self.peak = 0


BUFFERS = _BufferCount()


def _take_buffer() -> mmap.mmap:
    BUFFERS.out += 1
    if BUFFERS.out > BUFFERS.peak:
        BUFFERS.peak = BUFFERS.out
    return _FREE_BUFFERS.pop() if _FREE_BUFFERS else mmap.mmap(-1, RECV_BUF)


def _give_buffers(bufs: tuple[mmap.mmap, ...]) -> None:
    BUFFERS.out -= len(bufs)
    for buf in bufs:
        if len(_FREE_BUFFERS) < _MAX_FREE_BUFFERS:
            _FREE_BUFFERS.append(buf)


def trim_buffers() -> int:
    """Free the spare receive buffers that the uploads since the last call did not need (the
    sweeper calls it every second): a burst's buffers go back to the allocator once the burst is
    over, while steady uploads keep theirs. Returns how many were freed."""
    keep = max(0, BUFFERS.peak - BUFFERS.out)
    BUFFERS.peak = BUFFERS.out
    extra = len(_FREE_BUFFERS) - keep
    if extra > 0:
        del _FREE_BUFFERS[keep:]
    return max(0, extra)


async def _receive_in_thread(
    sock: socket.socket,
    write: Callable[[memoryview], None],
    progress: Callable[[int], None],
    bulk: BulkThreads,
    hangup: Hangup | None = None,
) -> None:
    loop = asyncio.get_running_loop()
    bulk.busy += 1
    sock.setblocking(True)

    def progress_on_loop(n: int) -> None:
        # The transfer's byte count and the session's activity time belong to the loop: the
        # thread only schedules the update (in order, before the future's own completion).
        loop.call_soon_threadsafe(progress, n)

    fut = loop.run_in_executor(bulk.executor, _bulk_receive, sock, write, progress_on_loop, hangup)
    if hangup is not None:
        hangup.sock = sock  # hang_up wakes the thread if nothing is left to read
        if hangup.set:
            hangup.hang_up()
    try:
        await asyncio.shield(fut)
        if hangup is not None and hangup.cut:
            raise UploadCut()  # the thread's recv returned 0 because hang_up shut it down
    except asyncio.CancelledError:
        # ABOR, timeout or shutdown: unblock the thread's recv, and wait for it to stop before the
        # caller closes or aborts the file (the thread must never write to a reused fd).
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        await asyncio.wait([fut])
        raise
    finally:
        bulk.busy -= 1
        if hangup is not None:
            hangup.sock = None
