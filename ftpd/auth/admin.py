"""Changing accounts for ``ftpd user``: the users file (edited in place) and the databases.

The users file is edited with tomlkit, so its comments, order and layout survive; the new
version is validated exactly as the server will read it, written to a temporary file in the same
directory, flushed, and renamed over the old one (a server reading it at that moment sees the old
or the new file, never half of one). Two ``ftpd user`` commands on the same file take turns (an
exclusive ``flock`` on its directory), so neither loses the other's change.

The databases get the same operations as plain SQL on the ``ftpd_users`` table, created when
missing; a duplicate name is refused by the primary key, not by a read-then-write race.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import fcntl
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ftpd.auth.store import COLUMNS, SCHEMA, TABLE
from ftpd.auth.store_pg import CONNECT_TIMEOUT, asyncpg_module
from ftpd.auth.store_url import sqlite_path
from ftpd.auth.users import (
    LIMIT_KEYS,
    UsersFileError,
    entry_from_table,
    load_users,
)
from ftpd.config import ConfigError, redact_url, show


class AdminError(Exception):
    """A refused change (duplicate, unknown user, bad value): one line for the operator."""


@dataclass
class NewUser:
    """What ``ftpd user add`` stores. Values are already validated by ``validate``."""

    name: str
    password_hash: str
    home: str
    perms: str
    max_sessions: int = 0
    limits: dict[str, int] = field(default_factory=dict)  # LIMIT_KEYS, only those given

    def table(self) -> dict[str, Any]:
        """The account as users-file keys, in the file's usual order; zero limits left out."""
        table: dict[str, Any] = {"name": self.name, "password_hash": self.password_hash,
                                 "home": self.home, "perms": self.perms}  # fmt: skip
        if self.max_sessions:
            table["max_sessions"] = self.max_sessions
        table.update({key: value for key, value in self.limits.items() if value})
        return table


def validate(user: NewUser, where: str, check_home: bool) -> None:
    """AdminError if the server would refuse this account (same checks as the users file)."""
    try:
        entry_from_table(user.table(), 0, os.getcwd(), where, check_home=check_home)
    except UsersFileError as exc:
        raise AdminError(str(exc)) from None


class Target(abc.ABC):
    """Where ``ftpd user`` changes accounts."""

    description = ""

    @abc.abstractmethod
    def add(self, user: NewUser) -> None: ...

    @abc.abstractmethod
    def set_password(self, name: str, password_hash: str) -> None: ...

    @abc.abstractmethod
    def delete(self, name: str) -> None: ...

    @abc.abstractmethod
    def rows(self) -> list[dict[str, Any]]:
        """Every account as users-file keys (password hashes included), in stored order."""


def open_target(users_file: str, users_db: str) -> Target:
    """The target the flags or the configuration name."""
    if users_db:
        if users_db.lower().startswith("sqlite:"):
            return SqliteTarget(sqlite_path(users_db))
        if users_db.lower().startswith(("postgresql://", "postgres://")):
            return PgTarget(users_db)
        raise ConfigError(f"invalid value for users_db: {show(redact_url(users_db))} "
                          "(expected sqlite:///FILE or postgresql://USER@HOST/DB)")  # fmt: skip
    if users_file:
        return FileTarget(users_file)
    raise ConfigError(
        "no users file or database: give --users-file FILE or --users-db URL "
        "(or set users_file / users_db in the config file or the environment)"
    )


# --- the users file --------------------------------------------------------------------------


