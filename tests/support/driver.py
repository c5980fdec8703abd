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


def perform_fs(fs: Any, req: Any) -> Any:
    """What the IO layer's table (``server/perform.FS_CALLS``) does with a filesystem request,
    on a fake filesystem with the same method names: shared by the proto tests' fakes."""
    from ftpd.proto import requests as rq

    match req:
        case rq.Stat(p):
            return fs.stat(p)
        case rq.ListDir(p):
            return fs.list(p)
        case rq.OpenListing(p, fmt):
            return fs.open_listing(p, fmt)
        case rq.OpenRead(p, offset):
            return fs.open_read(p, offset)
        case rq.OpenWrite(p, offset, append):
            return fs.open_write(p, offset, append)
        case rq.MakeDir(p):
            return fs.mkdir(p)
        case rq.RemoveDir(p):
            return fs.rmdir(p)
        case rq.Delete(p):
            return fs.delete(p)
        case rq.Rename(src, dst):
            return fs.rename(src, dst)
        case rq.SetMtime(p, mtime):
            return fs.set_mtime(p, mtime)
        case rq.Chmod(p, mode):
            return fs.chmod(p, mode)
        case rq.UniqueName(vdir, prefix):
            return fs.unique_name(vdir, prefix)
    raise AssertionError(f"unknown filesystem request {req!r}")
