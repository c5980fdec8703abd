"""Running one command line through the sans-IO ``Session``, as the control channel does.

``drive(session, line, answer)`` calls ``Session.handle`` and, when the handler is a generator,
advances it: every request it yields goes to ``answer(request) -> (value, exception)``, every
``Reply`` is collected, until ``Done``. The protocol unit tests and the session fuzzer share it, so
a change to the handler protocol is made here once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ftpd.proto.replies import Reply
from ftpd.proto.session import Done, Session

Answer = Callable[[Any], tuple[Any, BaseException | None]]


@dataclass
class Driven:
    """What one line produced: replies in order, the requests the handler yielded, and whether
    the handler stopped early (``answer`` returned ``STOP``)."""

    replies: list[Reply] = field(default_factory=list)
    requests: list[Any] = field(default_factory=list)
    stopped: bool = False


STOP = object()  # an ``answer`` value: close the handler here (a failed TLS handshake)


def drive(session: Session, line: str, answer: Answer, max_steps: int = 100) -> Driven:
    """Run ``line`` to completion; see the module docstring."""
    out = Driven()
    result = session.handle(line)
    if not Session.is_generator(result):
        if isinstance(result, Reply):
            out.replies.append(result)
        elif result is not None:
            out.replies.extend(result)  # type: ignore[arg-type]
        return out
    value: Any = None
    exc: BaseException | None = None
    for _ in range(max_steps):
        item = session.advance(result, value, exc)  # type: ignore[arg-type]
        value, exc = None, None
        if isinstance(item, Done):
            out.replies.extend(item.replies)
            return out
        if isinstance(item, Reply):
            out.replies.append(item)
            continue
        out.requests.append(item)
        value, exc = answer(item)
        if value is STOP:
            result.close()  # type: ignore[union-attr]
            out.stopped = True
            return out
    raise AssertionError(f"handler for {line[:40]!r} did not finish in {max_steps} steps")
