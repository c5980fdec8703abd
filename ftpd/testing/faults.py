"""Fault injection for testing FTP clients: the failures real clients must survive, on demand.

``Faults`` is a set of switches a test flips from its own thread while the server runs::

    server.faults.fail_next("STOR", "452 Disk full.")        # the next STOR is refused
    server.faults.fail_next("STOR", "451 Lost it.", stage="end")  # ... after all its data
    server.faults.cut_data(after=1000, command="RETR")       # data connection ends at 1000 bytes
    server.faults.throttle(50_000)                           # transfers at 50 kB/s
    server.faults.refuse_logins()                            # 530 to the next login
    server.faults.drop_control()                             # reset every control connection now
    server.faults.drop_control(on="RETR", after=4096)        # ... mid-download

How: each session's filesystem is wrapped (``FaultFS``, a layer ``ftpd.api.Server`` puts over
the session's storage) and the authenticator too (``FaultAuthenticator``); nothing in the
protocol core or the data pumps knows about faults. A chosen reply travels as
``StorageError(code, text)``. A cut download returns its last allowed bytes and then fails the
read with ``ConnectionResetError``: the server closes the data connection after exactly those
bytes and answers ``426``; a cut upload stores nothing (the upload is aborted, ``426``). A
throttled or cut download is read block by block (no sendfile) so that the limit is exact.

Each one-shot switch is consumed by the operation it hits (``times`` of them); ``clear()``
resets everything. Switches are checked under a lock: flip them from any thread.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from ftpd.auth.base import Authenticator, Credentials, LoginResult, Peer, Refusal
from ftpd.fs.base import Capabilities, FileStat, FileSystem, Reader, RealPaths, Writer
from ftpd.proto.errors import StorageError

__all__ = ["FaultAuthenticator", "FaultFS", "Faults"]

Stage = Literal["open", "end"]
# Command -> the filesystem operation that carries it.
_OPS = {
    "RETR": "open_read",
    "STOR": "open_write",
    "APPE": "open_write",
    "STOU": "unique_name",
    "LIST": "list",
    "NLST": "list",
    "MLSD": "list",
    "DELE": "delete",
    "MKD": "mkdir",
    "RMD": "rmdir",
    "RNTO": "rename",
}
_TRANSFERS = ("RETR", "STOR", "APPE", "STOU")


def parse_reply(reply: str) -> StorageError:
    """``"452 Disk full."`` -> ``StorageError(452, "Disk full.")``."""
    code, _, text = reply.strip().partition(" ")
    if not (code.isdigit() and len(code) == 3):
        raise ValueError(f"a reply is 'CODE text', e.g. '452 Disk full.', not {reply!r}")
    return StorageError(int(code), text)


@dataclass
class _Fail:
    command: str
    reply: str
    stage: Stage
    times: int


@dataclass
class _Cut:
    command: str | None
    after: int
    times: int


@dataclass
class _Drop:
    command: str
    after: int
    times: int


class Faults:
    """The switches (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fails: list[_Fail] = []
        self._cuts: list[_Cut] = []
        self._drops: list[_Drop] = []
        self._rate: tuple[int, str | None] | None = None
        self._refusals = 0  # -1: every login
        self._refusal_reply: str | None = None
        self._drop_now: Callable[[], int] | None = None  # set by whoever runs the server

    # ------------------------------------------------------------------ switches
    def fail_next(
        self,
        command: str = "STOR",
        reply: str = "451 Injected failure.",
        *,
        stage: Stage = "open",
        times: int = 1,
    ) -> None:
        """The next ``times`` ``command``s fail with ``reply``: at once (``stage="open"``, before
        any data connection), or for RETR/STOR/APPE/STOU after all the data (``"end"``)."""
        command = command.upper()
        if command not in _OPS:
            raise ValueError(f"cannot fail {command!r}; one of {', '.join(_OPS)}")
        if stage == "end" and command not in _TRANSFERS:
            raise ValueError("stage='end' is for RETR, STOR, APPE and STOU")
        parse_reply(reply)  # a bad reply is the test's bug: say so now
        with self._lock:
            self._fails.append(_Fail(command, reply, stage, times))

    def cut_data(self, after: int, command: str | None = None, *, times: int = 1) -> None:
        """The next ``times`` transfers (RETR, STOR, APPE, STOU; ``command`` only if given) end
        after ``after`` bytes: the data connection closes and the reply is ``426``."""
        self._check_transfer(command)
        with self._lock:
            self._cuts.append(_Cut(command and command.upper(), max(0, after), times))

    def throttle(self, rate: int, command: str | None = None) -> None:
        """Transfers (``command`` only if given) move at most ``rate`` bytes per second, until
        ``clear()`` or ``throttle(0)``."""
        self._check_transfer(command)
        with self._lock:
            self._rate = (rate, command and command.upper()) if rate > 0 else None

    def refuse_logins(self, times: int | None = 1, reply: str | None = None) -> None:
        """Refuse the next ``times`` logins (every one with None): ``530`` as for a wrong
        password, or with ``reply="421 ..."`` a refusal that closes the connection."""
        if reply is not None and not reply.startswith("421 "):
            raise ValueError("a refused login is answered 530 (reply=None) or '421 <reason>'")
        with self._lock:
            self._refusals = -1 if times is None else times
            self._refusal_reply = reply

    def drop_control(self, on: str | None = None, *, after: int = 0, times: int = 1) -> int:
        """Reset control connections without a reply. ``on=None``: every one open now (returns
        how many). ``on="RETR"`` (or another command): the session that next runs it, when it
        starts, or for a transfer once ``after`` bytes have moved."""
        if on is None:
            if self._drop_now is None:
                raise RuntimeError("the server is not running")
            return self._drop_now()
        on = on.upper()
        if on not in _OPS:
            raise ValueError(f"cannot drop on {on!r}; one of {', '.join(_OPS)}")
        if after and on not in _TRANSFERS:
            raise ValueError("after= is for RETR, STOR, APPE and STOU")
        with self._lock:
            self._drops.append(_Drop(on, after, times))
        return 0

    def attach(self, drop_all: Callable[[], int]) -> None:
        """How ``drop_control()`` resets every session (given by whoever runs the server)."""
        self._drop_now = drop_all

    def clear(self) -> None:
        """Every switch off."""
        with self._lock:
            self._fails.clear()
            self._cuts.clear()
            self._drops.clear()
            self._rate = None
            self._refusals = 0
            self._refusal_reply = None

    @staticmethod
    def _check_transfer(command: str | None) -> None:
        if command is not None and command.upper() not in _TRANSFERS:
            raise ValueError(f"{command!r} is not a file transfer; one of {', '.join(_TRANSFERS)}")

    # ------------------------------------------------------------------ taking them
    def _take(self, items: list[Any], match: Callable[[Any], bool]) -> Any:
        with self._lock:
            for item in items:
                if match(item):
                    item.times -= 1
                    if item.times <= 0:
                        items.remove(item)
                    return item
        return None

    def take_login(self) -> LoginResult | bool:
        """``True``: no fault; else what the login gets (None: 530, or a Refusal)."""
        with self._lock:
            if not self._refusals:
                return True
            if self._refusals > 0:
                self._refusals -= 1
            reply = self._refusal_reply
        return Refusal(reply[4:]) if reply else None

    def take_fail(self, command: str, stage: Stage) -> StorageError | None:
        found = self._take(self._fails, lambda f: f.command == command and f.stage == stage)
        return parse_reply(found.reply) if found is not None else None

    def take_cut(self, command: str) -> int | None:
        found = self._take(self._cuts, lambda c: c.command in (None, command))
        return found.after if found is not None else None

    def take_drop(self, command: str) -> int | None:
        found = self._take(self._drops, lambda d: d.command == command)
        return found.after if found is not None else None

    def rate(self, command: str) -> int:
        with self._lock:
            rate = self._rate
        return rate[0] if rate is not None and rate[1] in (None, command) else 0


class FaultAuthenticator:
    """Refuses logins while ``faults`` says so; otherwise asks ``inner``."""

    def __init__(self, inner: Authenticator, faults: Faults) -> None:
        self.inner = inner
        self.faults = faults

    async def authenticate(self, credentials: Credentials, peer: Peer) -> LoginResult:
        taken = self.faults.take_login()
        if taken is not True:
            return taken  # type: ignore[return-value]
        return await self.inner.authenticate(credentials, peer)


@dataclass
class _Plan:
    """The faults one transfer carries, taken when its file is opened."""

    command: str
    fail_end: StorageError | None = None
    cut: int | None = None
    drop: int | None = None
    rate: int = 0

    @property
    def active(self) -> bool:
        return (
            self.fail_end is not None
            or self.cut is not None
            or self.drop is not None
            or self.rate > 0
        )


class _Pacer:
    """Counts a transfer's bytes against its plan: how many may go now, and when."""

    def __init__(self, plan: _Plan, drop: Callable[[], None]) -> None:
        self.plan = plan
        self.done = 0
        self.started = time.monotonic()
        self._drop = drop

    def allowed(self, n: int) -> int:
        limit = n
        plan = self.plan
        for end in (plan.cut, plan.drop):
            if end is not None:
                limit = min(limit, max(0, end - self.done))
        if plan.rate:
            limit = min(limit, max(1, plan.rate // 20))  # 50 ms slices: smooth, not bursty
        return limit

    async def account(self, n: int) -> None:
        """``n`` more bytes moved: wait out the rate, then cut or drop where the plan says."""
        self.done += n
        plan = self.plan
        if plan.rate:
            ahead = self.done / plan.rate - (time.monotonic() - self.started)
            if ahead > 0:
                await asyncio.sleep(ahead)
        if plan.drop is not None and self.done >= plan.drop:
            plan.drop = None
            self._drop()
        # A cut lets these bytes go; the next read or write fails (see _FaultReader/_FaultWriter).


class _FaultReader:
    def __init__(self, inner: Reader, pacer: _Pacer) -> None:
        self.inner = inner
        self.size = inner.size
        self.pacer = pacer

    async def read(self, n: int) -> bytes:
        pacer = self.pacer
        if pacer.plan.cut is not None and pacer.done >= pacer.plan.cut:
            raise ConnectionResetError("data connection cut (fault injection)")
        data = await self.inner.read(pacer.allowed(n) or n)
        if not data:
            if pacer.plan.fail_end is not None:
                raise pacer.plan.fail_end
            return data
        await pacer.account(len(data))
        return data

    def fileno(self) -> int | None:
        return None  # block by block, so that limits and cuts are exact

    def position(self) -> int:
        return self.inner.position()

    def advance(self, n: int) -> None:
        self.inner.advance(n)

    def close_now(self) -> bool:
        return self.inner.close_now()

    def close(self) -> Awaitable[None]:
        return self.inner.close()


class _FaultWriter:
    def __init__(self, inner: Writer, pacer: _Pacer) -> None:
        self.inner = inner
        self.pacer = pacer

    async def write(self, data: bytes | memoryview) -> None:
        pacer = self.pacer
        view = memoryview(data)
        while view:
            n = pacer.allowed(len(view))
            if n == 0:
                raise ConnectionResetError("data connection cut (fault injection)")
            await self.inner.write(view[:n])
            view = view[n:]
            await pacer.account(n)

    def blocking_write(self) -> None:
        return None  # every byte through write(): the pacer counts it

    async def commit(self, tail: bytes | memoryview = b"") -> None:
        if tail:
            await self.write(tail)  # paced and counted like the rest (a cut may hit here)
        if self.pacer.plan.fail_end is not None:
            raise self.pacer.plan.fail_end  # the server aborts the upload: nothing stored
        await self.inner.commit()

    def abort(self) -> Awaitable[None]:
        return self.inner.abort()


class FaultFS:
    """A session's filesystem with ``faults`` applied; ``drop`` resets its control connection."""

    def __init__(self, inner: FileSystem, faults: Faults, drop: Callable[[], None]) -> None:
        self.inner = inner
        self.faults = faults
        self.drop = drop
        self._stou = False  # unique_name ran: the next open_write is STOU's
        self.capabilities: Capabilities = inner.capabilities

    def real_path(self, vpath: str) -> str | None:
        inner = self.inner
        return inner.real_path(vpath) if isinstance(inner, RealPaths) else None

    def _before(self, command: str) -> None:
        """Faults that hit when the command starts: a chosen reply, or a dropped session."""
        error = self.faults.take_fail(command, "open")
        if error is not None:
            raise error
        if command not in _TRANSFERS and self.faults.take_drop(command) is not None:
            self.drop()

    def _plan(self, command: str) -> _Plan:
        faults = self.faults
        plan = _Plan(
            command,
            faults.take_fail(command, "end"),
            faults.take_cut(command),
            faults.take_drop(command),
            faults.rate(command),
        )
        if plan.drop == 0:  # no bytes to wait for: the session goes as the transfer starts
            plan.drop = None
            self.drop()
        return plan

    async def open_read(self, vpath: str, offset: int = 0) -> Reader:
        self._before("RETR")
        plan = self._plan("RETR")
        reader = await self.inner.open_read(vpath, offset)
        return _FaultReader(reader, _Pacer(plan, self.drop)) if plan.active else reader

    async def open_write(self, vpath: str, offset: int = 0, append: bool = False) -> Writer:
        command = "APPE" if append else "STOU" if self._stou else "STOR"
        if self._stou:
            self._stou = False  # STOU's own switches were checked by unique_name
        else:
            self._before(command)
        plan = self._plan(command)
        writer = await self.inner.open_write(vpath, offset, append)
        return _FaultWriter(writer, _Pacer(plan, self.drop)) if plan.active else writer

    async def unique_name(self, vdir: str, prefix: str) -> str:
        self._before("STOU")
        name = await self.inner.unique_name(vdir, prefix)
        self._stou = True
        return name

    async def list(self, vpath: str) -> list[FileStat]:
        self._before("LIST")
        return await self.inner.list(vpath)

    async def delete(self, vpath: str) -> None:
        self._before("DELE")
        await self.inner.delete(vpath)

    async def mkdir(self, vpath: str) -> None:
        self._before("MKD")
        await self.inner.mkdir(vpath)

    async def rmdir(self, vpath: str) -> None:
        self._before("RMD")
        await self.inner.rmdir(vpath)

    async def rename(self, src: str, dst: str) -> None:
        self._before("RNTO")
        await self.inner.rename(src, dst)

    def stat(self, vpath: str) -> Awaitable[FileStat]:
        return self.inner.stat(vpath)

    def set_mtime(self, vpath: str, mtime: float) -> Awaitable[None]:
        return self.inner.set_mtime(vpath, mtime)

    def chmod(self, vpath: str, mode: int) -> Awaitable[None]:
        return self.inner.chmod(vpath, mode)
