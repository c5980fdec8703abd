"""What the server tells the outside world about itself: counters, metrics, the transfer log.

``Observer`` receives one call per event (session opened/closed, login, error reply, transfer) from
the server and the control channels; it keeps in-process counters and feeds the optional outputs:
the Prometheus endpoint (``metrics_port``, see ``metrics.py``) and the xferlog file
(``xferlog_file``, see ``xferlog.py``). Every method is cheap (a few dictionary updates; the xferlog
line is queued for a writer thread) and never raises into the caller: a bug here is logged, and
the session goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from typing import TYPE_CHECKING, Any, Protocol

from ..config import ConfigError, show
from .xferlog import FILE_TRANSFERS, XferLog, format_line

if TYPE_CHECKING:
    from ..config import Config
    from .metrics import MetricsEndpoint

__all__ = ["Observer", "Listener", "LAG_INTERVAL"]

log = logging.getLogger("ftpd.observe")

LAG_INTERVAL = 1.0  # seconds between event-loop lag samples (only while metrics are on)


class Listener(Protocol):
    """Receives the session events too (``ftpd.events`` turns them into the library's events).
    Called synchronously: a listener only queues work; what it raises is logged and dropped."""

    def login(self, ch: Any, ok: bool, account: Any) -> None: ...

    def session_closed(self, ch: Any) -> None: ...

    def transfer(self, ch: Any, t: Any, outcome: str, seconds: float) -> None: ...


class Observer:
    """Counters of one server process, and the outputs fed from them (see the module docstring)."""

    def __init__(self, config: Config, server: Any) -> None:
        self.config = config
        self.server = server
        self.sessions_total = 0
        self.sessions_closed = 0
        self.logins: Counter[str] = Counter()  # "ok" / "failed"
        self.transfers: Counter[tuple[str, str]] = Counter()  # (direction, outcome)
        self.bytes: Counter[str] = Counter()  # direction
        self.errors: Counter[int] = Counter()  # reply code
        self.loop_lag = 0.0
        self.metrics: MetricsEndpoint | None = None
        self.xferlog: XferLog | None = None
        self._lag_task: asyncio.Task[None] | None = None
        self.listeners: list[Listener] = []
        # Both outputs are checked here, before anything listens, so that a mistake is a one-line
        # start-up error (exit 2) and never a server running without its logs or metrics.
        try:
            self._check_outputs()
        except ConfigError as exc:
            if getattr(getattr(server, "counters", None), "workers", 1) > 1:
                # A worker's exception never reaches the terminal (the supervisor only sees its
                # exit status): say it here.
                log.error("%s", exc)
            raise

    def _check_outputs(self) -> None:
        cfg = self.config
        if cfg.metrics_port:
            from .metrics import require_prometheus

            require_prometheus()
        if cfg.xferlog_file:
            try:
                self.xferlog = XferLog(cfg.xferlog_file)
            except OSError as exc:
                raise ConfigError(
                    f"invalid value for xferlog_file: {show(cfg.xferlog_file)} "
                    f"(cannot open it: {exc.strerror or exc})"
                ) from None

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Start the outputs that need the running loop: the metrics endpoint and the lag sampler."""
        cfg = self.config
        if cfg.metrics_port:
            from .metrics import MetricsEndpoint

            worker = getattr(self.server, "worker", 0)
            self.metrics = MetricsEndpoint(self, cfg.metrics_host, cfg.metrics_port + worker)
            self._lag_task = asyncio.get_running_loop().create_task(self._sample_lag())
            log.info("metrics on http://%s:%d/metrics", _host(cfg.metrics_host), self.metrics.port)

    def stop(self) -> None:
        """Close outputs (flush the transfer log, stop the metrics endpoint)."""
        if self._lag_task is not None:
            self._lag_task.cancel()
            self._lag_task = None
        if self.xferlog is not None:
            self.xferlog.close()
            self.xferlog = None
        if self.metrics is not None:
            self.metrics.close()
            self.metrics = None

    async def _sample_lag(self) -> None:
        # A timer asked for LAG_INTERVAL from now fires late by however long the loop was busy
        # with other callbacks: the lag every session's next reply waits for.
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(LAG_INTERVAL)
            self.loop_lag = max(0.0, loop.time() - start - LAG_INTERVAL)

    # ------------------------------------------------------------------ events
    def session_opened(self, ch: Any) -> None:
        self.sessions_total += 1

    def session_closed(self, ch: Any) -> None:
        self.sessions_closed += 1
        for listener in self.listeners:
            try:
                listener.session_closed(ch)
            except Exception:
                log.exception("listener %r", listener)

    def login(self, ch: Any, ok: bool, account: Any = None) -> None:
        self.logins["ok" if ok else "failed"] += 1
        for listener in self.listeners:
            try:
                listener.login(ch, ok, account)
            except Exception:
                log.exception("listener %r", listener)

    def error_reply(self, ch: Any, code: int) -> None:
        self.errors[code] += 1

    def transfer(self, ch: Any, t: Any, outcome: str, seconds: float) -> None:
        direction = "download" if t.writer is None else "upload"
        self.transfers[(direction, outcome)] += 1
        self.bytes[direction] += t.bytes
        if self.xferlog is not None and t.kind in FILE_TRANSFERS:
            try:
                self.xferlog.write(_xferlog_line(ch, t, outcome, seconds))
            except Exception:  # never let the transfer log break a session
                log.exception("xferlog line for %r", t)
        for listener in self.listeners:
            try:
                listener.transfer(ch, t, outcome, seconds)
            except Exception:
                log.exception("listener %r", listener)

    # ------------------------------------------------------------------ reading
    def snapshot(self) -> dict[str, Any]:
        """A copy of every counter (safe to call from another thread, e.g. a metrics scrape)."""
        server = self.server
        pool = getattr(server, "pasv_pool", None)
        return {
            "sessions_active": len(getattr(server, "channels", ())),
            "sessions_total": self.sessions_total,
            "sessions_closed": self.sessions_closed,
            "logins": _copy(self.logins),
            "transfers": _copy(self.transfers),
            "bytes": _copy(self.bytes),
            "errors": _copy(self.errors),
            "passive_in_use": len(pool.in_use) if pool is not None else 0,
            "passive_capacity": pool.last - pool.first + 1 if pool is not None else 0,
            "loop_lag": self.loop_lag,
        }

    @property
    def stats(self) -> Counter[str]:
        """The counters as one flat Counter (``logins_ok``, ``bytes_upload``, ``replies_550``...)."""
        flat: Counter[str] = Counter(
            sessions_total=self.sessions_total, sessions_closed=self.sessions_closed
        )
        for result, n in _copy(self.logins).items():
            flat[f"logins_{result}"] = n
        for (direction, outcome), n in _copy(self.transfers).items():
            flat[f"transfers_{direction}_{outcome}"] = n
        for direction, n in _copy(self.bytes).items():
            flat[f"bytes_{direction}"] = n
        for code, n in _copy(self.errors).items():
            flat[f"replies_{code}"] = n
        return flat


def _copy(counter: Counter[Any]) -> dict[Any, int]:
    # dict(counter) is one C-level copy under the GIL; the retry covers an interpreter where a
    # concurrent insert could still be seen mid-copy.
    for _ in range(10):
        with contextlib.suppress(RuntimeError):
            return dict(counter)
    return {}


def _xferlog_line(ch: Any, t: Any, outcome: str, seconds: float) -> str:
    session = ch.session
    account = getattr(session, "account", None)
    return format_line(
        end=time.time(),
        seconds=seconds,
        host=ch.peer[0],
        size=t.bytes,
        path=t.vpath,
        ascii=t.ascii,
        upload=t.writer is not None,
        anonymous=bool(account is not None and account.anonymous),
        user=account.name if account is not None else "-",
        complete=outcome == "ok",
    )


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
