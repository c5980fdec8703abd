"""What the operator hooks share: an event as JSON (the webhook's body, the commands'
environment) and their counters (exposed as metrics by the Observer)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from ..events import Event

__all__ = ["HookStats", "event_json"]


class HookStats:
    """Counters of hook runs and webhook deliveries (exposed as metrics by the Observer)."""

    def __init__(self) -> None:
        self.runs: Counter[tuple[str, str]] = Counter()  # (event, ok|failed|timeout|error)
        self.posts: Counter[str] = Counter()  # ok, failed, retried, dropped


def event_json(event: Event) -> dict[str, Any]:
    """The event as a JSON object (the webhook's body); the same names as ``Event``'s fields."""
    return {
        "event": event.kind.value,
        "user": event.user,
        "remote_ip": event.remote_ip,
        "remote_port": event.remote_port,
        "session_id": event.session_id,
        "path": event.path,
        "file": event.real_path,
        "target": event.target,
        "target_file": event.real_target,
        "size": event.size,
        "offset": event.offset,
        "seconds": round(event.seconds, 6),
        "outcome": event.outcome,
        "anonymous": event.anonymous,
        "time": event.time,
    }
