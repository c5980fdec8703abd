"""The one place that decides, per file operation, whether it runs on the event loop or in a thread.

The rule (issue 18): an operation runs inline only when the kernel guarantees that it will not
wait for a disk, and goes to a thread only when it would. Each operation has a *fast* form built
from ``ftpd.fs.nowait`` (an answer from the page or dentry cache, or ``WouldBlock``) and a *thread*
form: the backend's original blocking code, run in the ``IoPool`` (or an executor). The thread
form is always correct on its own; the fast form only ever answers when it is certain, and any
doubt (a miss, an error, a symlink that needs the jail's general path) sends the call to the
thread form, which then gives the answer the server has always given.

``IoMode.inline`` is the ``io_inline`` setting: ``False`` forces every operation onto its thread
form (the fast forms are never tried). Every decision is counted by (operation, route) in
``IoMode.counts``, which the metrics endpoint exports as ``ftpd_file_ops_total{op,route}``.

What runs inline (see docs/PERFORMANCE.md, "The IO model"):

========== ============================================================ ======================
operation  fast form                                                    thread form
========== ============================================================ ======================
open_read  ``openat2(RESOLVE_CACHED|BENEATH|NO_MAGICLINKS)`` + ``fstat`` realpath + O_NOFOLLOW walk
stat       the same with ``O_PATH|O_NOFOLLOW``                          the same walk
read       ``preadv2(RWF_NOWAIT)`` (TLS and ASCII downloads)            ``pread``
send       ``cachestat`` of the next slice, then ``sendfile`` it         ``pread`` of the slice
write      ``pwritev2(RWF_NOWAIT)`` where the filesystem supports it    ``write``
========== ============================================================ ======================

Listings, creates, renames, deletes and commits take the thread: no Linux call does them from
memory only (``RESOLVE_CACHED`` refuses ``O_CREAT``/``O_TMPFILE``; ``getdents`` and journal
updates may wait on the disk). Except on a filesystem that has no disk: a home on tmpfs or ramfs,
on a machine without swap (``memfs.never_blocks``), runs *every* call on the loop
(``IoMode.memory``, ``local_io.Hops``), each delivered on the loop's next turn, so that a long
listing or a fast upload still lets the other sessions run between its calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ftpd.fs.homefds import HomeFds
from ftpd.fs.memfs import never_blocks
from ftpd.fs.nowait import WouldBlock
from ftpd.proto.enums import KeyEnum

__all__ = ["IoMode", "Op", "Route", "WouldBlock"]

T = TypeVar("T")


class Op(KeyEnum):
    """A file operation whose route is decided here."""

    OPEN_READ = "open_read"
    STAT = "stat"
    READ = "read"
    SEND = "send"  # one slice of a sendfile download
    WRITE = "write"


class Route(KeyEnum):
    """Where one operation ran."""

    INLINE = "inline"  # answered on the event loop from memory
    FALLBACK = "fallback"  # tried inline, would have blocked: sent to a thread
    THREAD = "thread"  # sent to a thread without trying (io_inline off, or unsupported here)


class IoMode:
    """``inline``: try the fast forms (``io_inline``); ``counts``: decisions so far.

    ``memory``: whether a home on a memory filesystem runs all its calls on the loop (None: ask
    ``memfs.never_blocks`` per home; True/False: force it, for tests). Only with ``inline``."""

    __slots__ = ("inline", "counts", "memory", "homes")

    def __init__(self, inline: bool = False, memory: bool | None = None) -> None:
        self.inline = inline
        self.counts: dict[tuple[Op, Route], int] = {}
        self.memory = memory
        # The homes the fast forms resolve paths beneath, kept open for a second (homefds.py).
        self.homes = HomeFds()

    def all_inline(self, home: str) -> bool:
        """Whether every file call under ``home`` may run on the loop (see the module doc)."""
        if not self.inline:
            return False
        if self.memory is not None:
            return self.memory
        return never_blocks(home)

    def count(self, op: Op, route: Route) -> None:
        key = (op, route)
        self.counts[key] = self.counts.get(key, 0) + 1

    def run(
        self,
        op: Op,
        fast: Callable[[], T],
        thread: Callable[[], Awaitable[T]],
    ) -> Awaitable[T]:
        """``fast()`` on the loop when inline is on and it answers; else ``thread()`` (a hop).

        ``fast`` must raise ``WouldBlock`` whenever it is not certain of the answer the thread
        form would give; the answer it gives comes back as an already finished future."""
        if not self.inline:
            self.count(op, Route.THREAD)
            return thread()
        try:
            value = fast()
        except WouldBlock:
            self.count(op, Route.FALLBACK)
            return thread()
        counts, key = self.counts, (op, Route.INLINE)  # ``count``, inline: the common case
        counts[key] = counts.get(key, 0) + 1
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        fut.set_result(value)
        return fut

    def snapshot(self) -> dict[tuple[str, str], int]:
        """The counts keyed by (op, route) names (read by the metrics endpoint)."""
        return {(op.value, route.value): n for (op, route), n in dict(self.counts).items()}
