"""Line framing, the command queue and flow control of one control connection.

Commands are processed one at a time, in order. Lines that arrive while one runs wait in a small
queue (beyond it, as raw bytes in the framer); reading pauses when the queue grows or when the
client stops reading our replies (the transport's high-water mark), so memory per session stays
bounded whatever a client sends (back-pressure both ways). While a transfer runs only ABOR, STAT,
NOOP and QUIT are taken, out of turn. A client pipelining thousands of commands gets ``BATCH`` per
turn of the loop, then the other sessions get theirs.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Protocol

from ..proto.lines import LineReader

if TYPE_CHECKING:
    from ..proto.session import Session

__all__ = ["CommandQueue", "MAX_QUEUED_LINES", "BATCH"]

MAX_QUEUED_LINES = 32
BATCH = 16  # commands run per turn of one session before the others get theirs


class Runner(Protocol):
    """The channel, as the queue sees it."""

    session: Session
    transport: Any
    busy: bool

    @property
    def closed(self) -> bool: ...

    def run_line(self, line: str) -> None: ...

    def close(self) -> None: ...


class CommandQueue:
    """See the module docstring. ``ch.run_line`` runs one command; the channel calls
    ``command_done`` when it has finished (at once, or after waiting for IO)."""

    __slots__ = (
        "ch",
        "reader",
        "max_line",
        "queue",
        "read_paused",
        "write_paused",
        "write_paused_since",
        "draining",
        "scheduled",
    )

    def __init__(self, ch: Runner, max_line: int) -> None:
        self.ch = ch
        self.max_line = max_line
        self.reader = LineReader(max_line)
        self.queue: deque[str] | None = None  # created on first use only
        self.read_paused = False
        self.write_paused = False
        self.write_paused_since = 0.0
        self.draining = False  # process() is running (no re-entry from command_done)
        self.scheduled = False  # a process() call is pending on the loop

    def feed(self, data: bytes) -> None:
        reader = self.reader
        lines = reader.feed(data, MAX_QUEUED_LINES)
        if not lines:
            return
        ch = self.ch
        if (
            len(lines) == 1
            and self.queue is None
            and not self.draining
            and not ch.busy
            and not ch.closed
            and not self.write_paused
            and ch.session.transfer is None
            and not reader.has_more()
        ):
            # The usual case (one command, nothing queued, nothing running): what process()
            # would do with a queue of one, without making the queue.
            self.draining = True
            try:
                ch.run_line(lines[0])
            finally:
                self.draining = False
            if self.queue is not None or self.read_paused:
                self.process()  # what process() does after its loop, and anything queued since
            elif ch.session.closing and not ch.closed:
                ch.close()
            return
        q = self.queue
        if q is None:
            q = self.queue = deque()
        q.extend(lines)
        if reader.has_more():
            # More pipelined commands than we take at once: they wait as raw bytes, and reading
            # pauses until the session has worked through them (bounded memory per client).
            self._pause_reading()
        self.process()

    def reset(self) -> None:
        """STARTTLS: nothing sent in plain text after AUTH may run as if it came under TLS (the
        command-injection class of bugs): drop the framer's buffer and any queued lines."""
        self.reader = LineReader(self.max_line)
        if self.queue:
            self.queue.clear()
        self.read_paused = False  # the TLS layer reads again: the handshake needs the client

    def pause_writing(self) -> None:
        # The client does not read our replies: stop reading its commands until it does.
        self.write_paused = True
        self.write_paused_since = time.monotonic()
        self._pause_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        if (self.queue or self.read_paused) and not self.draining and not self.scheduled:
            self.scheduled = True
            asyncio.get_running_loop().call_soon(self.process)
        self._maybe_resume_reading()

    def command_done(self) -> None:
        ch = self.ch
        if ch.session.closing:
            ch.close()
            return
        if (self.queue or self.read_paused) and not self.draining:
            self.process()
        else:
            self._maybe_resume_reading()

    def process(self) -> None:
        """Run queued commands in order, at most ``BATCH`` now. Nothing runs while a command is
        in progress, while the client is not reading our replies, or (except ABOR, STAT, NOOP
        and QUIT, which jump the queue) while a transfer runs."""
        self.scheduled = False
        ch = self.ch
        if self.draining or ch.closed:
            return
        self.draining = True
        session = ch.session
        q = self.queue
        if q is None:
            q = self.queue = deque()
        done = 0
        try:
            while not ch.busy and not ch.closed and not self.write_paused:
                if not q:
                    if not self.reader.has_more():
                        break
                    q.extend(self.reader.feed(b"", BATCH))
                if done >= BATCH:
                    if not self.scheduled:
                        self.scheduled = True
                        asyncio.get_running_loop().call_soon(self.process)
                    break
                if session.transfer is not None and not session.allowed_during_transfer(q[0]):
                    # ABOR, STAT, NOOP and QUIT jump the queue while a transfer runs.
                    for i, line in enumerate(q):
                        if session.allowed_during_transfer(line):
                            del q[i]
                            break
                    else:
                        if len(q) < 4 * MAX_QUEUED_LINES and self.reader.has_more():
                            q.extend(self.reader.feed(b"", BATCH))
                            continue
                        break
                else:
                    line = q.popleft()
                done += 1
                ch.run_line(line)
        finally:
            self.draining = False
            if not q:
                self.queue = None  # ~600 bytes an idle session need not keep (C100K)
        if session.closing and not ch.closed:
            ch.close()
            return
        self._maybe_resume_reading()

    def _pause_reading(self) -> None:
        if not self.read_paused and not self.ch.closed:
            self.read_paused = True
            self.ch.transport.pause_reading()

    def _maybe_resume_reading(self) -> None:
        if self.read_paused and not self.write_paused and not self.ch.closed:
            q = self.queue
            if (q is None or len(q) < MAX_QUEUED_LINES // 2) and not self.reader.has_more():
                self.read_paused = False
                self.ch.transport.resume_reading()
