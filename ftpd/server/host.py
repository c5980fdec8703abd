"""What a control channel may ask of the server: ``SessionHost``.

A channel is handed this small object instead of the whole ``Server`` (as uvicorn hands its
protocols a ``ServerState``): admission (the session slot and the per-IP count), bans, login
accounting (per-user counts), the filesystem for a user, plus the read-only things every session
shares (settings, TLS context, passive pool, observer). The server owns the listeners, the
sweeper and the process lifecycle; it creates one host and hands it to every channel.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from ..auth import NEED_CACHE_MISS, Logins
from ..auth import Peer as Client
from ..auth.base import Account, Authenticator, LoginResult, Refusal
from ..events import EventBus, reporting_fs
from ..fs.base import Capabilities, FileSystem
from ..fs.factory import Storage
from ..fs.quota import Limits, QuotaFS
from ..proto.replies import Reply
from ..proto.session import SessionSettings
from ..proto.state import TlsMode
from . import addrtable
from .logins import LoginGate
from .rates import Bandwidth

if TYPE_CHECKING:
    import ssl

    from ..config import Config
    from ..proto.proxy import ProxyPolicy
    from .addrlocal import Counters
    from .data import BulkThreads
    from .observe import Observer
    from .passive import PassivePool

__all__ = ["SessionHost", "Slot", "Peer", "NEED_ASYNC", "session_settings"]

log = logging.getLogger("ftpd")

NEED_ASYNC = object()  # login_now: "cannot answer without awaiting"


class Peer(Protocol):
    """What the host needs to know of a channel (for logs and counters)."""

    sid: int
    peer: tuple[str, int]
    session: Any  # its proto.Session (``secure``: the control connection is under TLS)

    def who(self) -> str: ...


def _client(ch: Peer) -> Client:
    """Who is logging in, as the ``Authenticator`` sees it."""
    session = ch.session
    return Client(ch.peer[0], ch.peer[1], bool(session is not None and session.secure))


def session_settings(config: Config, capabilities: Capabilities) -> SessionSettings:
    """What every new session starts from (rebuilt by a reload)."""
    return SessionSettings(
        banner=config.banner,
        max_login_attempts=config.max_login_attempts,
        login_fail_delay=config.login_fail_delay,
        port_promiscuous=config.port_promiscuous,
        tls_mode=TlsMode(config.tls),
        capabilities=capabilities,
    )


class Slot:
    """One admitted connection: its place in ``max_sessions`` and in its address's count.
    ``release`` is idempotent; a session's ``finish`` calls it."""

    __slots__ = ("host", "ip", "sid", "owner")

    def __init__(self, host: SessionHost, ip: str, sid: int) -> None:
        self.host = host
        self.ip = ip
        self.sid = sid
        self.owner: Any = None  # the channel, once it has one (implicit TLS: after the handshake)

    def release(self) -> None:
        host = self.host
        if not self.ip:
            return
        host.counters.release(self.ip, time.monotonic())
        self.ip = ""
        if self.owner is not None:
            host.channels.discard(self.owner)
            host.observer.session_closed(self.owner)
            self.owner = None
        host.slots_open -= 1