class FileTarget(Target):
    """The TOML users file; created (with a comment) by the first ``add`` if missing."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self.description = f"users file {show(path)}"

    def _read(self) -> Any:
        import tomlkit

        try:
            with open(self.path, encoding="utf-8") as fh:
                text = fh.read()
        except FileNotFoundError:
            doc = tomlkit.document()
            doc.add(tomlkit.comment("ftpd users file: see config/users.example.toml for the keys."))
            doc.add(tomlkit.comment("Edit with `ftpd user add|passwd|del` or by hand."))
            return doc
        except OSError as exc:
            raise AdminError(f"cannot read {self.description}: {exc.strerror or exc}") from None
        try:
            return tomlkit.parse(text)
        except Exception as exc:  # tomlkit.exceptions.ParseError
            raise AdminError(f"{self.description} is not valid TOML: {exc}") from None

    def _tables(self, doc: Any) -> list[Any]:
        users = doc.get("users")
        if users is None:
            return []
        if not isinstance(users, list):
            raise AdminError(f"{self.description}: 'users' must be an array of tables ([[users]])")
        return list(users)

    def _index(self, doc: Any, name: str) -> int:
        for index, table in enumerate(self._tables(doc)):
            if table.get("name") == name:
                return index
        raise AdminError(f"no user {show(name)} in the {self.description}")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        directory = os.path.dirname(self.path)
        try:
            fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as exc:
            raise AdminError(f"cannot open {show(directory)}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def add(self, user: NewUser) -> None:
        import tomlkit

        with self._locked():
            doc = self._read()
            tables = self._tables(doc)
            if any(table.get("name") == user.name for table in tables):
                raise AdminError(f"user {show(user.name)} already exists in the {self.description}")
            table = tomlkit.table()
            for key, value in user.table().items():
                table.add(key, value)
            if "users" not in doc:
                if len(doc.body):
                    doc.add(tomlkit.nl())
                doc.append("users", tomlkit.aot())
            else:
                tables[-1].add(tomlkit.nl())  # a blank line between tables, as people write them
            doc["users"].append(table)
            self._write(doc)

    def set_password(self, name: str, password_hash: str) -> None:
        with self._locked():
            doc = self._read()
            self._tables(doc)[self._index(doc, name)]["password_hash"] = password_hash
            self._write(doc)

    def delete(self, name: str) -> None:
        with self._locked():
            doc = self._read()
            del doc["users"][self._index(doc, name)]
            self._write(doc)

    def rows(self) -> list[dict[str, Any]]:
        doc = self._read()
        return [{key: table.get(key) for key in COLUMNS if key in table}
                for table in self._tables(doc)]  # fmt: skip

    def _write(self, doc: Any) -> None:
        import tomlkit

        text = tomlkit.dumps(doc)
        directory = os.path.dirname(self.path)
        try:
            mode = os.stat(self.path).st_mode & 0o7777
        except FileNotFoundError:
            mode = 0o600  # it holds password hashes
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".ftpd-users-", suffix=".toml")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fchmod(fh.fileno(), mode)
                os.fsync(fh.fileno())
            try:
                load_users(tmp)  # exactly what the server will read, relative homes included
            except UsersFileError as exc:
                raise AdminError(str(exc).replace(tmp, self.path)) from None
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)  # the rename itself survives a crash
        finally:
            os.close(dir_fd)


# --- SQLite ----------------------------------------------------------------------------------

_INSERT = f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES ({{}})"  # noqa: S608


def _values(user: NewUser) -> list[Any]:
    return [user.name, user.password_hash, user.home, user.perms, user.max_sessions,
            *(user.limits.get(key, 0) for key in LIMIT_KEYS)]  # fmt: skip


class SqliteTarget(Target):
    """The ``ftpd_users`` table of an SQLite file (file and table created by the first add)."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self.description = f"users database sqlite:///{path}"

    @contextlib.contextmanager
    def _db(self, create: bool = False) -> Iterator[sqlite3.Connection]:
        existed = os.path.isfile(self.path)
        if not create and not existed:
            raise AdminError(f"{self.description} does not exist (`ftpd user add` creates it)")
        if not existed:  # it will hold password hashes: readable by its owner only
            with contextlib.suppress(FileExistsError):
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        try:
            conn = sqlite3.connect(self.path, timeout=10.0)
        except sqlite3.Error as exc:
            raise AdminError(f"cannot open {self.description}: {exc}") from None
        try:
            with conn:  # one transaction, committed on success
                conn.execute(SCHEMA)
                yield conn
        except sqlite3.IntegrityError as exc:
            raise AdminError(f"{self.description}: {exc}") from None
        except sqlite3.Error as exc:
            raise AdminError(f"{self.description}: {exc}") from None
        finally:
            conn.close()

    def add(self, user: NewUser) -> None:
        with self._db(create=True) as conn:
            try:
                conn.execute(_INSERT.format(", ".join("?" * len(COLUMNS))), _values(user))
            except sqlite3.IntegrityError:
                raise AdminError(
                    f"user {show(user.name)} already exists in the {self.description}"
                ) from None

    def set_password(self, name: str, password_hash: str) -> None:
        with self._db() as conn:
            cur = conn.execute(f"UPDATE {TABLE} SET password_hash = ? WHERE name = ?",
                               (password_hash, name))  # fmt: skip
            if cur.rowcount != 1:
                raise AdminError(f"no user {show(name)} in the {self.description}")

    def delete(self, name: str) -> None:
        with self._db() as conn:
            if conn.execute(f"DELETE FROM {TABLE} WHERE name = ?", (name,)).rowcount != 1:
                raise AdminError(f"no user {show(name)} in the {self.description}")

    def rows(self) -> list[dict[str, Any]]:
        with self._db() as conn:
            conn.row_factory = sqlite3.Row
            rows = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM {TABLE} ORDER BY name")
            return [dict(row) for row in rows]


