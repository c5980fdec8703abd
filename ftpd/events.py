"""Events in code: what happened in a session, delivered to the application's callbacks.

``Server.subscribe(callback, *kinds)`` (``ftpd.api``) registers an ``async def callback(event)``
for some ``EventKind``s (all when none are named). Events are delivered in the order they
happened, one at a time per callback, from a bounded queue served by one task per callback, so a
slow callback delays only its own later events and never a session. A callback's exception is
logged (``ftpd.events``) and the next event is delivered; a callback that falls behind by
``QUEUE_LIMIT`` events loses the newest ones, logged and counted in ``EventBus.dropped``.
``Server.close()`` delivers what is queued (within its grace period) before it returns.

Where the events come from: login, logout and transfers from the server's observer (an
``observe.Listener``); MKD, RMD, DELE and RNTO from ``EventFS``, the session's filesystem
wrapped at login, which reports each operation that succeeded. ``EventFS`` keeps the local
backend's future-based fast path: it adds a done-callback to a future rather than awaiting it.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ftpd.auth.base import Account
from ftpd.fs.base import (
    Capabilities,
    FileStat,
    FileSystem,
    ListingFormat,
    Reader,
    RealPaths,
    Writer,
)
from ftpd.fs.listing_stream import open_listing
from ftpd.proto.enums import KeyEnum

__all__ = ["Event", "EventBus", "EventCallback", "EventFS", "EventKind", "QUEUE_LIMIT", "reporting_fs"]

log = logging.getLogger("ftpd.events")

QUEUE_LIMIT = 10_000  # events waiting for one callback before the newest are dropped
FILE_TRANSFERS = {"RETR": False, "STOR": True, "APPE": True, "STOU": True}  # verb -> upload


class EventKind(KeyEnum):
    LOGIN = "login"
    LOGIN_FAILED = "login_failed"  # wrong credentials or a refusal
    LOGOUT = "logout"  # a logged-in session ended (QUIT, timeout, disconnect, shutdown)
    UPLOAD = "upload"  # STOR/APPE/STOU complete: the file is in place
    UPLOAD_FAILED = "upload_failed"  # aborted, lost or failed; the previous file is intact
    DOWNLOAD = "download"  # RETR complete
    DOWNLOAD_FAILED = "download_failed"
    DELETE = "delete"
    RENAME = "rename"
    MKDIR = "mkdir"
    RMDIR = "rmdir"


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened. Paths are virtual (as the client sees them, ``/`` its home);
    ``real_path`` is where the file lives on disk, when the storage is a disk."""

    kind: EventKind
    user: str  # the account's name; for LOGIN_FAILED the name the client gave
    remote_ip: str
    remote_port: int
    session_id: int
    path: str = ""  # the file or directory; RENAME: the old name
    real_path: str | None = None
    target: str = ""  # RENAME: the new name
    real_target: str | None = None
    size: int = 0  # bytes transferred (UPLOAD*, DOWNLOAD*)
    offset: int = 0  # REST offset of a transfer
    seconds: float = 0.0  # duration of a transfer
    outcome: str = ""  # transfers: ok, aborted, lost, timeout, local-error, ...
    anonymous: bool = False
    time: float = 0.0  # wall-clock time of the event (seconds since the epoch)


EventCallback = Callable[[Event], Awaitable[None] | None]


class _Subscriber:
    __slots__ = ("callback", "kinds", "queue", "task")

    def __init__(self, callback: EventCallback, kinds: frozenset[EventKind]) -> None:
        self.callback = callback
        self.kinds = kinds
        self.queue: asyncio.Queue[Event] | None = None
        self.task: asyncio.Task[None] | None = None


