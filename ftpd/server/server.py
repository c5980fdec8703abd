"""Listeners, the timeout sweeper and the server's lifecycle: start-up → serve → shutdown.

``run(config)`` is the whole life of one server process: pick the event loop (uvloop when installed),
raise RLIMIT_NOFILE to its hard limit, bind the control listener(s), serve until SIGTERM/SIGINT, then
stop accepting, tell idle sessions ``421``, give running transfers a grace period, and exit 0.

What a session may ask of the server (admission and limits, bans, login accounting, filesystems)
is the ``SessionHost`` (``host.py``); the implicit-TLS listener is ``implicit.py``. Timeouts (login,
idle, data, unread replies) are checked by one sweeper task calling each channel's ``tick``, so an
idle session costs no timer of its own.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gc
import ipaddress
import logging
import os
import resource
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ..auth import Account, Authenticator, ConfigAuthenticator, Logins, authenticator_from_config
from ..config import Config, ConfigError, pasv_range
from ..events import EventBus, ObserverBridge
from ..fs.base import FileSystem
from ..fs.factory import Storage
from ..fs.iopool import IoPool
from ..proto.proxy import ProxyPolicy
from ..proto.replies import Reply
from .addrlocal import Counters, LocalTable
from .addrtable import AddressTable
from .control import ControlChannel
from .data import BulkThreads, trim_buffers
from .hooks import Hooks, check_hooks, start_hooks
from .host import SessionHost, session_settings
from .implicit import ImplicitListener
from .logs import setup_logging
from .memory import fix_mmap_threshold, release_free_memory
from .observe import Observer
from .passive import PassivePool, PortMap
from .reload import Prepared, prepare, remove_pid_file, write_pid_file
from .sizing import cores, plan_workers
from .sockets import listen_socket
from .tls import make_context
from .workers import reserve_port, supervise

__all__ = ["Server", "run"]

log = logging.getLogger("ftpd")

SWEEP_INTERVAL = 1.0
SWEEP_SLICE = 500  # sessions checked per turn of the loop
SHUTDOWN_GRACE = 10.0



def _bound_ip(sock: socket.socket) -> str | None:
    """The address ``sock`` listens on, or None for a wildcard (each connection's own local
    address then depends on the interface it came in on)."""
    ip = str(sock.getsockname()[0])
    try:
        unspecified = ipaddress.ip_address(ip.split("%", 1)[0]).is_unspecified
    except ValueError:
        return None
    return None if unspecified else ip

class Server:
    """One server process: its listeners, the sweeper, start-up and shutdown."""

    def __init__(
        self,
        config: Config,
        authenticator: Authenticator | None = None,
        counters: Counters | None = None,
        worker: int = 0,
        *,
        ports: PortMap | None = None,
        session_fs: Callable[[ControlChannel, Account], FileSystem] | None = None,
        embedded: bool = False,
        events: EventBus | None = None,
    ) -> None:
        self.config = config
        # Embedded in an application's loop (ftpd.api): leave the loop's default executor and
        # the garbage collector alone, they are the application's.
        self.embedded = embedded
        self.worker = worker
        self._own_auth = authenticator is None  # a reload rebuilds only the configured store
        # Local file calls go through the lean IoPool (iopool.py: ~3x cheaper per hop); the
        # loop's default executor (password hashing, name resolution) stays a ThreadPoolExecutor.
        self.io = IoPool(config.io_threads, "ftpd-io")
        self.executor = concurrent.futures.ThreadPoolExecutor(
            config.io_threads, thread_name_prefix="ftpd-io"
        )
        bulk_threads = max(2, config.io_threads // 4)
        self.bulk = BulkThreads(
            concurrent.futures.ThreadPoolExecutor(bulk_threads, thread_name_prefix="ftpd-bulk"),
            bulk_threads,
        )
        self.storage = Storage(config, self.io)
        # Limits and bans hold across worker processes, per exact address (addrtable.py).
        # Events (ftpd.events): an application's callbacks (ftpd.api) and the operator's hooks
        # (hooks.py) consume the same stream; the commands are checked now (a one-line error).
        self.events = events if events is not None else EventBus()
        self._hook_commands = check_hooks(config)
        self._emit_events = events is not None or bool(self._hook_commands or config.webhook_url)
        self.hooks: Hooks | None = None
        host = self.host = SessionHost(
            config,
            authenticator or authenticator_from_config(config),
            counters or address_table(config, 1),
            self.storage,
            worker,
            events=self.events,
        )
        if session_fs is not None:
            host.session_fs = session_fs  # library hook (ftpd.api): the filesystem at login
        tls_wanted = config.tls != "off" or config.implicit_tls_port
        host.tls_context = make_context(config) if tls_wanted else None
        # PROXY protocol (a load balancer in front): read on control and data connections alike.
        host.proxy = ProxyPolicy.from_text(
            config.proxy_protocol, config.proxy_trusted, config.proxy_timeout
        )
        # Every worker draws from the whole range (``ports``: who holds what, in shared memory).
        host.pasv_pool = PassivePool(*pasv_range(config), host.proxy, ports)
        host.bulk = self.bulk
        host.observer = self.observer = Observer(config, host)
        self._servers: list[asyncio.base_events.Server] = []
        self._implicit: ImplicitListener | None = None
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def channels(self) -> set[ControlChannel]:
        """The sessions with a channel (admitted, not finished)."""
        return self.host.channels

    def fs_for(self, account: Account) -> FileSystem:
        """The storage of an account's home (ftpd.api's default filesystem)."""
        return self.host.fs_for(account)

    # ------------------------------------------------------------------ reload (reload.py)
    async def reload(self, load: Callable[[], Config]) -> bool:
        """Re-read the configuration, users and TLS files for new sessions (SIGHUP); an invalid
        one is refused with one log line and the running one stays. True when applied."""
        own_auth = self._own_auth

        def make_auth(cfg: Config) -> Any:
            if not own_auth:
                return None  # an application's authenticator (ftpd.api) is the application's
            auth = ConfigAuthenticator.from_config(cfg)
            if auth.store is not None:
                auth.store.check()
            return auth

        def build() -> tuple[Prepared, dict[Any, list[str]]]:
            prepared = prepare(self.config, load, make_context, make_auth)
            return prepared, check_hooks(prepared.config)

        try:
            prepared, commands = await asyncio.get_running_loop().run_in_executor(None, build)
        except ConfigError as exc:
            log.error(
                "reload refused, the running configuration stays: %s", " ".join(str(exc).split())
            )
            return False
        except Exception as exc:  # noqa: BLE001 - whatever it is, the server keeps serving
            log.error("reload refused, the running configuration stays: %r", exc)
            return False
        self._apply(prepared, commands)
        return True

    def _apply(self, p: Prepared, commands: dict[Any, list[str]]) -> None:
        cfg = p.config
        host = self.host
        self.config = host.config = self.observer.config = cfg
        host.settings = session_settings(cfg, self.storage.capabilities)
        host.greeting = Reply(220, cfg.banner).encode()
        host.bandwidth = host.make_bandwidth(cfg)
        for ch in host.channels:
            ch.quiet_until = 0.0  # shorter timeouts apply at the next sweep (``tick``)
        if p.tls_context is not None:
            # New sessions get the new context (the new certificate); running ones keep the one
            # they started with (see ControlChannel.tls_context), so their data connections
            # still show the certificate they verified and resume their TLS session.
            host.tls_context = p.tls_context
        if p.authenticator is not None:
            host.auth = p.authenticator
            old, host.logins = host.logins, Logins(p.authenticator)
            asyncio.get_running_loop().create_task(old.close())
        kept = list(p.kept)
        if self.hooks is not None:
            kept += self.hooks.update(cfg, commands)
        elif commands or cfg.webhook_url:
            kept.append("on_*/webhook_url (no hooks were running)")
        self._hook_commands = commands
        if kept:
            log.warning(
                "reload: %s changed but need(s) a restart; kept as they were", ", ".join(kept)
            )
        log.info(
            "reloaded configuration: %s",
            ", ".join(p.changed) or "no key changed",
            extra={"event": "reload", "changed": list(p.changed)},
        )

    # ------------------------------------------------------------------ timeouts
    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            await self.sweep_once(time.monotonic())

    async def sweep_once(self, now: float) -> None:
        """One pass: every channel's ``tick``, and expired bans."""
        # In slices, yielding to the loop between them: one pass over 10,000 sessions takes
        # ~5 ms, which every command arriving meanwhile would wait for (NOOP p99 with 10,000
        # held). A snapshot, since sessions come and go while we yield.
        for i, ch in enumerate(list(self.host.channels)):
            if i and not i % SWEEP_SLICE:
                await asyncio.sleep(0)
            if ch.quiet_until <= now:  # else idle with nothing that can expire before then
                ch.tick(now)
        self.host.expire_bans(now)  # a slice of the shared table's expired records per pass
        self.storage.mode.homes.expire(now)  # homes no inline call reopened for a second
        if trim_buffers():  # a burst of uploads is over: its spare receive buffers are freed,
            release_free_memory()  # and the heap pages they leave, given back (memory.py)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> list[tuple[str, int]]:
        cfg = self.config
        host = self.host
        loop = asyncio.get_running_loop()
        if not self.embedded:
            loop.set_default_executor(self.executor)
        if cfg.pasv_address:
            host.pasv_address = await _resolve_pasv_address(cfg.pasv_address)
        try:
            await self.storage.check()  # a wrong bucket fails now, not at first login
        except OSError as exc:
            raise ConfigError(
                f"invalid value for s3_bucket: {cfg.s3_bucket!r} (cannot use it: {exc})"
            ) from None
        reuse = host.counters.workers > 1
        try:
            sock = listen_socket(cfg.host, cfg.port, cfg.backlog, reuse_port=reuse)
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {cfg.host}:{cfg.port}: {exc.strerror or exc}"
            ) from None
        host.bound_ip = _bound_ip(sock)
        srv = await loop.create_server(lambda: ControlChannel(host), sock=sock, backlog=cfg.backlog)
        self._servers.append(srv)
        addrs = [(s.getsockname()[0], s.getsockname()[1]) for s in srv.sockets]
        if cfg.implicit_tls_port:
            tls_sock = listen_socket(cfg.host, cfg.implicit_tls_port, cfg.backlog, reuse_port=reuse)
            self._implicit = ImplicitListener(host, tls_sock)
            self._implicit.start()
            h, p = tls_sock.getsockname()[:2]
            log.info("implicit FTPS on %s:%d", h, p)
        self._sweeper = loop.create_task(self._sweep())
        await self.observer.start()
        self.hooks = start_hooks(cfg, self.events, self.observer.hooks, self._hook_commands)
        if self._emit_events:
            self.observer.listeners.append(ObserverBridge(self.events))
        if not self.embedded:
            # Long-lived start-up objects need not be scanned by every GC pass (lean 10k sessions).
            gc.collect()
            gc.freeze()
        log.info("listening on %s", ", ".join(f"{h}:{p}" for h, p in addrs))
        return addrs

    async def shutdown(self, grace: float = SHUTDOWN_GRACE) -> None:
        """Stop accepting, 421 to idle sessions, let transfers finish within ``grace``, then abort."""
        bye = Reply(421, "Server shutting down.")
        for srv in self._servers:
            srv.close()
        if self._implicit is not None:
            await self._implicit.stop()
        for ch in list(self.channels):
            if ch.transfer is None and not ch.busy:
                ch.expire(bye)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(ch.transfer for ch in self.channels):
            await asyncio.sleep(0.05)
        # Past the grace period: abort what still runs while the sessions are open, so that each
        # transfer ends with its 426 (and its log and xferlog lines) before the 421.
        running = [ch.transfer.task for ch in self.channels if ch.transfer is not None]
        for task in running:
            task.cancel()
        if running:
            await asyncio.wait(running, timeout=5.0)
        for ch in list(self.channels):
            ch.expire(bye)
        if self._sweeper is not None:
            self._sweeper.cancel()
        await asyncio.sleep(0)
        await self.storage.close()  # S3: finishes aborts of unfinished multipart uploads
        if self.hooks is not None:
            # The events of the last sessions first, then what their hooks still do.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.events.drain(), max(grace, 1.0))
            await self.hooks.close(max(grace, 1.0))
        if not self.embedded:
            await self.events.close(1.0)  # ftpd.api closes its own bus after the sessions'
        self.observer.stop()
        await self.host.logins.close()  # a users_db connection pool
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.io.shutdown()
        self.bulk.executor.shutdown(wait=False, cancel_futures=True)


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


