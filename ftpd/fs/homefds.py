"""The homes' directory fds that the inline forms resolve paths beneath, kept for a second.

An inline stat or open (``local_nowait.py``) resolves the client's path beneath the home with
``openat2``; it used to open the home itself first and close it after: an ``openat2`` through
ctypes and a ``close``, two of the five system calls a ``stat`` made. A server keeps its recently
used homes open instead (``O_PATH``: no read access, only a starting point for lookups):

- an fd is reopened once it is ``TTL`` seconds old, so a home renamed or replaced on disk is seen
  within a second, as a call that raced with the rename would see it;
- the sweeper closes the ones not reopened for ``TTL`` (``expire``), so no fd pins a home, or its
  filesystem's mount, once its sessions are quiet; ``close`` at shutdown;
- at most ``MAX`` homes at once (the oldest opened goes first): a server with many users keeps
  a bounded number of fds, and a miss costs what every call cost before.

The home is a real path fixed at start-up (not the client's), opened with ``RESOLVE_CACHED`` as
before: a home whose dentries left the cache is ``WouldBlock`` (the thread form answers). Used on
the server's loop thread only, where the inline forms run: no lock.
"""

from __future__ import annotations

import os

from ftpd.fs.nowait import openat2_cached

__all__ = ["HomeFds"]

_AT_FDCWD = getattr(os, "AT_FDCWD", -100)
_HOME_FLAGS = getattr(os, "O_PATH", 0) | os.O_DIRECTORY


class HomeFds:
    """One server's open homes: path -> (fd, reopen at), oldest opened first."""

    __slots__ = ("fds",)

    TTL = 1.0  # seconds an fd is used before the home is opened again
    MAX = 64

    def __init__(self) -> None:
        self.fds: dict[str, tuple[int, float]] = {}

    def get(self, home: str, now: float) -> int:
        """The home's fd (the caller must not close it); ``WouldBlock`` or ``OSError`` as
        ``openat2_cached`` raises them when it has to be opened."""
        entry = self.fds.get(home)
        if entry is not None:
            if now < entry[1]:
                return entry[0]
            del self.fds[home]
            os.close(entry[0])
        fd = openat2_cached(_AT_FDCWD, home, _HOME_FLAGS, jail=False)
        if len(self.fds) >= self.MAX:
            oldest = next(iter(self.fds))
            os.close(self.fds.pop(oldest)[0])
        self.fds[home] = (fd, now + self.TTL)
        return fd

    def expire(self, now: float) -> int:
        """Close the fds due for reopening (the sweeper, once a second); how many."""
        due = [home for home, (_, until) in self.fds.items() if until <= now]
        for home in due:
            os.close(self.fds.pop(home)[0])
        return len(due)

    def close(self) -> None:
        """Close them all (server shutdown)."""
        fds, self.fds = self.fds, {}
        for fd, _ in fds.values():
            os.close(fd)