# --- PostgreSQL ------------------------------------------------------------------------------


class PgTarget(Target):
    """The ``ftpd_users`` table of a PostgreSQL database (table created by the first add)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.description = f"users database {redact_url(url)}"

    def _run(self, work: Any, create: bool = False) -> Any:
        asyncpg = asyncpg_module()

        async def session() -> Any:
            conn = await asyncpg.connect(self.url, timeout=CONNECT_TIMEOUT)
            try:
                async with conn.transaction():
                    if create:
                        await conn.execute(SCHEMA)
                    return await work(conn)
            finally:
                await conn.close()

        try:
            return asyncio.run(session())
        except AdminError:
            raise
        except asyncpg.UniqueViolationError:
            raise
        except (OSError, TimeoutError) as exc:
            raise AdminError(f"cannot connect to the {self.description}: {exc}") from None
        except asyncpg.PostgresError as exc:
            raise AdminError(f"{self.description}: {exc}") from None

    def add(self, user: NewUser) -> None:
        asyncpg = asyncpg_module()
        params = ", ".join(f"${i}" for i in range(1, len(COLUMNS) + 1))

        async def work(conn: Any) -> None:
            await conn.execute(_INSERT.format(params), *_values(user))

        try:
            self._run(work, create=True)
        except asyncpg.UniqueViolationError:
            raise AdminError(
                f"user {show(user.name)} already exists in the {self.description}"
            ) from None

    def set_password(self, name: str, password_hash: str) -> None:
        async def work(conn: Any) -> None:
            status = await conn.execute(
                f"UPDATE {TABLE} SET password_hash = $1 WHERE name = $2", password_hash, name
            )
            if status != "UPDATE 1":
                raise AdminError(f"no user {show(name)} in the {self.description}")

        self._run(work)

    def delete(self, name: str) -> None:
        async def work(conn: Any) -> None:
            if await conn.execute(f"DELETE FROM {TABLE} WHERE name = $1", name) != "DELETE 1":
                raise AdminError(f"no user {show(name)} in the {self.description}")

        self._run(work)

    def rows(self) -> list[dict[str, Any]]:
        async def work(conn: Any) -> list[dict[str, Any]]:
            found = await conn.fetch(f"SELECT {', '.join(COLUMNS)} FROM {TABLE} ORDER BY name")
            return [dict(row) for row in found]

        result: list[dict[str, Any]] = self._run(work)
        return result