def run(
    config: Config,
    on_ready: Callable[[list[tuple[str, int]]], None] | None = None,
    reload: Callable[[], Config] | None = None,
) -> int:
    """Serve until SIGTERM/SIGINT; returns the process exit code. ``workers`` > 1 forks workers.
    ``reload`` loads the configuration again on SIGHUP (the parent forwards it to the workers)."""
    setup_logging(config)
    soft, hard = _raise_nofile()
    log.info("file descriptor limit %d (hard %d)", soft, hard)
    _cleanup_stale_uploads(config)
    requested = config.workers
    workers, why = plan_workers(config.workers, config.max_sessions, soft, cores())
    log.info("%s", why)
    config = replace(config, workers=workers)
    if reload is not None:
        load_again = reload

        def reload() -> Config:  # an unchanged "auto" is the count as planned, no change
            new = load_again()
            return replace(new, workers=workers) if new.workers == requested else new

    if config.pid_file:
        write_pid_file(config.pid_file)  # the parent's pid with workers: it forwards SIGHUP
    try:
        return _run(config, on_ready, reload)
    finally:
        if config.pid_file:
            remove_pid_file(config.pid_file)


def _run(
    config: Config,
    on_ready: Callable[[list[tuple[str, int]]], None] | None,
    reload: Callable[[], Config] | None,
) -> int:
    workers = config.workers
    if workers == 1:
        return serve(config, on_ready, reload=reload)
    try:
        reserved, port = reserve_port(config.host, config.port)
    except OSError as exc:  # the same one line as with one worker (start() below)
        raise ConfigError(
            f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}"
        ) from None
    config = replace(config, port=port)
    counters = address_table(config, workers)
    ports = PortMap(*pasv_range(config))
    if reload is not None:
        first_load = reload

        def reload() -> Config:  # the port the workers share, not the 0 it may have been
            return replace(first_load(), port=port)

    def child(index: int, ready_fd: int) -> int:
        reserved.close()
        counters.index = index
        counters.reset_worker(index)
        ports.set_worker(index)

        def ready(_addrs: list[tuple[str, int]]) -> None:
            os.write(ready_fd, b"1")
            os.close(ready_fd)

        try:
            return serve(
                config, ready, counters=counters, worker=index, ports=ports, reload=reload
            )
        except ConfigError as exc:
            # A forked worker never returns to the CLI: say it here, as the CLI would.
            message = " ".join(str(exc).split())
            print(f"ftpd: error: worker {index}: {message}", file=sys.stderr, flush=True)
            return 2

    def all_ready() -> None:
        log.info("%d workers serving %s:%d", workers, config.host, port)
        if on_ready is not None:
            on_ready([(config.host, port)])

    return supervise(workers, child, all_ready)


