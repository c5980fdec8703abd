"""The built-in Authenticator: the single user, anonymous logins and a user store (the users
file or a database: ``ftpd.auth.store``).

Three kinds of account, checked in this order:

- anonymous (``config.anonymous``): the names ``anonymous`` and ``ftp`` in any case, with any
  password (RFC 1635 asks for an e-mail address; nobody checks it), read-only unless
  ``anonymous_write``;
- the single user (``config.user`` / ``config.password``, home ``config.root``): enabled when
  there is no users file or when a password is set. Its password is a plain string held in
  memory, so it is compared with ``hmac.compare_digest`` right on the event loop;
- users from a store (``ftpd.auth.store``): the users file (``config.users_file``) or a database
  (``config.users_db``: SQLite or PostgreSQL), looked up per login without blocking the loop and
  cached for ``users_cache_seconds``. Their scrypt/argon2 hashes are verified in the loop's
  default executor because one verification takes ~50 ms. A successful verification is
  remembered under an HMAC of (name, password, stored hash) with a per-process random key, so a
  client that logs in again and again (one login per file is common in scripts) costs one hash,
  not one per login, and a changed password or a deleted account stops matching as soon as the
  store says so; the cache holds at most one entry per account and password that matched.

No timing oracle for user names with a store: an unknown name runs the same verification as a
known one (against a hash of the same cost). Passwords are never logged or put in exception messages.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import secrets
import weakref
from collections.abc import Iterable
from typing import Protocol, cast, runtime_checkable

from ftpd.auth import hashing
from ftpd.auth.base import (
    ALL_PERMS,
    READ_PERMS,
    Account,
    Authenticator,
    Credentials,
    LoginResult,
    Peer,
)
from ftpd.auth.store import StoreError, UserStore
from ftpd.auth.store_file import FileStore
from ftpd.auth.store_url import open_store
from ftpd.auth.users import UserEntry
from ftpd.config import Config, ConfigError, show

log = logging.getLogger("ftpd.auth")

ANONYMOUS_NAMES = frozenset({"anonymous", "ftp"})
NEED_CACHE_MISS = object()  # authenticate_cached: the answer needs a hash verification
MAX_VERIFIED = 10_000  # remembered verifications; a database may hold far more accounts

__all__ = [
    "ANONYMOUS_NAMES",
    "NEED_CACHE_MISS",
    "CachedAuthenticator",
    "ConfigAuthenticator",
    "Logins",
    "authenticator_from_config",
    "single_user_enabled",
]


@runtime_checkable
class CachedAuthenticator(Authenticator, Protocol):
    """An ``Authenticator`` that can often answer at once: the server asks ``authenticate_cached``
    first and needs no task for the login when it gets anything but ``NEED_CACHE_MISS``."""

    def authenticate_cached(self, credentials: Credentials, peer: Peer) -> LoginResult | object: ...


class Logins:
    """How the server asks a user store: the sync fast path first when the store has one, and an
    exception from the store (a bug, a database outage) logged and taken as a failed login."""

    __slots__ = ("store", "_cached", "by_name")

    def __init__(self, store: Authenticator) -> None:
        self.store = store
        self._cached = store.authenticate_cached if isinstance(store, CachedAuthenticator) else None
        # The built-in store answers from the name and password alone: the server calls this
        # (when set) instead of ``fast``, without building the Credentials and Peer it would not
        # read (two frozen dataclasses, ~5 % of a login's Python). Not for a subclass, which may
        # override ``authenticate_cached`` and read them.
        self.by_name = store.lookup_cached if type(store) is ConfigAuthenticator else None

    def fast(self, name: str, password: str, peer: Peer) -> LoginResult | object:
        """The answer, or ``NEED_CACHE_MISS`` when only ``check`` can give it."""
        if self._cached is None:
            return NEED_CACHE_MISS
        return self._cached(Credentials(name, password), peer)

    async def close(self) -> None:
        """Release what the built-in store holds (a users_db pool) at shutdown. An application's
        own Authenticator is the application's to close."""
        if isinstance(self.store, ConfigAuthenticator):
            await self.store.close()

    async def check(self, name: str, password: str, peer: Peer) -> LoginResult:
        try:
            return await self.store.authenticate(Credentials(name, password), peer)
        except Exception:
            log.exception(
                "user store %r failed for user %r from %s", self.store, name[:64], peer.ip
            )
            return None


