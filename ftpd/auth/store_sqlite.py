"""Accounts in an SQLite file (``users_db = "sqlite:///users.db"``): the embedded choice for one
machine. The standard library's ``sqlite3`` in the loop's executor, one read-only connection per
executor thread (SQLite connections are cheap but not free to open, and must stay in the thread
that made them), each query its own implicit transaction, so a row that ``ftpd user`` commits is
seen by the next lookup (after the cache's ``ttl``).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import urllib.parse

from ftpd.auth.store import COLUMNS, TABLE, StoreError, UserStore, row_table
from ftpd.auth.users import UserEntry, UsersFileError, entry_from_table
from ftpd.config import ConfigError, show

_QUERY = f"SELECT {', '.join(COLUMNS)} FROM {TABLE} WHERE name = ?"  # noqa: S608 (constants)


class SqliteStore(UserStore):
    """Accounts from the ``ftpd_users`` table of an SQLite database file."""

    def __init__(self, path: str, ttl: float, check_homes: bool = True) -> None:
        super().__init__(ttl)
        self.path = os.path.abspath(path)
        self.description = f"users database sqlite:///{path}"
        self._check_homes = check_homes
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []

    def _connect(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            uri = "file:" + urllib.parse.quote(self.path) + "?mode=ro"
            # check_same_thread=False only so that close() may close it from another thread;
            # each connection is used by the one thread that opened it.
            conn = sqlite3.connect(uri, uri=True, timeout=5.0, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _query(self, name: str) -> UserEntry | None:
        try:
            row = self._connect().execute(_QUERY, (name,)).fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.description}: {exc}") from None
        if row is None:
            return None
        table = row_table(dict(row))
        try:
            return entry_from_table(table, 0, os.path.dirname(self.path), self.description,
                                    check_home=self._check_homes)  # fmt: skip
        except UsersFileError as exc:
            raise StoreError(str(exc)) from None

    async def _fetch(self, name: str) -> UserEntry | None:
        return await asyncio.get_running_loop().run_in_executor(None, self._query, name)

    def check(self) -> None:
        if not os.path.isfile(self.path):
            raise ConfigError(
                f"invalid value for users_db: {show(self.path)} does not exist "
                "(create it with `ftpd user add NAME --home DIR --users-db URL`)"
            )
        try:
            conn = sqlite3.connect("file:" + urllib.parse.quote(self.path) + "?mode=ro", uri=True)
            try:
                conn.execute(f"SELECT {', '.join(COLUMNS)} FROM {TABLE} LIMIT 1").fetchall()
            finally:
                conn.close()
        except sqlite3.Error as exc:
            raise ConfigError(
                f"invalid value for users_db: cannot use {show(self.path)} "
                f"({exc}; `ftpd user add` creates the table)"
            ) from None

    def homes(self) -> list[str]:
        try:
            conn = sqlite3.connect("file:" + urllib.parse.quote(self.path) + "?mode=ro", uri=True)
            try:
                rows = conn.execute(f"SELECT home FROM {TABLE}").fetchall()
            finally:
                conn.close()
        except sqlite3.Error:
            return []
        base = os.path.dirname(self.path)
        return [os.path.realpath(os.path.join(base, str(row[0]))) for row in rows]

    async def close(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