def address_table(config: Config, workers: int) -> Counters:
    """The per-address limits and bans of the whole server (created before any fork): in shared
    memory for several workers, in a dict for one (addrlocal.py: the same rules, cheaper)."""
    if workers <= 1:
        return LocalTable(config.max_sessions, config.per_ip_ipv6_prefix, config.ban_after,
                          config.ban_seconds)
    return AddressTable(workers, config.max_sessions, config.per_ip_ipv6_prefix,
                        config.ban_after, config.ban_seconds)


def _cleanup_stale_uploads(config: Config) -> None:
    """Remove temp files of uploads a crash interrupted, once, before any worker serves (a worker
    doing it while another serves could delete a live upload)."""
    homes = ConfigAuthenticator.from_config(config).homes()  # users_db ones too
    removed = Storage(config, None).cleanup_stale_uploads(homes)
    if removed:
        log.info("removed %d unfinished upload(s) left by an earlier run", removed)


def serve(
    config: Config,
    on_ready: Callable[[list[tuple[str, int]]], None] | None = None,
    counters: Counters | None = None,
    worker: int = 0,
    ports: PortMap | None = None,
    reload: Callable[[], Config] | None = None,
) -> int:
    """One server process (or one worker): its own event loop, until a shutdown signal."""
    fix_mmap_threshold()  # buffers of a burst go back to the system after it (memory.py)
    loop = _new_loop(config.loop)
    asyncio.set_event_loop(loop)
    server = Server(config, counters=counters, worker=worker, ports=ports)
    stop = asyncio.Event()
    signals = 0

    def on_signal() -> None:
        nonlocal signals
        signals += 1
        if signals > 1:
            log.warning("second signal: exiting at once")
            os._exit(1)
        stop.set()

    reloads: set[asyncio.Task[bool]] = set()

    def on_hup() -> None:
        if reload is None or reloads:
            return  # one reload at a time; a second SIGHUP meanwhile reads the same files
        task = loop.create_task(server.reload(reload))
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    async def main() -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal)
        loop.add_signal_handler(signal.SIGHUP, on_hup)
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
