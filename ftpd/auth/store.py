"""Where accounts come from: one small interface over the users file, SQLite and PostgreSQL.

A store answers "who is NAME?" with a validated ``UserEntry`` (or None), never "is this password
right?": the Authenticator verifies hashes the same way whatever the store. Each store keeps the
answers for ``ttl`` seconds (``users_cache_seconds``), so a burst of logins costs one query per
name, and an account added, changed or deleted in the database is seen within ``ttl`` without a
restart. ``peek`` reads that cache without awaiting (the control channel's fast path); ``lookup``
refreshes it, with one query in flight per name however many logins wait for it.

The cache is bounded: unknown names are cached too (so a scan of random names does not turn into
one query per attempt), and the whole table is dropped when it reaches ``MAX_CACHED`` names.
"""

from __future__ import annotations

import abc
import asyncio
import time

from ftpd.auth.users import UserEntry

MISS = object()  # peek: not cached, or stale; call lookup
MAX_CACHED = 10_000

# The table of both databases. Columns match the users file's keys; ``ftpd user`` creates it,
# or an operator with their own migration tooling can.
TABLE = "ftpd_users"
COLUMNS = (
    "name", "password_hash", "home", "perms", "max_sessions",
    "quota_bytes", "quota_files", "max_download_rate", "max_upload_rate",
)  # fmt: skip
SCHEMA = f"""CREATE TABLE IF NOT EXISTS {TABLE} (
    name TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    home TEXT NOT NULL,
    perms TEXT NOT NULL DEFAULT 'elradfmwMT',
    max_sessions INTEGER NOT NULL DEFAULT 0,
    quota_bytes BIGINT NOT NULL DEFAULT 0,
    quota_files BIGINT NOT NULL DEFAULT 0,
    max_download_rate BIGINT NOT NULL DEFAULT 0,
    max_upload_rate BIGINT NOT NULL DEFAULT 0
)"""


class StoreError(Exception):
    """The store could not answer (database down, file unreadable). Logged; the login fails."""


class UserStore(abc.ABC):
    """A source of accounts with a short cache. Subclasses implement ``_fetch``."""

    description = "users"  # for log lines and the start-up announcement

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._cache: dict[str, tuple[float, UserEntry | None]] = {}
        self._inflight: dict[str, asyncio.Future[UserEntry | None]] = {}  # queries running

    def peek(self, name: str) -> UserEntry | None | object:
        """The cached answer for ``name`` if still fresh, else ``MISS``. Never blocks."""
        hit = self._cache.get(name)
        if hit is None or hit[0] <= time.monotonic():
            return MISS
        return hit[1]

    async def lookup(self, name: str) -> UserEntry | None:
        """The account called ``name`` (None: no such account). Raises StoreError."""
        hit = self.peek(name)
        if hit is not MISS:
            return hit  # type: ignore[return-value]
        # The query runs as its own task, shared by every login waiting for this name: a caller
        # that goes away (its session closed) cancels its wait, not the others' answer.
        task = self._inflight.get(name)
        if task is None:
            task = asyncio.ensure_future(self._fetch_and_cache(name))
            self._inflight[name] = task
            task.add_done_callback(lambda done: self._done(name, done))
        return await asyncio.shield(task)

    def _done(self, name: str, task: asyncio.Future[UserEntry | None]) -> None:
        self._inflight.pop(name, None)
        if not task.cancelled():
            task.exception()  # retrieved: the waiters (if any are left) get it from shield

    async def _fetch_and_cache(self, name: str) -> UserEntry | None:
        entry = await self._fetch(name)
        if len(self._cache) >= MAX_CACHED:
            self._cache.clear()
        self._cache[name] = (time.monotonic() + self.ttl, entry)
        return entry

    def forget(self) -> None:
        """Drop the cache (the next login of every name asks the store again)."""
        self._cache.clear()

    @abc.abstractmethod
    async def _fetch(self, name: str) -> UserEntry | None:
        """Ask the store itself; StoreError when it cannot answer."""

    def check(self) -> None:
        """Blocking, at start-up: ConfigError (one line) if the store is unusable."""

    def homes(self) -> list[str]:
        """Blocking, at start-up: every account's home (stale-upload clean-up). Best effort."""
        return []

    def initial(self) -> list[UserEntry]:
        """The accounts known without asking (the users file's), for clash checks at start."""
        return []

    async def close(self) -> None:
        """Release connections (server shutdown)."""


def row_table(row: dict[str, object]) -> dict[str, object]:
    """A database row as a users-file table (NULL columns absent, so defaults apply)."""
    return {key: value for key, value in row.items() if value is not None}
