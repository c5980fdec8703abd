"""Which store a ``users_db`` URL names (kept apart from ``store.py``, which the stores import)."""

from __future__ import annotations

from urllib.parse import urlsplit

from ftpd.auth.store import UserStore
from ftpd.config import ConfigError, show
from ftpd.config import redact_url as redact

__all__ = ["USERS_DB_EXPECTED", "open_store", "sqlite_path"]


def open_store(url: str, ttl: float, check_homes: bool = True) -> UserStore:
    """The store for a ``users_db`` URL: ``sqlite:///relative.db``, ``sqlite:////abs.db`` or
    ``postgresql://user:pass@host:port/db``. ConfigError for anything else."""
    scheme = urlsplit(url).scheme.lower()
    if scheme == "sqlite":
        from ftpd.auth.store_sqlite import SqliteStore

        return SqliteStore(sqlite_path(url), ttl, check_homes)
    if scheme in ("postgresql", "postgres"):
        from ftpd.auth.store_pg import PgStore

        return PgStore(url, ttl, check_homes)
    raise ConfigError(f"invalid value for users_db: {show(redact(url))} ({USERS_DB_EXPECTED})")


USERS_DB_EXPECTED = "expected sqlite:///FILE or postgresql://USER@HOST/DB"


def sqlite_path(url: str) -> str:
    """The file of a ``sqlite:///`` URL, as SQLAlchemy reads it: ``sqlite:///users.db`` is
    relative to the current directory, ``sqlite:////var/lib/ftpd/users.db`` absolute."""
    if not url.lower().startswith("sqlite:///") or len(url) <= len("sqlite:///"):
        raise ConfigError(f"invalid value for users_db: {show(url)} ({USERS_DB_EXPECTED})")
    return url[len("sqlite:///") :]