def authenticator_from_config(config: Config) -> Authenticator:
    """The user store the configuration names (ConfigError on problems)."""
    return ConfigAuthenticator.from_config(config)


def single_user_enabled(config: Config) -> bool:
    """The single user exists when there is no users file or database, or when a password is
    given anyway."""
    return not (config.users_file or config.users_db) or bool(config.password)


def _account(entry: UserEntry) -> Account:
    return Account(entry.name, entry.home, entry.perms, False, entry.max_sessions,
                   entry.quota_bytes, entry.quota_files, entry.max_download_rate,
                   entry.max_upload_rate)  # fmt: skip


class ConfigAuthenticator:
    """The ``Authenticator`` of the single user, anonymous logins and the users file or users
    database (a ``UserStore``). Build one per server with ``from_config``; safe to share.

    Call ``authenticate`` from a running event loop. It never raises for bad credentials; it
    returns None, and the caller applies the failed-login delay and counter.
    """

    def __init__(
        self,
        *,
        single: Account | None = None,
        single_password: str = "",
        users: Iterable[UserEntry] = (),
        anonymous: Account | None = None,
        hash_concurrency: int | None = None,
        store: UserStore | None = None,
    ) -> None:
        # An empty single-user password never matches: the CLI generates one, and a Config built
        # in code without one must not mean "any password".
        self._single = single if single is not None and single_password else None
        self._single_digest = hashlib.sha256(hashing.password_bytes(single_password)).digest()
        self._anonymous = anonymous
        if store is None and users:
            store = FileStore("", 0.0, entries=users)
        self._store = store
        initial = store.initial() if store is not None else []
        self._check_clashes([entry.name for entry in initial])
        if isinstance(store, FileStore):  # a reloaded file must not bring a clash either
            store.validate = lambda entries: self._check_clashes([e.name for e in entries])
        # Unknown names verify against a real hash from the store so they cost exactly the same
        # (the result is ignored); a database has no such hash at hand, so one of the default
        # cost (what `ftpd user add` writes) is made on first need.
        self._dummy_hash = initial[0].password_hash if initial else ""
        self._key = secrets.token_bytes(32)
        self._verified: dict[bytes, Account] = {}
        # Hashing is CPU and memory bound (16 MiB each); more parallel hashes than cores only
        # queue up in the executor in front of file IO. One semaphore per loop, because the
        # asyncio primitive binds to the loop that first waits on it.
        self._hash_slots = hash_concurrency or os.cpu_count() or 2
        self._semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore]
        self._semaphores = weakref.WeakKeyDictionary()

    @classmethod
    def from_config(cls, config: Config) -> ConfigAuthenticator:
        """Build from the Config; reads and validates the users file (ConfigError on problems)."""
        single = None
        if single_user_enabled(config):
            single = Account(config.user, os.path.realpath(config.root), ALL_PERMS)
        anonymous = None
        if config.anonymous:
            home = os.path.realpath(config.anonymous_root or config.root)
            perms = ALL_PERMS if config.anonymous_write else READ_PERMS
            anonymous = Account("anonymous", home, perms, anonymous=True)
        ttl = config.users_cache_seconds
        store: UserStore | None = None
        if config.users_db:
            store = open_store(config.users_db, ttl, check_homes=config.storage == "local")
        elif config.users_file:
            store = FileStore(config.users_file, ttl)
        return cls(single=single, single_password=config.password, anonymous=anonymous,
                   store=store)  # fmt: skip

    @property
    def store(self) -> UserStore | None:
        """Where the accounts other than the single user and anonymous come from."""
        return self._store

    def _check_clashes(self, names: list[str]) -> None:
        if self._single is not None and self._single.name in names:
            raise ConfigError(
                f"user {show(self._single.name)} is both the single user (user/password) "
                "and an entry of users_file"
            )
        if self._anonymous is not None:
            if self._single is not None:
                names.append(self._single.name)
            for name in names:
                if name.lower() in ANONYMOUS_NAMES:
                    raise ConfigError(
                        f"user {show(name)} clashes with anonymous logins (anonymous = true)"
                    )
        if len(set(names)) != len(names):
            raise ConfigError("duplicate user names")

    @property
    def accounts(self) -> list[Account]:
        """Every account that can log in (anonymous last), e.g. for per-user session limits."""
        initial = self._store.initial() if self._store is not None else []
        found = [_account(entry) for entry in initial]
        if self._single is not None:
            found.insert(0, self._single)
        if self._anonymous is not None:
            found.append(self._anonymous)
        return found

    def homes(self) -> list[str]:
        """Blocking, at start-up: every home, the store's included (stale-upload clean-up)."""
        found = [account.home for account in self.accounts]
        if self._store is not None:
            found += self._store.homes()
        return sorted(set(found))

    def is_known_fast(self, name: str) -> bool:
        """Whether ``name`` could log in. Cheap; never let it change a reply (user enumeration).
        With a database, only names already cached are known."""
        if self._anonymous is not None and name.lower() in ANONYMOUS_NAMES:
            return True
        if self._single is not None and name == self._single.name:
            return True
        return self._store is not None and isinstance(self._store.peek(name), UserEntry)

    async def close(self) -> None:
        """Release the store's connections (server shutdown)."""
        if self._store is not None:
            await self._store.close()

    def authenticate_cached(self, credentials: Credentials, peer: Peer) -> LoginResult | object:
        """The answer when it needs no hashing (anonymous, the single user, a cached verification),
        else ``NEED_CACHE_MISS``. Lets the control channel answer most logins without a task."""
        return self.lookup_cached(credentials.user, credentials.password)

    def lookup_cached(self, name: str, password: str) -> Account | None | object:
        """``authenticate_cached`` by name and password."""
        if self._anonymous is not None and name.lower() in ANONYMOUS_NAMES:
            return self._anonymous
        if self._single is not None and name == self._single.name:
            # Compare digests, not the strings: equal lengths, so the length does not leak.
            digest = hashlib.sha256(hashing.password_bytes(password)).digest()
            if hmac.compare_digest(digest, self._single_digest):
                return self._single
            if self._store is not None:
                # Next to a users file, a failure must take the hashed path like any other
                # name's: answered at once, it would tell the single user's name apart.
                return NEED_CACHE_MISS
            return None
        if self._store is None:
            return None  # single-user mode: unknown names are as fast as wrong passwords
        entry = self._store.peek(name)
        if not isinstance(entry, UserEntry):
            # Not cached, or an unknown name: that must pay for a (dummy) verification.
            return NEED_CACHE_MISS
        cached = self._verified.get(self._cache_key(name, password, entry.password_hash))
        return cached if cached is not None else NEED_CACHE_MISS

    async def authenticate(self, credentials: Credentials, peer: Peer) -> LoginResult:
        """Return the Account for a correct name/password pair, else None."""
        return await self.lookup(credentials.user, credentials.password)

    async def lookup(self, name: str, password: str) -> Account | None:
        """``authenticate`` by name and password (the peer plays no part here)."""
        answer = self.lookup_cached(name, password)
        if answer is not NEED_CACHE_MISS:
            return cast("Account | None", answer)
        assert self._store is not None  # lookup_cached answered every other case
        try:
            found = await self._store.lookup(name)
        except StoreError as exc:
            log.error("login of %r: cannot look the account up: %s", name[:64], exc)
            return None
        encoded = found.password_hash if found is not None else await self._dummy()
        ok = await self._verify(password, encoded)
        if not ok or found is None:
            return None
        account = _account(found)
        if len(self._verified) >= MAX_VERIFIED:
            self._verified.clear()
        self._verified[self._cache_key(name, password, found.password_hash)] = account
        return account

    async def _dummy(self) -> str:
        if not self._dummy_hash:
            loop = asyncio.get_running_loop()
            self._dummy_hash = await loop.run_in_executor(
                None, hashing.hash_password, secrets.token_urlsafe(16)
            )
        return self._dummy_hash

    def _cache_key(self, name: str, password: str, encoded: str) -> bytes:
        # An unkeyed SHA-256 of the password would sit in memory as a fast hash to brute-force;
        # keyed with a per-process secret it is worthless outside this process.
        return hmac.new(
            self._key,
            hashing.password_bytes(name)
            + b"\0"
            + hashing.password_bytes(password)
            + b"\0"
            + encoded.encode("ascii", "replace"),
            hashlib.sha256,
        ).digest()

    async def _verify(self, password: str, encoded: str) -> bool:
        loop = asyncio.get_running_loop()
        semaphore = self._semaphores.get(loop)
        if semaphore is None:
            semaphore = self._semaphores[loop] = asyncio.Semaphore(self._hash_slots)
        async with semaphore:
            # Looked up at call time (not bound at import) so tests can count calls.
            return await loop.run_in_executor(None, hashing.verify_password, password, encoded)
