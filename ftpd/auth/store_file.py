"""The users file as a store: read at start-up, re-read when it changes on disk.

Changes are noticed on login without a signal: at most once per ``ttl`` seconds a login
``stat``s the file (a few microseconds), and if its size, mtime or inode changed, the file is read
again off the event loop. A new version with an error is refused with one warning and the
accounts already loaded stay in force, so a half-edited file never locks everyone out.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Iterable

from ftpd.auth.store import MISS, UserStore
from ftpd.auth.users import UserEntry, load_users
from ftpd.config import ConfigError, show

log = logging.getLogger("ftpd")

Signature = tuple[int, int, int]  # inode, size, mtime_ns


class FileStore(UserStore):
    """Accounts from a TOML users file (``users_file``)."""

    def __init__(
        self,
        path: str,
        ttl: float,
        entries: Iterable[UserEntry] | None = None,
        validate: Callable[[list[UserEntry]], None] | None = None,
    ) -> None:
        super().__init__(ttl)
        self.path = path
        self.description = f"users file {show(path)}"
        self.validate = validate
        self._signature = _signature(path) if path else None
        self._entries: dict[str, UserEntry] = {}
        self._set(list(entries) if entries is not None else load_users(path))
        self._next_check = time.monotonic() + ttl
        self._reloading: asyncio.Task[None] | None = None
        self._refused: Signature | None = None

    def _set(self, entries: list[UserEntry]) -> None:
        if self.validate is not None:
            self.validate(entries)
        self._entries = {entry.name: entry for entry in entries}

    def initial(self) -> list[UserEntry]:
        return list(self._entries.values())

    def homes(self) -> list[str]:
        return [entry.home for entry in self._entries.values()]

    def peek(self, name: str) -> UserEntry | None | object:
        if self.path and time.monotonic() >= self._next_check:
            return MISS  # time to look at the file: lookup does it
        return self._entries.get(name)

    async def lookup(self, name: str) -> UserEntry | None:
        now = time.monotonic()
        if self.path and now >= self._next_check:
            self._next_check = now + self.ttl
            signature = _signature(self.path)
            if signature != self._signature and signature != self._refused:
                if self._reloading is None:
                    self._reloading = asyncio.ensure_future(self._reload(signature))
                reloading = self._reloading
                try:
                    await asyncio.shield(reloading)
                finally:
                    if reloading.done():
                        self._reloading = None
        return self._entries.get(name)

    async def _fetch(self, name: str) -> UserEntry | None:  # pragma: no cover - lookup overrides
        return self._entries.get(name)

    async def _reload(self, signature: Signature | None) -> None:
        loop = asyncio.get_running_loop()
        try:
            entries = await loop.run_in_executor(None, load_users, self.path)
            self._set(entries)
        except ConfigError as exc:
            self._refused = signature
            log.warning(
                "%s changed but is not valid; keeping the accounts loaded before: %s",
                self.description,
                exc,
            )
            return
        self._signature = signature
        self._refused = None
        log.info("%s changed: %d account(s) loaded", self.description, len(self._entries))


def _signature(path: str) -> Signature | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)
