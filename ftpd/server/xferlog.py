"""The transfer log in the standard ``xferlog(5)`` format (``xferlog_file``), written off the loop.

One line per file transfer (RETR, STOR, APPE, STOU; listings are not file transfers), the 14 fields
of wu-ftpd's format that vsftpd (``xferlog_std_format``), ProFTPD (``TransferLog``) and Pure-FTPd
write, so that existing tools (xferstats, fail2ban filters, log shippers) read it unchanged::

    Mon Jan  2 03:04:05 2026 1 203.0.113.9 1048576 /pub/a.bin b _ o r bob ftp 0 * c

current-time (ctime format, local time), transfer-time (whole seconds, at least 1), remote-host,
file-size (bytes transferred), filename, transfer-type (a/b), special-action (``_``: none),
direction (o out, i in), access-mode (a anonymous, r real), username, service-name, authentication
method (0: none), authenticated-user-id (``*``), completion-status (c complete, i incomplete).

The filename is the virtual path (what the client saw; ProFTPD and vsftpd in a chroot do the
same) with whitespace and control characters replaced by ``_``: the format is space-separated,
and a CR/LF in a client-chosen name must never start a forged line.

Writing never blocks the event loop: ``write`` queues the line and a small writer thread appends
everything queued with one ``write(2)`` on an ``O_APPEND`` descriptor (so the workers of
``--workers N`` can share one file without tearing each other's lines). ``close`` drains the
queue and joins the thread.
"""

from __future__ import annotations

import logging
import os
import queue
import re
import threading
import time

__all__ = ["XferLog", "format_line", "FILE_TRANSFERS"]

log = logging.getLogger("ftpd.xferlog")

FILE_TRANSFERS = frozenset({"RETR", "STOR", "APPE", "STOU"})
_UNSAFE = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")  # C1 too: U+009B is a terminal CSI
_STOP = None


def format_line(
    *,
    end: float,
    seconds: float,
    host: str,
    size: int,
    path: str,
    ascii: bool,
    upload: bool,
    anonymous: bool,
    user: str,
    complete: bool,
) -> str:
    """One xferlog(5) line (without the newline); ``end`` is a ``time.time()`` value."""
    return " ".join(
        (
            time.asctime(time.localtime(end)),
            str(max(1, round(seconds))),  # wu-ftpd and vsftpd never log 0 seconds
            host or "-",
            str(size),
            _field(path),
            "a" if ascii else "b",
            "_",
            "i" if upload else "o",
            "a" if anonymous else "r",
            _field(user),
            "ftp",
            "0",
            "*",
            "c" if complete else "i",
        )
    )


def _field(text: str) -> str:
    return _UNSAFE.sub("_", text) or "_"


class XferLog:
    """An xferlog file appended to by a writer thread (see the module docstring)."""

    def __init__(self, path: str) -> None:
        # Opened here, at start-up, so that a bad path is a start-up error rather than a silent loss.
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._writer, name="ftpd-xferlog", daemon=True)
        self._thread.start()

    def write(self, line: str) -> None:
        """Queue one line; never blocks."""
        if not self._closed:
            self._queue.put(line)

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, then close the file."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def _writer(self) -> None:
        failed = False
        try:
            while True:
                lines, stop = self._take()
                if lines:
                    try:
                        _write_all(
                            self._fd, ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape")
                        )
                        failed = False
                    except OSError as exc:
                        # A full disk must not stop the server: the lines are dropped, said once.
                        if not failed:
                            log.warning("cannot write %s: %s", self.path, exc.strerror or exc)
                        failed = True
                if stop:
                    return
        finally:
            os.close(self._fd)

    def _take(self) -> tuple[list[str], bool]:
        """Wait for a line, then take everything else already queued (one write per burst)."""
        first = self._queue.get()
        if first is _STOP:
            return [], True
        lines = [first]
        while True:
            try:
                more = self._queue.get_nowait()
            except queue.Empty:
                return lines, False
            if more is _STOP:
                return lines, True
            lines.append(more)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
