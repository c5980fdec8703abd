"""The user stores behind the Authenticator: the users file, SQLite and a real PostgreSQL.

Each store is filled through ``ftpd.auth.admin`` (what ``ftpd user`` uses) and read through the
Authenticator the server builds from its Config, so these are the same paths a login takes.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ftpd.auth import NEED_CACHE_MISS, ConfigAuthenticator, hashing
from ftpd.auth.admin import NewUser, Target, open_target
from ftpd.auth.store import StoreError
from ftpd.config import Config, ConfigError

FAST_LN = 4
TTL = 0.3


def fast_hash(password: str) -> str:
    return hashing.hash_password(password, ln=FAST_LN)


@pytest.fixture(params=["file", "sqlite", "postgres"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def setup(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> tuple[Target, Config]:
    """An empty store of this kind, and a Config that points the server at it."""
    (tmp_path / "alice").mkdir()
    (tmp_path / "bob").mkdir()
    if kind == "file":
        path = str(tmp_path / "users.toml")
        config = Config(root=str(tmp_path), users_file=path, users_cache_seconds=TTL)
        target = open_target(path, "")
    else:
        if kind == "sqlite":
            url = f"sqlite:///{tmp_path / 'users.db'}"
        else:
            url = request.getfixturevalue("postgres").new_database()
        config = Config(root=str(tmp_path), users_db=url, users_cache_seconds=TTL)
        target = open_target("", url)
    target.add(NewUser("alice", fast_hash("wonderland"), str(tmp_path / "alice"), "elr", 2,
                       {"quota_bytes": 1 << 30, "max_download_rate": 2 << 20}))  # fmt: skip
    return target, config


async def wait_for(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.05)


async def test_login_good_bad_unknown(setup: tuple[Target, Config], tmp_path: Path) -> None:
    target, config = setup
    auth = ConfigAuthenticator.from_config(config)
    assert auth.store is not None
    await asyncio.to_thread(auth.store.check)  # blocking, as at start-up (before the loop)
    account = await auth.lookup("alice", "wonderland")
    assert account is not None
    assert (account.name, account.home, account.perms, account.max_sessions) == (
        "alice", str((tmp_path / "alice").resolve()), "elr", 2)  # fmt: skip
    assert (account.quota_bytes, account.max_download_rate) == (1 << 30, 2 << 20)
    assert await auth.lookup("alice", "Wonderland") is None
    assert await auth.lookup("mallory", "wonderland") is None
    assert await auth.lookup("Alice", "wonderland") is None  # names are case-sensitive


async def test_changes_are_seen_without_a_restart(
    setup: tuple[Target, Config], tmp_path: Path
) -> None:
    target, config = setup
    auth = ConfigAuthenticator.from_config(config)
    assert await auth.lookup("alice", "wonderland") is not None
    assert await auth.lookup("bob", "builder") is None
    # Added, password changed, deleted: each visible within the cache time, same process.
    # ftpd.auth.admin is blocking (the ftpd user command): run it beside the loop.
    bob = NewUser("bob", fast_hash("builder"), str(tmp_path / "bob"), "elradfmwMT")
    await asyncio.to_thread(target.add, bob)
    assert await wait_for(lambda: auth.lookup("bob", "builder"))
    await asyncio.to_thread(target.set_password, "alice", fast_hash("looking-glass"))
    assert await wait_for(lambda: auth.lookup("alice", "looking-glass"))
    # The remembered verification of the old password is keyed by the old hash: no longer good.
    assert await auth.lookup("alice", "wonderland") is None
    assert auth.lookup_cached("alice", "wonderland") is NEED_CACHE_MISS
    await asyncio.to_thread(target.delete, "bob")

    async def bob_gone() -> bool:
        return await auth.lookup("bob", "builder") is None

    assert await wait_for(bob_gone)


async def test_cached_answers_need_no_query(
    setup: tuple[Target, Config], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, config = setup
    config = Config(**{**_fields(config), "users_cache_seconds": 60.0})
    auth = ConfigAuthenticator.from_config(config)
    store = auth.store
    assert store is not None
    assert auth.lookup_cached("alice", "wonderland") is NEED_CACHE_MISS
    assert await auth.lookup("alice", "wonderland") is not None
    calls: list[str] = []
    real = store._fetch

    async def counting(name: str) -> Any:
        calls.append(name)
        return await real(name)

    monkeypatch.setattr(store, "_fetch", counting)
    cached = auth.lookup_cached("alice", "wonderland")
    assert getattr(cached, "name", None) == "alice"  # the control channel's fast path
    for _ in range(5):
        assert await auth.lookup("alice", "wonderland") is not None
    # Many logins at once for a name not cached yet: one query.
    results = await asyncio.gather(*(auth.lookup("nobody", "x") for _ in range(8)))
    assert results == [None] * 8
    if config.users_file:
        assert calls == []  # the file is in memory
    else:
        assert calls == ["nobody"]


async def test_database_lookups_run_off_the_loop(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'users.db'}"
    (tmp_path / "h").mkdir()
    open_target("", url).add(NewUser("u", fast_hash("p"), str(tmp_path / "h"), "elr"))
    auth = ConfigAuthenticator.from_config(Config(users_db=url))
    import sqlite3

    threads: list[int] = []
    real_connect = sqlite3.connect

    def spy(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        threads.append(threading.get_ident())
        return real_connect(*args, **kwargs)

    sqlite3.connect = spy  # type: ignore[assignment]
    try:
        assert await auth.lookup("u", "p") is not None
    finally:
        sqlite3.connect = real_connect  # type: ignore[assignment]
    assert threads and threading.get_ident() not in threads


async def test_a_bad_row_refuses_that_login_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'users.db'}"
    (tmp_path / "h").mkdir()
    target = open_target("", url)
    target.add(NewUser("good", fast_hash("p"), str(tmp_path / "h"), "elr"))
    target.add(NewUser("gone", fast_hash("p"), str(tmp_path / "missing-home"), "elr"))
    auth = ConfigAuthenticator.from_config(Config(users_db=url))
    with caplog.at_level(logging.ERROR, logger="ftpd"):
        assert await auth.lookup("gone", "p") is None
    assert "not a directory" in caplog.text
    assert await auth.lookup("good", "p") is not None


async def test_unreachable_postgres_fails_the_login_not_the_server(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there
    url = f"postgresql://ftpd:secret-pw@127.0.0.1:{port}/x"
    auth = ConfigAuthenticator.from_config(Config(users_db=url))
    with caplog.at_level(logging.ERROR, logger="ftpd"):
        assert await auth.lookup("alice", "pw") is None
    assert "cannot look the account up" in caplog.text
    assert "secret-pw" not in caplog.text
    assert auth.store is not None
    with pytest.raises(ConfigError, match=r"cannot connect") as info:
        await asyncio.to_thread(auth.store.check)
    assert "secret-pw" not in str(info.value) and "***" in str(info.value)
    await auth.close()


def test_start_up_check_of_a_missing_sqlite_file_or_table(tmp_path: Path) -> None:
    auth = ConfigAuthenticator.from_config(Config(users_db=f"sqlite:///{tmp_path / 'nope.db'}"))
    assert auth.store is not None
    with pytest.raises(ConfigError, match="does not exist"):
        auth.store.check()
    import sqlite3

    sqlite3.connect(tmp_path / "empty.db").close()
    auth = ConfigAuthenticator.from_config(Config(users_db=f"sqlite:///{tmp_path / 'empty.db'}"))
    assert auth.store is not None
    with pytest.raises(ConfigError, match="no such table"):
        auth.store.check()


def test_users_db_validation() -> None:
    from ftpd.config import validate

    with pytest.raises(ConfigError, match="users_file or users_db, not both"):
        validate(Config(users_file="u.toml", users_db="sqlite:///u.db"))
    with pytest.raises(ConfigError, match=r'"mysql://u:\*\*\*@h/db"'):
        validate(Config(users_db="mysql://u:pw@h/db"))  # the password is never echoed
    with pytest.raises(ConfigError, match="users_cache_seconds"):
        validate(Config(users_cache_seconds=-1.0))


async def test_the_cache_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ftpd.auth import store as store_module

    monkeypatch.setattr(store_module, "MAX_CACHED", 50)
    url = f"sqlite:///{tmp_path / 'users.db'}"
    (tmp_path / "h").mkdir()
    open_target("", url).add(NewUser("u", fast_hash("p"), str(tmp_path / "h"), "elr"))
    auth = ConfigAuthenticator.from_config(Config(users_db=url, users_cache_seconds=60.0))
    store = auth.store
    assert store is not None
    for i in range(120):  # a scan of random names
        await store.lookup(f"n{i}")
    assert len(store._cache) <= 50


async def test_store_errors_propagate_from_lookup(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'users.db'}"
    (tmp_path / "users.db").write_bytes(b"not a database at all" * 100)
    auth = ConfigAuthenticator.from_config(Config(users_db=url))
    assert auth.store is not None
    with pytest.raises(StoreError):
        await auth.store.lookup("x")


def _fields(config: Config) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(config)


async def test_a_waiter_that_goes_away_does_not_cancel_the_others(tmp_path: Path) -> None:
    from ftpd.auth.store import UserStore
    from ftpd.auth.users import UserEntry

    gate = asyncio.Event()
    calls = []

    class Slow(UserStore):
        async def _fetch(self, name: str) -> UserEntry | None:
            calls.append(name)
            await gate.wait()
            return UserEntry(name, fast_hash("p"), str(tmp_path), "elr")

    store = Slow(60.0)
    first = asyncio.ensure_future(store.lookup("u"))
    second = asyncio.ensure_future(store.lookup("u"))
    await asyncio.sleep(0.01)
    first.cancel()  # e.g. its session closed while the database answered
    gate.set()
    entry = await second
    assert entry is not None and entry.name == "u" and calls == ["u"]
    assert first.cancelled()
    assert await store.lookup("u") is entry  # cached now
