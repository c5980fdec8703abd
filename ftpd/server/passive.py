"""Passive ports as a capacity: one listening port waits for several sessions at once.

A passive data connection is only ever given to the session whose client address it comes from
(RFC 2577 §5, port theft), so a port is not a per-transfer lock: it can wait for one session *per
client address* at the same time. ``PassivePool.open(local_ip, client)`` returns a lease
(``PassiveListener``) on a port already listening on ``local_ip`` that has no lease for
``client`` yet, and binds a new port of the range only when there is none. Sessions from the same
address get distinct ports; when every port of the range already waits for that address, ``open``
raises ``OSError`` (``425``).

Each listening port (``SharedPort``) accepts when a lease's transfer starts (``accept``: the
client has usually connected by then, so most transfers cost no reader callback and no turn of the
loop; vsftpd too accepts only then), and from a reader callback while a lease waits. It hands
each connection to the lease of its client address: the peer's address, or behind a trusted load
balancer the client its PROXY header names (read per connection, off the raw socket, in a task,
so a slow header holds up no one else). A connection from an address with no lease is closed and
the leases keep waiting (Pure-FTPd's behaviour: a port thief cannot make a transfer fail). A lease
leaves its port the moment it has its connection (the port is then free for another session of
that address) or when it is closed; a port with no lease left is closed. ``pasv_promiscuous``
leases (any address may connect) take a port of their own.

Worker processes share the whole range (``PortMap``): one byte per port in shared memory says
which worker listens on it, so a worker skips ports another holds without a failing ``bind``. The
kernel stays the arbiter (passive sockets have no SO_REUSEPORT: a port held elsewhere fails with
EADDRINUSE and the next is tried); the map is only written by the worker that bound the port.
SO_REUSEADDR lets a port be listened on again while connections accepted on it sit in TIME_WAIT.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import mmap
import random
import socket
from collections.abc import Iterator

from ..proto.proxy import ProxyError, ProxyPolicy
from . import proxyhdr
from .sockets import DataTimeout, norm_ip

__all__ = ["PassivePool", "PassiveListener", "SharedPort", "PortMap"]

log = logging.getLogger("ftpd.data")

BACKLOG = 64  # a port may wait for many addresses at once; each connects once
_FREE = 0
# accept() errors that concern one connection only (it was reset before we took it).
_ONE_CONNECTION = (errno.ECONNABORTED, errno.EPROTO, errno.EPERM)
_RETRY_ACCEPT = 0.1  # seconds a port stops accepting after accept() failed (EMFILE...)
_NONBLOCK = getattr(socket, "SOCK_NONBLOCK", 0)


class PortMap:
    """Which worker listens on which port of the passive range: one byte per port, 0 for none,
    else the worker's index + 1. Created before the fork (``MAP_SHARED``), so all workers see it.
    A hint that saves failing ``bind`` calls, never a lock: see the module docstring."""

    __slots__ = ("first", "count", "mark", "_mm")

    def __init__(self, first: int, last: int) -> None:
        self.first = first
        self.count = last - first + 1
        self.mark = 1  # this process's byte (worker index + 1)
        self._mm = mmap.mmap(-1, self.count)  # MAP_SHARED | MAP_ANONYMOUS, zero-filled

    def set_worker(self, index: int) -> None:
        """This process is worker ``index``; forget ports a dead predecessor held."""
        self.mark = index + 1
        self.reset(index)

    def reset(self, index: int) -> None:
        """Clear the ports worker ``index`` held (its sockets died with it)."""
        mm, mark = self._mm, index + 1
        for i in range(self.count):
            if mm[i] == mark:
                mm[i] = _FREE

    def holder(self, port: int) -> int:
        """The worker index + 1 that holds ``port``, or 0."""
        return self._mm[port - self.first]

    def claim(self, port: int) -> None:
        self._mm[port - self.first] = self.mark

    def release(self, port: int) -> None:
        i = port - self.first
        if self._mm[i] == self.mark:
            self._mm[i] = _FREE

    def candidates(self) -> Iterator[int]:
        """Ports no worker holds, each at most once, from a random start (RFC 2577 §5: harder
        to guess). Read lazily: another worker may take or give back ports meanwhile."""
        mm, count, zero = self._mm, self.count, bytes([_FREE])
        start = random.randrange(count)
        for lo, hi in ((start, count), (0, start)):
            i = lo
            while i < hi:
                i = mm.find(zero, i, hi)
                if i < 0:
                    break
                yield self.first + i
                i += 1

    def in_use(self) -> int:
        """Ports held by any worker."""
        return self.count - self._mm[:].count(bytes([_FREE]))


class PassivePool:
    """The passive port range as seen by one process (see the module docstring)."""

    __slots__ = ("first", "last", "proxy", "ports", "shareable", "per_client", "map")

    def __init__(
        self,
        first: int,
        last: int,
        proxy: ProxyPolicy | None = None,
        portmap: PortMap | None = None,
    ) -> None:
        self.first = first
        self.last = last
        self.proxy = proxy  # PROXY headers are read on data connections as on control ones
        self.map = portmap if portmap is not None else PortMap(first, last)
        self.ports: dict[tuple[str, int], SharedPort] = {}  # listening in this process
        # Ports that take more leases, per local address; leases per (local address, client):
        # when a client has one on every shareable port, no port needs to be scanned.
        self.shareable: dict[str, dict[int, SharedPort]] = {}
        self.per_client: dict[tuple[str, str], int] = {}

    @property
    def in_use(self) -> dict[tuple[str, int], SharedPort]:
        """The ports this process listens on now."""
        return self.ports

    def pending(self) -> int:
        """Leases waiting for their data connection in this process."""
        return sum(len(p.leases) for p in self.ports.values())

    def open(self, local_ip: str, client: str | None) -> PassiveListener:
        """A lease on a port of the range on ``local_ip`` for a data connection from ``client``
        (any address if None: a port of its own). ``OSError`` if every port is taken."""
        ip = norm_ip(local_ip)
        if client is not None:
            shared = self._shared_port(ip, client)
            if shared is not None:
                return shared.lease(client)
        shared = self._bind(ip, exclusive=client is None)
        return shared.lease(client)

    def _shared_port(self, ip: str, client: str) -> SharedPort | None:
        ports = self.shareable.get(ip)
        if not ports or self.per_client.get((ip, client), 0) >= len(ports):
            return None
        for shared in ports.values():
            if client not in shared.leases:
                return shared
        return None

    def _bind(self, ip: str, exclusive: bool) -> SharedPort:
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        for port in self.map.candidates():
            if (ip, port) in self.ports:
                continue
            # Non-blocking from creation (one syscall less than setblocking afterwards).
            sock = socket.socket(family, socket.SOCK_STREAM | _NONBLOCK)
            try:
                # TIME_WAIT is on the accepted sockets: the port may be listened on again at once.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((ip, port))
                sock.listen(1 if exclusive else BACKLOG)
            except OSError as exc:
                sock.close()
                if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                    continue  # another worker, another program: the next port
                raise
            if not _NONBLOCK:
                sock.setblocking(False)
            self.map.claim(port)
            shared = SharedPort(self, sock, ip, port, exclusive)
            self.ports[(ip, port)] = shared
            if not exclusive:
                self.shareable.setdefault(ip, {})[port] = shared
            return shared
        raise OSError(errno.EADDRINUSE, "no free passive port")

    def _count(self, ip: str, client: str | None, delta: int) -> None:
        if client is None:
            return
        key = (ip, client)
        n = self.per_client.get(key, 0) + delta
        if n > 0:
            self.per_client[key] = n
        else:
            self.per_client.pop(key, None)

    def _closed(self, shared: SharedPort) -> None:
        self.ports.pop((shared.ip, shared.port), None)
        ports = self.shareable.get(shared.ip)
        if ports is not None:
            ports.pop(shared.port, None)
            if not ports:
                del self.shareable[shared.ip]
        self.map.release(shared.port)


class SharedPort:
    """One listening passive port and the leases waiting on it, by client address."""

    __slots__ = (
        "pool",
        "sock",
        "family",
        "ip",
        "port",
        "exclusive",
        "leases",
        "headers",
        "reading",
        "paused",
    )

    def __init__(
        self, pool: PassivePool, sock: socket.socket, ip: str, port: int, exclusive: bool
    ) -> None:
        self.pool = pool
        self.sock = sock
        self.family = int(sock.family)  # read once: the property builds an enum each time
        self.ip = ip
        self.port = port
        self.exclusive = exclusive
        self.leases: dict[str | None, PassiveListener] = {}
        # PROXY headers being read, and their connections (closed if the read never ends).
        self.headers: dict[asyncio.Task[None], socket.socket] = {}
        self.reading = False  # a reader callback accepts as connections come
        self.paused = False  # accept() failed (out of descriptors): nothing is accepted for now

    def lease(self, client: str | None) -> PassiveListener:
        lease = PassiveListener(self, client)
        self.leases[client] = lease
        self.pool._count(self.ip, client, 1)
        return lease

    def poll(self) -> None:
        """Accept what the backlog holds now (a lease's transfer is starting)."""
        if not self.paused:
            self._on_readable()

    def want(self) -> None:
        """A lease waits for its connection: accept from a reader callback from now on."""
        if not self.reading and not self.paused and self.sock.fileno() >= 0:
            asyncio.get_running_loop().add_reader(self.sock.fileno(), self._on_readable)
            self.reading = True

    def drop(self, lease: PassiveListener) -> None:
        """``lease`` no longer waits here (it has its connection, or it was closed)."""
        if self.leases.get(lease.client) is lease:
            del self.leases[lease.client]
            self.pool._count(self.ip, lease.client, -1)
            if not self.leases:
                self.close()

    def close(self) -> None:
        if self.sock.fileno() < 0:
            return
        if self.reading:
            asyncio.get_running_loop().remove_reader(self.sock.fileno())
            self.reading = False
        for task in list(self.headers):
            task.cancel()  # its done callback closes its connection
        self.pool.map.release(self.port)  # before the close: a racing bind elsewhere just fails
        self.sock.close()
        self.pool._closed(self)
        leases = list(self.leases.values())
        self.leases.clear()
        for lease in leases:
            self.pool._count(self.ip, lease.client, -1)
            lease.close()

    # ------------------------------------------------------------------ accepting
    def _on_readable(self) -> None:
        proxy = self.pool.proxy
        for _ in range(BACKLOG):  # bounded: other sessions get the loop between bursts
            if self.sock.fileno() < 0:
                return
            try:
                # ``_accept`` + a socket built from known values: ``accept()`` would read the
                # listener's family and type through enum-building properties per connection.
                fd, addr = self.sock._accept()  # type: ignore[attr-defined]
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _ONE_CONNECTION:
                    continue
                self._pause_accepting(exc)  # out of descriptors, or worse: not a busy loop
                return
            conn = socket.socket(self.family, socket.SOCK_STREAM, 0, fd)
            conn.setblocking(False)
            if proxy is not None and proxy.trusts(addr[0]):
                task = asyncio.get_running_loop().create_task(self._read_header(conn, addr[0]))
                self.headers[task] = conn
                task.add_done_callback(self._header_done)
            else:
                self._deliver(conn, addr[0])

    def _header_done(self, task: asyncio.Task[None]) -> None:
        conn = self.headers.pop(task, None)
        if conn is not None:
            conn.close()  # cancelled (the port closed), perhaps before the task ever ran

    def _pause_accepting(self, exc: OSError) -> None:
        log.warning("passive port %d: accept failed (%s); pausing it", self.port, exc)
        loop = asyncio.get_running_loop()
        if self.reading:
            loop.remove_reader(self.sock.fileno())
            self.reading = False
        self.paused = True

        def resume() -> None:
            self.paused = False
            if any(lease.waiter is not None for lease in self.leases.values()):
                self.want()

        loop.call_later(_RETRY_ACCEPT, resume)

    async def _read_header(self, conn: socket.socket, balancer: str) -> None:
        """Behind a load balancer the connection's client is the one its PROXY header names, and
        that is what is compared with the sessions' real clients."""
        proxy = self.pool.proxy
        assert proxy is not None
        try:
            header = await proxyhdr.read_exactly(conn, proxy.required, proxy.timeout, idle_ok=True)
            if header is None:
                raise ConnectionResetError("closed before its PROXY header")
        except (OSError, ProxyError, DataTimeout) as exc:
            log.info(
                "passive port %d: closing data connection from %s: %s",
                self.port,
                balancer,
                exc or type(exc).__name__,
            )
            conn.close()
            return
        # Ours to hand over now: closing the port (as the last lease leaves) must not cancel it.
        self.headers.pop(asyncio.current_task(), None)  # type: ignore[arg-type]
        self._deliver(conn, header.src[0] if header.src is not None else balancer)

    def _deliver(self, conn: socket.socket, client: str) -> None:
        ip = norm_ip(client)
        lease = self.leases.get(ip)
        if lease is None:
            lease = self.leases.get(None)  # pasv_promiscuous: anyone
        if lease is None:
            # Port theft (RFC 2577 §5): refuse it, the owners keep waiting for their clients.
            log.warning("passive port %d: refused data connection from foreign %s", self.port, ip)
            conn.close()
            return
        lease.give(conn)


class PassiveListener:
    """One session's lease on a passive port, good for one data connection from its client."""

    __slots__ = ("shared", "client", "conn", "waiter", "closed")

    def __init__(self, shared: SharedPort, client: str | None) -> None:
        self.shared = shared
        self.client = client
        self.conn: socket.socket | None = None  # arrived, not yet taken by ``accept``
        self.waiter: asyncio.Future[None] | None = None
        self.closed = False

    @property
    def port(self) -> int:
        return self.shared.port

    def give(self, conn: socket.socket) -> None:
        """The data connection has come: the lease leaves its port (free again for its address)."""
        self.conn = conn
        self.shared.drop(self)
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def accept(self, _peer: str | None = None) -> socket.socket:
        """The data connection from the lease's client (whatever ``_peer`` says: the client was
        fixed at ``open``); closes the lease. ``OSError`` if the lease was closed meanwhile."""
        try:
            if self.conn is None and not self.closed:
                # Usually there already: a client connects, then sends its transfer command.
                # Taken now, it costs no reader callback and no turn of the loop (vsftpd, too,
                # accepts only when the transfer starts).
                self.shared.poll()
            if self.conn is None:
                if self.closed:
                    raise ConnectionAbortedError("passive port closed")
                self.waiter = asyncio.get_running_loop().create_future()
                self.shared.want()
                await self.waiter
            conn, self.conn = self.conn, None
            if conn is None:
                raise ConnectionAbortedError("passive port closed")
            return conn
        finally:
            self.waiter = None
            self.close()

    def close(self) -> None:
        """Give the lease back (idempotent); a connection that came and was not taken is closed."""
        if self.closed:
            return
        self.closed = True
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.close()
        self.shared.drop(self)
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
