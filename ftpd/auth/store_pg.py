"""Accounts in PostgreSQL (``users_db = "postgresql://ftpd@db/ftpd"``): one user table shared by
replicas behind a balancer. asyncpg (the ``postgres`` extra), so a lookup never blocks the loop.

Each process (each worker) opens its own small pool lazily, on the first login that needs a
query, in its own event loop: a pool made before ``fork`` or in another loop would be unusable.
A statement has ``QUERY_TIMEOUT`` seconds; an unreachable database fails the login (logged) and
the next login tries again. The start-up check runs once before the server starts, so a wrong
URL or a missing table is the one-line ``ftpd: error: ...``.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from ftpd.auth.store import COLUMNS, TABLE, StoreError, UserStore, row_table
from ftpd.auth.users import UserEntry, UsersFileError, entry_from_table
from ftpd.config import ConfigError, show
from ftpd.config import redact_url as redact

POOL_SIZE = 4  # logins needing a query at once, per process; the cache absorbs the rest
QUERY_TIMEOUT = 5.0
CONNECT_TIMEOUT = 10.0
_QUERY = f"SELECT {', '.join(COLUMNS)} FROM {TABLE} WHERE name = $1"  # noqa: S608 (constants)
MISSING = "users_db postgresql:// needs the asyncpg package (pip install 'ftpd[postgres]')"


def asyncpg_module() -> Any:
    """asyncpg, or ConfigError naming the extra to install."""
    try:
        import asyncpg  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        raise ConfigError(MISSING) from None
    return asyncpg


class PgStore(UserStore):
    """Accounts from the ``ftpd_users`` table of a PostgreSQL database."""

    def __init__(self, url: str, ttl: float, check_homes: bool = True) -> None:
        super().__init__(ttl)
        self.url = url
        self.description = f"users database {redact(url)}"
        self._check_homes = check_homes
        self._pool: Any = None
        self._pool_loop: asyncio.AbstractEventLoop | None = None
        self._pool_lock: asyncio.Lock | None = None

    async def _get_pool(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._pool is not None and self._pool_loop is loop:
            return self._pool
        if self._pool_lock is None or self._pool_loop is not loop:
            self._pool_lock, self._pool_loop, self._pool = asyncio.Lock(), loop, None
        async with self._pool_lock:
            if self._pool is None:
                asyncpg = asyncpg_module()
                self._pool = await asyncpg.create_pool(
                    self.url, min_size=0, max_size=POOL_SIZE, timeout=CONNECT_TIMEOUT,
                    command_timeout=QUERY_TIMEOUT,
                )  # fmt: skip
            return self._pool

    async def _fetch(self, name: str) -> UserEntry | None:
        try:
            pool = await self._get_pool()
            row = await pool.fetchrow(_QUERY, name)
        except (OSError, TimeoutError) as exc:
            raise StoreError(f"{self.description}: {exc}") from None
        except Exception as exc:  # asyncpg.PostgresError and kin: the database said no
            if type(exc).__module__.startswith("asyncpg"):
                raise StoreError(f"{self.description}: {exc}") from None
            raise
        if row is None:
            return None
        try:
            return entry_from_table(row_table(dict(row)), 0, os.getcwd(), self.description,
                                    check_home=self._check_homes)  # fmt: skip
        except UsersFileError as exc:
            raise StoreError(str(exc)) from None

    def check(self) -> None:
        asyncpg = asyncpg_module()

        async def probe() -> None:
            conn = await asyncpg.connect(self.url, timeout=CONNECT_TIMEOUT)
            try:
                await conn.fetch(f"SELECT {', '.join(COLUMNS)} FROM {TABLE} LIMIT 1")
            finally:
                await conn.close()

        try:
            asyncio.run(probe())
        except (OSError, TimeoutError) as exc:
            raise ConfigError(
                f"invalid value for users_db: {show(redact(self.url))} (cannot connect: {exc})"
            ) from None
        except Exception as exc:
            if not type(exc).__module__.startswith("asyncpg"):
                raise
            raise ConfigError(
                f"invalid value for users_db: {show(redact(self.url))} ({exc}; "
                "`ftpd user add` creates the table)"
            ) from None

    def homes(self) -> list[str]:
        asyncpg = asyncpg_module()

        async def fetch() -> list[str]:
            conn = await asyncpg.connect(self.url, timeout=CONNECT_TIMEOUT)
            try:
                return [str(r[0]) for r in await conn.fetch(f"SELECT home FROM {TABLE}")]
            finally:
                await conn.close()

        try:
            homes = asyncio.run(fetch())
        except Exception:  # best effort: the clean-up is an optimisation, the check comes first
            return []
        return [os.path.realpath(home) for home in homes]

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None and self._pool_loop is asyncio.get_running_loop():
            await pool.close()