class SessionHost:
    """Admission, per-IP accounting, bans, login accounting and filesystems (see module doc)."""

    def __init__(
        self,
        config: Config,
        auth: Authenticator,
        counters: Counters,
        storage: Storage,
        worker: int = 0,
        events: EventBus | None = None,
    ) -> None:
        self.config = config
        self.auth = auth
        self.logins = Logins(auth)  # the store's sync fast path first, its failures contained
        # The filesystem a session gets at login; ftpd.api replaces it (a factory, layers).
        # None: the storage's filesystem for the account (``fs_for``), without a call through a hook.
        self.session_fs: Callable[[Any, Account], FileSystem] | None = None
        self.counters = counters
        self.storage = storage
        self.worker = worker
        self.events = events if events is not None else EventBus()
        # The operator's hooks (hooks.py) consume this bus; ftpd.api has its own (a layer).
        self.settings = session_settings(config, storage.capabilities)
        self.bandwidth = self.make_bandwidth(config)
        self.greeting = Reply(220, config.banner).encode()
        self.max_line = 4096
        self.log_commands = logging.getLogger("ftpd.session").isEnabledFor(logging.DEBUG)
        self.pasv_address = ""  # resolved at start-up when pasv_address is a host name
        # The listeners' address when they are bound to one (not a wildcard): then it is every
        # connection's local address, and a session need not ask the kernel (getsockname).
        self.bound_ip: str | None = None
        # Set by the server once built (they need the running configuration).
        self.tls_context: ssl.SSLContext | None = None
        self.pasv_pool: PassivePool = None  # type: ignore[assignment]
        self.proxy: ProxyPolicy = None  # type: ignore[assignment]
        self.bulk: BulkThreads | None = None
        self.observer: Observer = None  # type: ignore[assignment]
        self.channels: set[Any] = set()  # sessions with a channel, for the sweeper and shutdown
        self.slots_open = 0  # slots taken and not yet released (the lifecycle tests read it)
        self._next_sid = 0
        # Checks that wait (a hash verification, a database): bounded, fair between addresses,
        # dropped with their session (logins.py); failures and bans live in the shared table.
        self.gate = LoginGate(self.logins.check, os.cpu_count() or 2, self._count_failure)

    # ------------------------------------------------------------------ admission
    def admit(self, ip: str) -> Slot | str:
        """A slot for a new connection from ``ip``, or why it is refused (answered 421). The
        check and the count are one step on the shared table: exact per address, across
        workers (addrtable.py)."""
        cfg = self.config
        refusal = self.counters.admit(ip, cfg.max_per_ip, cfg.max_sessions, time.monotonic())
        if refusal is not None:
            return refusal.value
        self._next_sid += 1
        self.slots_open += 1
        return Slot(self, ip, self._next_sid)

    def attach(self, slot: Slot, ch: Any) -> None:
        """The slot's session has a channel now: the sweeper and shutdown see it."""
        slot.owner = ch
        self.channels.add(ch)
        self.observer.session_opened(ch)

    # ------------------------------------------------------------------ login accounting
    def login_now(self, ch: Peer, ip: str, name: str, password: str) -> Any:
        """The login result when it needs no waiting (single user, anonymous, a cached hash
        verification, a banned address), else ``NEED_ASYNC``."""
        if self.counters.is_banned(ip, time.monotonic()):
            # Banned while this connection was open: no more guesses on it either.
            return Refusal(addrtable.Refusal.BANNED.value)
        by_name = self.logins.by_name
        if by_name is not None:
            account = by_name(name, password)
        else:
            account = self.logins.fast(name, password, _client(ch))
        if account is NEED_CACHE_MISS:
            return NEED_ASYNC
        if account is None:
            self._count_failure(ip)
        return account

    async def login_check(self, ch: Peer, ip: str, name: str, password: str) -> LoginResult:
        """Check credentials the slow way (a hash verification in the executor, a database),
        through the ``LoginGate``, which counts the failures itself (also for clients that
        left) and may refuse at once (too many checks waiting)."""
        return await self.gate.check(ch, ip, name, password, _client(ch))

    def login_result(
        self, ch: Peer, ip: str, name: str, account: LoginResult, counted_user: str
    ) -> tuple[Any, str]:
        """Account for a login attempt. Returns (the result for the session, the user now
        counted against per-user limits: "" for none). See ``proto.requests.Authenticate``."""
        if isinstance(account, Refusal):  # the store said no for a reason: 421, then close
            self.observer.login(ch, False, None)
            self.logout(counted_user)
            log.info("%s login refused for %r: %s", ch.who(), name[:64], account.reason)
            return account.reason, ""
        if account is None:
            self.observer.login(ch, False, None)  # the failure is counted where it was found
            if log.isEnabledFor(logging.INFO):
                log.info(
                    "%s login failed for user %r",
                    ch.who(),
                    name[:64],
                    extra={"event": "login", "result": "failed", "user": name[:64]},
                )
            return None, counted_user
        self.logout(counted_user)  # re-login (USER while logged in): the old account's slot
        if account.max_sessions and self.counters.user_count(account.name) >= account.max_sessions:
            log.info("%s login refused for %r: per-user session limit", ch.who(), account.name)
            return "Too many sessions for this user.", ""
        self.counters.add_user(account.name, 1)
        self.observer.login(ch, True, account)
        if log.isEnabledFor(logging.INFO):
            log.info(
                "[%d] %s:%d %s login ok",
                ch.sid,
                ch.peer[0],
                ch.peer[1],
                account.name,
                extra={
                    "event": "login",
                    "result": "ok",
                    "sid": ch.sid,
                    "peer": f"{ch.peer[0]}:{ch.peer[1]}",
                    "user": account.name,
                },
            )
        return account, account.name

    def logout(self, user: str) -> None:
        """Give back a per-user count taken by ``login_result``."""
        if user:
            self.counters.add_user(user, -1)

    def fs_for(self, account: Account) -> FileSystem:
        return self.storage.for_user(account.name, account.home)

    def user_fs(self, ch: Any, account: Account) -> FileSystem:
        """A logged-in session's filesystem: its storage, under its quota, reporting events."""
        hook = self.session_fs
        fs = self.fs_for(account) if hook is None else hook(ch, account)
        cfg = self.config
        quota_bytes = account.quota_bytes or cfg.user_quota_bytes
        quota_files = account.quota_files or cfg.user_quota_files
        if (quota_bytes or quota_files) and not self.storage.s3 and account.home:
            limits = Limits(quota_bytes, quota_files)
            fs = QuotaFS(fs, account.home, limits)  # type: ignore[assignment]
        return reporting_fs(self.events, ch, account, fs)

    def make_bandwidth(self, cfg: Config) -> Bandwidth:
        return Bandwidth(
            cfg.max_download_rate,
            cfg.max_upload_rate,
            cfg.max_total_download_rate,
            cfg.max_total_upload_rate,
            self.counters,
        )

    # ------------------------------------------------------------------ bans
    def expire_bans(self, now: float) -> None:
        """Drop a slice of the shared table's expired failure counts and bans (an address that
        rotates, or a user's occasional typo, must not fill it for ever)."""
        self.counters.purge(now)

    def _count_failure(self, ip: str) -> None:
        if self.counters.fail(ip, time.monotonic()):
            log.warning(
                "banned %s for %.0f s after %d failed logins",
                ip,
                self.config.ban_seconds,
                self.config.ban_after,
            )
