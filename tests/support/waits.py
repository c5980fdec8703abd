"""Waiting for a condition with a deadline, instead of sleeping for a guessed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def wait_until(cond: Callable[[], T], timeout: float = 5.0, interval: float = 0.02) -> T:
    """Poll ``cond`` until it returns something true or ``timeout`` seconds pass.

    Returns the last value ``cond`` returned (true, or the falsy value at the deadline), so that a
    caller writes ``assert wait_until(lambda: ...)`` and sees the final state in the failure.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def wait_log(srv: Any, needle: str, count: int = 1, timeout: float = 10.0) -> str:
    """Wait until the server's log holds ``needle`` ``count`` times; returns the log."""
    text = wait_until(lambda: (t := srv.log()).count(needle) >= count and t, timeout)
    assert text, f"{needle!r} x{count} not logged within {timeout}s:\n{srv.log()[-3000:]}"
    return text
