"""Listeners, limits, timeouts and the server's lifecycle: start-up → serve → shutdown.

``run(config)`` is the whole life of one server process: pick the event loop (uvloop when installed),
raise RLIMIT_NOFILE to its hard limit, bind the control listener(s), serve until SIGTERM/SIGINT, then
stop accepting, tell idle sessions ``421``, give running transfers a grace period, and exit 0.

Limits are enforced at accept (``max_sessions``, ``max_per_ip``) and at login (per-user
``max_sessions``). Timeouts (login, idle) are checked by one sweeper task over all sessions from their
``last_activity``, so an idle session costs no timer of its own.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import gc
import logging
import os
import resource
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ..auth import NEED_CACHE_MISS, Account, Authenticator
from ..config import Config, ConfigError, pasv_range
from ..fs.base import Capabilities, FileSystem
from ..fs.iopool import IoPool
from ..fs.local import LocalFS, cleanup_stale_uploads
from ..proto.proxy import ProxyError, ProxyPolicy
from ..proto.replies import Reply
from ..proto.session import SessionSettings
from ..proto.state import Login, TlsMode
from .addrtable import AddressTable, Refusal
from .control import NEED_ASYNC, ControlChannel
from .data import BulkThreads, DataTimeout, PassivePool, read_proxy_header_exactly
from .logins import LoginGate
from .logs import setup_logging
from .observe import Observer
from .tls import make_context
from .workers import reserve_port, split_range, supervise

__all__ = ["Server", "run"]

log = logging.getLogger("ftpd")

SWEEP_INTERVAL = 1.0
SWEEP_SLICE = 500  # sessions checked per turn of the loop
SHUTDOWN_GRACE = 10.0
ACCEPT_RETRY_DELAY = 1.0  # out of file descriptors: wait before accepting again (as asyncio does)
# accept() errors that concern one connection only (it was reset before we took it).
_ACCEPT_SKIP = (errno.ECONNABORTED, errno.EPROTO, errno.EPERM, errno.EINTR)


class Server:
    """State shared by all sessions of one process."""

    def __init__(self, config: Config, authenticator: Authenticator | None = None,
                 counters: AddressTable | None = None, worker: int = 0) -> None:
        self.config = config
        self.worker = worker
        self.auth = authenticator or Authenticator.from_config(config)
        self.session_settings = SessionSettings(
            banner=config.banner,
            max_login_attempts=config.max_login_attempts,
            login_fail_delay=config.login_fail_delay,
            port_promiscuous=config.port_promiscuous,
            tls_mode=TlsMode(config.tls),
            capabilities=_storage_capabilities(config),
        )
        tls_wanted = config.tls != "off" or config.implicit_tls_port
        self.tls_context = make_context(config) if tls_wanted else None
        workers = max(1, config.workers)
        first, last = split_range(*pasv_range(config), workers, worker)
        # PROXY protocol (a load balancer in front): read on control and data connections alike.
        self.proxy = ProxyPolicy.from_text(config.proxy_protocol, config.proxy_trusted,
                                           config.proxy_timeout)
        self.pasv_pool = PassivePool(first, last, self.proxy)
        # Limits and bans hold across worker processes, per exact address (addrtable.py).
        self.counters = counters or address_table(config, 1)
        self.pasv_address = ""  # resolved at start-up when pasv_address is a host name
        self.max_line = 4096
        self.log_commands = logging.getLogger("ftpd.session").isEnabledFor(logging.DEBUG)
        # Local file calls go through the lean IoPool (iopool.py: ~3x cheaper per hop); the
        # loop's default executor (password hashing, name resolution) stays a ThreadPoolExecutor.
        self.io = IoPool(config.io_threads, "ftpd-io")
        self.executor = concurrent.futures.ThreadPoolExecutor(config.io_threads,
                                                              thread_name_prefix="ftpd-io")
        bulk_threads = max(2, config.io_threads // 4)
        self.bulk = BulkThreads(concurrent.futures.ThreadPoolExecutor(
            bulk_threads, thread_name_prefix="ftpd-bulk"), bulk_threads)
        self.channels: set[ControlChannel] = set()
        self._fs_cache: dict[tuple[str, bool], FileSystem] = {}
        self._next_sid = 0
        self._servers: list[asyncio.base_events.Server] = []
        # Implicit FTPS behind a PROXY balancer: our own accept loop (see _serve_implicit_proxied),
        # its listening socket, and one short-lived task per connection until its TLS is up.
        self._tls_accept: asyncio.Task[None] | None = None
        self._tls_sock: socket.socket | None = None
        self._handoffs: set[asyncio.Task[None]] = set()
        self._headers_pending = 0  # connections of trusted peers still reading their header
        self._sweeper: asyncio.Task[None] | None = None
        self.observer = Observer(config, self)
        self.logins = LoginGate(self.auth, os.cpu_count() or 2, self._count_failure)
        self.greeting = Reply(220, config.banner).encode()

    # ------------------------------------------------------------------ sessions
    def admit(self, ch: ControlChannel) -> str | None:
        """Register a new connection, or return why it is refused (answered 421)."""
        cfg = self.config
        ip = ch.session.peer_ip
        refusal = self.counters.admit(ip, cfg.max_per_ip, cfg.max_sessions, time.monotonic())
        if refusal is not None:
            return refusal.value
        self._next_sid += 1
        ch.sid = self._next_sid
        self.channels.add(ch)
        ch.counted_ip = ip
        self.observer.session_opened(ch)
        return None

    def release(self, ch: ControlChannel) -> None:
        if ch.counted_ip:
            self.observer.session_closed(ch)
            self.channels.discard(ch)
            self.counters.release(ch.counted_ip, time.monotonic())
            ch.counted_ip = ""
        if ch.counted_user:
            self.counters.add_user(ch.counted_user, -1)
            ch.counted_user = ""
        self.logins.cancel(ch)  # a login check it left behind is dropped, not hashed

    def authenticate_fast(self, ch: ControlChannel, name: str, password: str) -> Any:
        """The login result when it needs no waiting (single user, anonymous, a cached hash
        verification), else ``NEED_ASYNC``."""
        ip = ch.session.peer_ip
        if self.counters.is_banned(ip, time.monotonic()):
            # Banned while this connection was open: no more guesses on it either.
            return Refusal.BANNED.value
        account = self.auth.authenticate_cached(name, password)
        if account is NEED_CACHE_MISS:
            return NEED_ASYNC
        if account is None:
            self._count_failure(ip)
        return self._login_result(ch, name, account)

    async def authenticate(self, ch: ControlChannel, name: str, password: str) -> Any:
        """Check credentials; on success give the channel its filesystem. See ``Authenticate``.
        Hash verifications go through the bounded, cancellable ``LoginGate`` (logins.py), which
        counts their failures itself (also for clients that left)."""
        fast = self.authenticate_fast(ch, name, password)
        if fast is not NEED_ASYNC:
            return fast
        result = await self.logins.check(ch, ch.session.peer_ip, name, password)
        if isinstance(result, str):
            log.info("%s login refused: %s", ch._who(), result)
            return result
        return self._login_result(ch, name, result)

    def _count_failure(self, ip: str) -> None:
        if self.counters.fail(ip, time.monotonic()):
            log.warning("banned %s for %.0f s after %d failed logins", ip,
                        self.config.ban_seconds, self.config.ban_after)

    def _login_result(self, ch: ControlChannel, name: str, account: Account | None) -> Any:
        if account is None:
            self.observer.login(ch, False)
            if log.isEnabledFor(logging.INFO):
                log.info("%s login failed for user %r", ch._who(), name[:64],
                         extra={"event": "login", "result": "failed", "user": name[:64]})
            return None
        if ch.counted_user:  # re-login (USER while logged in): the old account's slot is freed
            self.counters.add_user(ch.counted_user, -1)
            ch.counted_user = ""
        if account.max_sessions and self.counters.user_count(account.name) >= account.max_sessions:
            log.info("%s login refused for %r: per-user session limit", ch._who(), account.name)
            return "Too many sessions for this user."
        self.counters.add_user(account.name, 1)
        ch.counted_user = account.name
        ch.fs = self.fs_for(account)
        ch.session.caps = ch.fs.capabilities
        self.observer.login(ch, True)
        if log.isEnabledFor(logging.INFO):
            log.info("[%d] %s:%d %s login ok", ch.sid, ch.peer[0], ch.peer[1], account.name,
                     extra={"event": "login", "result": "ok", "sid": ch.sid,
                            "peer": f"{ch.peer[0]}:{ch.peer[1]}", "user": account.name})
        return account

    def fs_for(self, account: Account) -> FileSystem:
        """One filesystem object per home, shared by that home's sessions (lean sessions). With
        ``storage = "s3"`` the home is the key prefix ``<s3_prefix>/<account name>/``."""
        s3 = self.config.storage == "s3"
        key = (account.name, False) if s3 else (account.home, True)
        fs = self._fs_cache.get(key)
        if fs is None:
            if s3:
                from ..fs.s3 import user_fs  # the optional s3 extra: imported only when used

                fs = user_fs(self.config, account.name)
            else:
                fs = LocalFS(account.home, self.io, atomic_uploads=self.config.atomic_uploads)
            self._fs_cache[key] = fs
        return fs

    # ------------------------------------------------------------------ timeouts
    async def _sweep(self) -> None:
        cfg = self.config
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            now = time.monotonic()
            expired: list[tuple[ControlChannel, str]] = []
            # In slices, yielding to the loop between them: one pass over 10,000 sessions takes
            # ~5 ms, which every command arriving meanwhile would wait for (NOOP p99 with 10,000
            # held). A snapshot, since sessions come and go while we yield.
            channels = list(self.channels)
            for i, ch in enumerate(channels):
                if i and not i % SWEEP_SLICE:
                    await asyncio.sleep(0)
                if ch.closed or ch.session is None:
                    continue
                if ch.session.login is not Login.LOGGED_IN:
                    if now - ch.connected_at > cfg.login_timeout:
                        expired.append((ch, "Login timeout."))
                elif ch.transfer_task is not None:
                    if now - ch.last_activity > cfg.data_timeout and not ch.timed_out:
                        # No progress (no data connection, or a stalled one): abort with 426.
                        log.info("%s data timeout", ch._who())
                        ch.timed_out = True
                        ch.transfer_task.cancel()
                elif not ch.busy and now - ch.last_activity > cfg.idle_timeout:
                    expired.append((ch, "Timeout."))
                elif (ch.passive is not None or ch.early is not None) and \
                        now - ch.passive_since > cfg.data_timeout:
                    # A PASV nobody used: give its port back to the pool (pyftpdlib: 30 s).
                    ch._drop_passive()
                    ch.session.forget_data_setup()
            self.counters.purge(now)  # expired failure counts and bans, a slice per pass
            for ch, why in expired:
                log.info("%s closed: %s", ch._who(), why)
                ch.close(Reply(421, why + " Closing control connection."))

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> list[tuple[str, int]]:
        cfg = self.config
        loop = asyncio.get_running_loop()
        loop.set_default_executor(self.executor)
        if cfg.pasv_address:
            self.pasv_address = await _resolve_pasv_address(cfg.pasv_address)
        if cfg.storage == "s3":
            from ..fs.s3 import shared_storage  # the optional s3 extra: imported only when used

            try:
                await shared_storage(cfg).check()  # a wrong bucket fails now, not at first login
            except OSError as exc:
                raise ConfigError(f"invalid value for s3_bucket: {cfg.s3_bucket!r} "
                                  f"(cannot use it: {exc})") from None
        try:
            sock = _listen_socket(cfg.host, cfg.port, cfg.backlog,
                                  reuse_port=self.counters.workers > 1)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {cfg.host}:{cfg.port}: {exc.strerror or exc}") from None
        srv = await loop.create_server(lambda: ControlChannel(self), sock=sock, backlog=cfg.backlog)
        self._servers.append(srv)
        addrs = [(s.getsockname()[0], s.getsockname()[1]) for s in srv.sockets]
        if cfg.implicit_tls_port:
            tls_sock = _listen_socket(
                cfg.host, cfg.implicit_tls_port, cfg.backlog, reuse_port=self.counters.workers > 1
            )
            if cfg.proxy_protocol == "off":
                tls_srv = await loop.create_server(
                    lambda: ControlChannel(self),
                    sock=tls_sock,
                    backlog=cfg.backlog,
                    ssl=self.tls_context,
                    ssl_handshake_timeout=cfg.tls_handshake_timeout,
                )
                self._servers.append(tls_srv)
            else:
                # TLS from the first byte, but a balancer's PROXY header comes before it: accept
                # ourselves, read the header off the raw socket, then start TLS on the rest.
                self._tls_sock = tls_sock
                self._tls_accept = loop.create_task(self._serve_implicit_proxied(tls_sock))
            host, port = tls_sock.getsockname()[:2]
            log.info("implicit FTPS on %s:%d", host, port)
        self._sweeper = loop.create_task(self._sweep())
        await self.observer.start()
        # Long-lived start-up objects need not be scanned by every GC pass (lean 10k sessions).
        gc.collect()
        gc.freeze()
        log.info("listening on %s", ", ".join(f"{h}:{p}" for h, p in addrs))
        return addrs

    async def shutdown(self, grace: float = SHUTDOWN_GRACE) -> None:
        """Stop accepting, 421 to idle sessions, let transfers finish within ``grace``, then abort."""
        for srv in self._servers:
            srv.close()
        await self._stop_implicit_proxied()
        for ch in list(self.channels):
            if ch.transfer_task is None and not ch.busy:
                ch.close(Reply(421, "Server shutting down."))
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(ch.transfer_task for ch in self.channels):
            await asyncio.sleep(0.05)
        # Past the grace period: abort what still runs while the sessions are open, so that each
        # transfer ends with its 426 (and its log and xferlog lines) before the 421.
        running = [ch.transfer_task for ch in self.channels if ch.transfer_task is not None]
        for task in running:
            task.cancel()
        if running:
            await asyncio.wait(running, timeout=5.0)
        for ch in list(self.channels):
            ch.close(Reply(421, "Server shutting down."))
        if self._sweeper is not None:
            self._sweeper.cancel()
        await asyncio.sleep(0)
        if self.config.storage == "s3":
            from ..fs.s3 import close_shared_storage

            await close_shared_storage()  # finishes aborts of unfinished multipart uploads
        self.observer.stop()
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.io.shutdown()
        self.bulk.executor.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ implicit FTPS + PROXY
    # create_server(ssl=...) would start TLS on the first byte, but behind a balancer the PROXY
    # header comes first, often in the same segment as the ClientHello. So this listener accepts
    # itself and reads exactly the header's bytes from the raw socket (peeked, then consumed; not
    # one byte of TLS), then lets the loop run TLS on the same socket (connect_accepted_socket).
    # A task per connection lives until its TLS handshake is done; only trusted peers have a
    # header phase, bounded in time (proxy_timeout) and in number (backlog), and logged when
    # refused. Untrusted peers go straight to TLS, exactly as on the create_server listener.
    async def _serve_implicit_proxied(self, lsock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, addr = await loop.sock_accept(lsock)
            except OSError as exc:
                if exc.errno in _ACCEPT_SKIP:
                    continue
                # EMFILE/ENFILE/ENOBUFS/ENOMEM: the connection waits in the backlog meanwhile.
                log.error(
                    "implicit FTPS listener: accept failed (%s); retrying in %.0f s",
                    exc.strerror or exc,
                    ACCEPT_RETRY_DELAY,
                )
                await asyncio.sleep(ACCEPT_RETRY_DELAY)
                continue
            task = loop.create_task(self._implicit_proxied_conn(conn, (addr[0], addr[1])))
            self._handoffs.add(task)
            task.add_done_callback(self._handoffs.discard)

    async def _implicit_proxied_conn(self, conn: socket.socket, peer: tuple[str, int]) -> None:
        """One accepted connection: its PROXY header (trusted peers), then TLS, then a session."""
        cfg = self.config
        policy = self.proxy
        handed = False
        try:
            conn.setblocking(False)
            if policy.trusts(peer[0]):
                if self._headers_pending >= cfg.backlog:
                    log.warning(
                        "closing connection from %s:%d: %d connections already waiting "
                        "for their PROXY header",
                        peer[0],
                        peer[1],
                        self._headers_pending,
                    )
                    return
                self._headers_pending += 1
                try:
                    header = await read_proxy_header_exactly(conn, policy.required, policy.timeout)
                except DataTimeout:
                    log.info(
                        "closing connection from %s:%d: no complete PROXY header in time", *peer
                    )
                    return
                except ProxyError as exc:  # NotProxy included: "no PROXY header" (required)
                    log.info("closing connection from %s:%d: %s", peer[0], peer[1], exc)
                    return
                finally:
                    self._headers_pending -= 1
                if header is None:
                    log.debug("connection from %s:%d closed before its PROXY header", *peer)
                    return
                if header.src is not None:
                    log.debug("PROXY header from %s: client %s:%d", peer[0], *header.src)
                    peer = header.src
            # The channel starts with the real client, so connection_made skips the header phase
            # and limits, bans, logs and the data-connection check all see that client.
            real = peer
            handed = True  # from here the transport owns the socket (and closes it on failure)
            await asyncio.get_running_loop().connect_accepted_socket(
                lambda: ControlChannel(self, real),
                conn,
                ssl=self.tls_context,
                ssl_handshake_timeout=cfg.tls_handshake_timeout,
            )
        except (OSError, TimeoutError) as exc:  # ssl.SSLError is an OSError
            # A failed or stalled handshake: as quiet as on the create_server listener.
            log.debug("implicit FTPS connection from %s:%d failed: %r", peer[0], peer[1], exc)
        except Exception:  # our bug: logged, and the listener goes on
            log.exception("implicit FTPS connection from %s:%d", peer[0], peer[1])
        finally:
            if not handed:
                conn.close()

    async def _stop_implicit_proxied(self) -> None:
        """Stop accepting and drop the connections not yet sessions (header or handshake)."""
        tasks = list(self._handoffs)
        if self._tls_accept is not None:
            tasks.append(self._tls_accept)
            self._tls_accept = None
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)
        if self._tls_sock is not None:
            self._tls_sock.close()
            self._tls_sock = None


def _listen_socket(host: str, port: int, backlog: int, reuse_port: bool = False) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        # Inherited by accepted sockets (Linux copies the flag): keeps the urgent byte of a Telnet
        # SYNCH (lftp's ABOR) or ftplib's MSG_OOB "ABOR" in the stream instead of losing it.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_OOBINLINE, 1)
        if family == socket.AF_INET6 and host == "::":
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # '::' serves IPv4 too
        sock.bind((host, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


async def _resolve_pasv_address(name: str) -> str:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(name, None, family=socket.AF_INET, type=socket.SOCK_STREAM)
    if not infos:
        raise OSError(f"cannot resolve pasv_address {name!r}")
    return str(infos[0][4][0])


def _raise_nofile() -> tuple[int, int]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft, hard


def _new_loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if kind == "uvloop":
                raise
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run(config: Config, on_ready: Callable[[list[tuple[str, int]]], None] | None = None) -> int:
    """Serve until SIGTERM/SIGINT; returns the process exit code. ``workers`` > 1 forks workers."""
    setup_logging(config)
    soft, hard = _raise_nofile()
    log.info("file descriptor limit %d (hard %d)", soft, hard)
    _cleanup_stale_uploads(config)
    workers = max(1, config.workers)
    if workers == 1:
        return serve(config, on_ready)
    reserved, port = reserve_port(config.host, config.port)
    config = replace(config, port=port)
    counters = address_table(config, workers)

    def child(index: int, ready_fd: int) -> int:
        reserved.close()
        counters.index = index
        counters.reset_worker(index)

        def ready(_addrs: list[tuple[str, int]]) -> None:
            os.write(ready_fd, b"1")
            os.close(ready_fd)

        return serve(config, ready, counters=counters, worker=index)

    def all_ready() -> None:
        log.info("%d workers serving %s:%d", workers, config.host, port)
        if on_ready is not None:
            on_ready([(config.host, port)])

    return supervise(workers, child, all_ready)


def address_table(config: Config, workers: int) -> AddressTable:
    """The per-address limits and bans of the whole server (created before any fork)."""
    return AddressTable(workers, config.max_sessions, config.per_ip_ipv6_prefix,
                        config.ban_after, config.ban_seconds)


def _cleanup_stale_uploads(config: Config) -> None:
    """Remove temp files of uploads a crash interrupted, once, before any worker serves (a worker
    doing it while another serves could delete a live upload)."""
    if config.storage != "local":
        return  # object storage: an unfinished multipart upload is never visible
    homes = sorted({a.home for a in Authenticator.from_config(config).accounts})
    removed = sum(cleanup_stale_uploads(home) for home in homes if os.path.isdir(home))
    if removed:
        log.info("removed %d unfinished upload(s) left by an earlier run", removed)


def serve(config: Config, on_ready: Callable[[list[tuple[str, int]]], None] | None = None,
          counters: AddressTable | None = None, worker: int = 0) -> int:
    """One server process (or one worker): its own event loop, until a shutdown signal."""
    loop = _new_loop(config.loop)
    asyncio.set_event_loop(loop)
    server = Server(config, counters=counters, worker=worker)
    stop = asyncio.Event()
    signals = 0

    def on_signal() -> None:
        nonlocal signals
        signals += 1
        if signals > 1:
            log.warning("second signal: exiting at once")
            os._exit(1)
        stop.set()

    async def main() -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal)
        addrs = await server.start()
        log.info("event loop: %s", type(loop).__module__)
        if on_ready is not None:
            on_ready(addrs)
        await stop.wait()
        log.info("shutting down")
        await server.shutdown(config.shutdown_grace)
        return 0

    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


def _storage_capabilities(config: Config) -> Capabilities:
    """What the configured storage can do (FEAT before login must not promise more)."""
    if config.storage == "s3":
        from ..fs.s3 import S3FS  # the optional extra: imported only when configured

        return S3FS.capabilities
    return LocalFS.capabilities
