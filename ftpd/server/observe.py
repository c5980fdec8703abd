"""What the server tells the outside world about itself: counters, metrics, the transfer log.

``Observer`` receives one call per event (session opened/closed, login, error reply, transfer) from
the server and the control channels; it keeps in-process counters and feeds the optional outputs
(Prometheus metrics, an xferlog file). Every method is cheap and never raises into the caller.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config import Config

__all__ = ["Observer"]


class Observer:
    """Counters of one server process (see the module docstring)."""

    def __init__(self, config: Config, server: Any) -> None:
        self.config = config
        self.server = server
        self.stats: Counter[str] = Counter()

    async def start(self) -> None:
        """Start outputs that need the running loop (metrics endpoint)."""

    def stop(self) -> None:
        """Close outputs (flush the transfer log)."""

    def session_opened(self, ch: Any) -> None:
        self.stats["sessions_total"] += 1

    def session_closed(self, ch: Any) -> None:
        self.stats["sessions_closed"] += 1

    def login(self, ch: Any, ok: bool) -> None:
        self.stats["logins_ok" if ok else "logins_failed"] += 1

    def error_reply(self, ch: Any, code: int) -> None:
        self.stats[f"replies_{code}"] += 1

    def transfer(self, ch: Any, t: Any, outcome: str, seconds: float) -> None:
        direction = "download" if t.writer is None else "upload"
        self.stats[f"transfers_{direction}_{outcome}"] += 1
        self.stats[f"bytes_{direction}"] += t.bytes