class EventBus:
    """The subscribers of one server and their queues (see the module docstring)."""

    def __init__(self) -> None:
        self._subs: list[_Subscriber] = []
        self._wanted: frozenset[EventKind] = frozenset()  # the union of the subscribers' kinds
        self.dropped = 0

    @property
    def active(self) -> bool:
        return bool(self._subs)

    def subscribe(self, callback: EventCallback, kinds: Iterable[EventKind] = ()) -> None:
        sub = _Subscriber(callback, frozenset(kinds) or frozenset(EventKind))
        self._subs.append(sub)
        self._wanted |= sub.kinds

    def wants(self, kind: EventKind) -> bool:
        # Asked twice per login even with nobody subscribed (``ObserverBridge``): one set lookup.
        return kind in self._wanted

    def emit(self, event: Event) -> None:
        """Queue ``event`` for its subscribers; call from the server's event loop."""
        for sub in self._subs:
            if event.kind not in sub.kinds:
                continue
            if sub.queue is None:
                sub.queue = asyncio.Queue(QUEUE_LIMIT)
                sub.task = asyncio.get_running_loop().create_task(self._deliver(sub, sub.queue))
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                self.dropped += 1
                log.warning(
                    "event %s dropped: callback %r is %d events behind",
                    event.kind.value,
                    sub.callback,
                    QUEUE_LIMIT,
                )

    @staticmethod
    async def _deliver(sub: _Subscriber, queue: asyncio.Queue[Event]) -> None:
        while True:
            event = await queue.get()
            try:
                result = sub.callback(event)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("event callback %r failed on %s", sub.callback, event.kind.value)
            finally:
                queue.task_done()

    async def drain(self) -> None:
        """Wait until every event emitted so far has been handled by its callbacks."""
        for sub in self._subs:
            if sub.queue is not None:
                await sub.queue.join()

    async def close(self, timeout: float) -> None:
        """Deliver what is queued within ``timeout`` seconds, then stop the delivery tasks."""
        try:
            await asyncio.wait_for(self.drain(), timeout)
        except TimeoutError:
            log.warning("events still queued after %.1f s at shutdown: dropped", timeout)
        for sub in self._subs:
            if sub.task is not None:
                sub.task.cancel()
                await asyncio.wait([sub.task])
            sub.queue = sub.task = None


@dataclass(frozen=True, slots=True)
class Origin:
    """The session an event comes from."""

    session_id: int
    remote_ip: str
    remote_port: int
    account: Account | None

    def event(self, kind: EventKind, **fields: Any) -> Event:
        account = self.account
        fields.setdefault("user", account.name if account is not None else "")
        return Event(
            kind,
            remote_ip=self.remote_ip,
            remote_port=self.remote_port,
            session_id=self.session_id,
            anonymous=account is not None and account.anonymous,
            time=time.time(),
            **fields,
        )


def origin(ch: Any, account: Account | None = None) -> Origin:
    """The origin of a control channel's events (the one place that reads the channel)."""
    session = ch.session
    if account is None and session is not None:
        account = session.account
    return Origin(ch.sid, ch.peer[0], ch.peer[1], account)


def real_path(fs: Any, vpath: str) -> str | None:
    return fs.real_path(vpath) if isinstance(fs, RealPaths) else None


# Asked at every login and logout, subscribers or not: module globals (proto/enums.py).
_LOGIN, _LOGOUT = EventKind.LOGIN, EventKind.LOGOUT


class ObserverBridge:
    """An ``observe.Listener`` that turns the server's login, logout and transfer calls into
    events (``ftpd/server/observe.py`` calls it; it only queues)."""

    def __init__(self, bus: EventBus) -> None:
        self.bus = bus

    # An event is built only when someone subscribed to its kind: an application's server
    # (ftpd.api) has a bus whether or not anything listens, and a login would build two.
    def login(self, ch: Any, ok: bool, account: Any) -> None:
        if ok:
            if self.bus.wants(_LOGIN):
                self.bus.emit(origin(ch, account).event(_LOGIN))
        elif self.bus.wants(EventKind.LOGIN_FAILED):
            name = ch.session.user if ch.session is not None else ""
            self.bus.emit(origin(ch).event(EventKind.LOGIN_FAILED, user=name))

    def session_closed(self, ch: Any) -> None:
        session = ch.session
        if session is not None and session.account is not None and self.bus.wants(_LOGOUT):
            self.bus.emit(origin(ch).event(_LOGOUT))

    def transfer(self, ch: Any, t: Any, outcome: str, seconds: float) -> None:
        upload = FILE_TRANSFERS.get(t.kind)
        if upload is None or outcome == "no-connection":
            return  # a listing, or a transfer that never got its data connection
        ok = outcome == "ok"
        if upload:
            kind = EventKind.UPLOAD if ok else EventKind.UPLOAD_FAILED
        else:
            kind = EventKind.DOWNLOAD if ok else EventKind.DOWNLOAD_FAILED
        if not self.bus.wants(kind):
            return
        self.bus.emit(
            origin(ch).event(
                kind,
                path=t.vpath,
                real_path=real_path(ch.fs, t.vpath),
                size=t.bytes,
                offset=t.offset,
                seconds=seconds,
                outcome=str(outcome),
            )
        )


