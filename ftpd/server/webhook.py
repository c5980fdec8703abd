"""The webhook: each event POSTed as JSON to ``webhook_url``, in order, with retries.

One sender task per server process drains a bounded queue (``webhook_queue`` events; when a slow
or dead receiver lets it fill, the *oldest* event is dropped, counted in
``ftpd_webhook_posts_total{result="dropped"}`` and logged: the newest events are the ones an
operator acts on). A POST that fails (connection error, timeout, 5xx, 429) is retried up to
``webhook_retries`` times after 0.5, 1, 2, 4 ... s (at most 30 s, with jitter, so that workers
do not hammer a recovering receiver in step); any other 4xx is the receiver refusing that event
and is not retried. Events are sent one at a time, so a receiver sees them in the order they
happened within a worker, on one kept-alive connection.

The HTTP client is aiohttp (the ``hooks`` extra): asyncio-native, maintained by the aio-libs
team, already in the dependency tree of the ``s3`` extra (aiobotocore), with HTTPS, proxies
(``HTTPS_PROXY`` with ``trust_env``) and connection reuse that a hand-written client would lack.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from typing import Any

from ..config import Config, ConfigError, show
from ..events import Event, EventKind
from .hookdata import HookStats, event_json

__all__ = ["INSTALL_HINT", "Webhook", "check_webhook", "webhook_kinds"]

log = logging.getLogger("ftpd.hooks")

INSTALL_HINT = "pip install 'ftpd[hooks]'"
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0


def webhook_kinds(text: str) -> frozenset[EventKind]:
    """``webhook_events`` as kinds; ValueError naming an unknown one."""
    names = {part.strip().lower() for part in text.split(",") if part.strip()}
    if names == {"all"}:
        return frozenset(EventKind)
    by_name = {kind.value: kind for kind in EventKind}
    unknown = sorted(names - set(by_name))
    if unknown or not names:
        raise ValueError(unknown[0] if unknown else text)
    return frozenset(by_name[name] for name in names)


def check_webhook(config: Config) -> None:
    """``ConfigError`` (one line) for a bad URL, bad event names or a missing aiohttp."""
    url = config.webhook_url
    if not url.startswith(("http://", "https://")) or any(c.isspace() for c in url):
        raise ConfigError(
            f"invalid value for webhook_url: {show(url)} (expected an http:// or https:// URL)"
        )
    try:
        webhook_kinds(config.webhook_events)
    except ValueError as exc:
        allowed = ", ".join(kind.value for kind in EventKind)
        raise ConfigError(
            f"invalid value for webhook_events: {show(config.webhook_events)} "
            f"(unknown event {show(str(exc))}; expected 'all' or some of "
            f"{allowed})"
        ) from None
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        raise ConfigError(
            f"webhook_url is set but aiohttp is not installed ({INSTALL_HINT})"
        ) from None


class Webhook:
    """The queue and the sender task of one process (see the module docstring)."""

    def __init__(self, config: Config, stats: HookStats) -> None:
        self.configure(config)
        self.stats = stats
        self.queue: deque[Event] = deque()  # waiting; the one being sent is ``inflight``
        self.inflight: Event | None = None
        self.wakeup = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.session: Any = None  # aiohttp.ClientSession, made in the running loop

    def configure(self, config: Config) -> None:
        """Settings from the (re)loaded configuration (the queue and the connection stay)."""
        self.url = config.webhook_url
        self.kinds = webhook_kinds(config.webhook_events)
        self.timeout = config.webhook_timeout
        self.retries = config.webhook_retries
        self.limit = config.webhook_queue

    async def enqueue(self, event: Event) -> None:
        """The bus's callback: queue and return at once (the sender does the waiting)."""
        if event.kind not in self.kinds:
            return
        if len(self.queue) >= self.limit:
            lost = self.queue.popleft()
            self.stats.posts["dropped"] += 1
            log.warning(
                "webhook: queue full (%d events): dropped the oldest, %s of %s",
                self.limit,
                lost.kind.value,
                lost.user,
            )
        self.queue.append(event)
        self.wakeup.set()
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._send_all())

    async def _send_all(self) -> None:
        import aiohttp

        self.session = aiohttp.ClientSession(
            trust_env=True,
            headers={"User-Agent": "ftpd-webhook"},
        )
        while True:
            while not self.queue:
                self.wakeup.clear()
                await self.wakeup.wait()
            self.inflight = self.queue.popleft()
            await self._deliver(self.inflight)
            self.inflight = None

    async def _deliver(self, event: Event) -> None:
        body = event_json(event)
        delay = BACKOFF_FIRST
        for attempt in range(self.retries + 1):
            why = await self._post(body)
            if why is None:
                self.stats.posts["ok"] += 1
                return
            if why.startswith("HTTP 4") and not why.startswith("HTTP 429"):
                break  # the receiver refuses this event: retrying would not change its mind
            if attempt < self.retries:
                self.stats.posts["retried"] += 1
                log.info(
                    "webhook: %s event %s: %s; retry in %.1f s",
                    self.url,
                    event.kind.value,
                    why,
                    delay,
                )
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, BACKOFF_MAX)
        self.stats.posts["failed"] += 1
        log.error(
            "webhook: %s event %s of %s not delivered: %s",
            self.url,
            event.kind.value,
            event.user,
            why,
        )

    async def _post(self, body: dict[str, Any]) -> str | None:
        """``None`` on a 2xx answer, else why not."""
        import aiohttp

        try:
            timeout = aiohttp.ClientTimeout(total=self.timeout)
            async with self.session.post(self.url, json=body, timeout=timeout) as response:
                await response.read()
                if 200 <= response.status < 300:
                    return None
                return f"HTTP {response.status}"
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__

    async def close(self, timeout: float) -> None:
        """Deliver what is queued within ``timeout`` seconds, then stop (the rest is logged)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        # Shutdown only: a short poll is simpler than a second event, and bounded by timeout.
        while (self.queue or self.inflight) and self.task is not None and loop.time() < deadline:
            await asyncio.sleep(0.05)
        lost = len(self.queue) + (self.inflight is not None)
        if lost:
            self.stats.posts["dropped"] += lost
            log.warning("webhook: %d event(s) not delivered at shutdown", lost)
            self.queue.clear()
        if self.task is not None:
            self.task.cancel()
            await asyncio.wait([self.task])
            self.task = None
        if self.session is not None:
            await self.session.close()
            self.session = None