class EventFS:
    """A session's filesystem that reports MKD, RMD, DELE and RNTO once they succeeded."""

    __slots__ = ("inner", "capabilities", "_emit")

    def __init__(self, inner: FileSystem, emit: Callable[..., None]) -> None:
        self.inner = inner
        self.capabilities: Capabilities = inner.capabilities
        self._emit = emit  # emit(kind, path=..., real_path=..., ...)

    def real_path(self, vpath: str) -> str | None:
        return real_path(self.inner, vpath)

    def _after(
        self, pending: Awaitable[Any], kind: EventKind, path: str, target: str = ""
    ) -> Awaitable[Any]:
        def report() -> None:
            extra = {"target": target, "real_target": self.real_path(target)} if target else {}
            self._emit(kind, path=path, real_path=self.real_path(path), **extra)

        if isinstance(pending, asyncio.Future):

            def done(fut: asyncio.Future[Any]) -> None:
                if not fut.cancelled() and fut.exception() is None:
                    report()

            pending.add_done_callback(done)
            return pending

        async def awaited() -> Any:
            result = await pending
            report()
            return result

        return awaited()

    def stat(self, vpath: str) -> Awaitable[FileStat]:
        return self.inner.stat(vpath)

    def list(self, vpath: str) -> Awaitable[list[FileStat]]:
        return self.inner.list(vpath)

    def open_listing(self, vpath: str, format: ListingFormat) -> Awaitable[Reader]:
        return open_listing(self.inner, vpath, format)  # streamed when the inner one streams

    def open_read(self, vpath: str, offset: int = 0) -> Awaitable[Reader]:
        return self.inner.open_read(vpath, offset)

    def open_write(self, vpath: str, offset: int = 0, append: bool = False) -> Awaitable[Writer]:
        return self.inner.open_write(vpath, offset, append)

    def mkdir(self, vpath: str) -> Awaitable[None]:
        return self._after(self.inner.mkdir(vpath), EventKind.MKDIR, vpath)

    def rmdir(self, vpath: str) -> Awaitable[None]:
        return self._after(self.inner.rmdir(vpath), EventKind.RMDIR, vpath)

    def delete(self, vpath: str) -> Awaitable[None]:
        return self._after(self.inner.delete(vpath), EventKind.DELETE, vpath)

    def rename(self, src: str, dst: str) -> Awaitable[None]:
        return self._after(self.inner.rename(src, dst), EventKind.RENAME, src, dst)

    def set_mtime(self, vpath: str, mtime: float) -> Awaitable[None]:
        return self.inner.set_mtime(vpath, mtime)

    def chmod(self, vpath: str, mode: int) -> Awaitable[None]:
        return self.inner.chmod(vpath, mode)

    def unique_name(self, vdir: str, prefix: str) -> Awaitable[str]:
        return self.inner.unique_name(vdir, prefix)


def reporting_fs(bus: EventBus, ch: Any, account: Account, fs: FileSystem) -> FileSystem:
    """``fs`` wrapped so that its successful operations reach ``bus`` (when anyone listens)."""
    if not bus.active:
        return fs
    where = origin(ch, account)

    def emit(kind: EventKind, **fields: Any) -> None:
        if bus.wants(kind):
            bus.emit(where.event(kind, **fields))

    return EventFS(fs, emit)  # type: ignore[return-value]
