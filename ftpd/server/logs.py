"""Logging set-up: one line per event to stderr, as text or as JSON (``log_format``).

Text lines are ``time level logger message``. JSON lines are one object each (what log shippers
such as Loki, Fluent Bit or ``docker logs | jq`` read)::

    {"time": "2026-01-02T03:04:05.678Z", "level": "info", "logger": "ftpd.transfer",
     "event": "transfer", "message": "...", "sid": 7, "peer": "203.0.113.9:50114", "user": "bob",
     "kind": "RETR", "path": "/a.bin", "bytes": 1048576, "seconds": 0.012, "result": "ok"}

Structured fields come from two places, so that call sites stay cheap %-style ``log.info`` calls:
- ``extra=`` fields of the call (``event``, ``command``, ``code``, transfer fields...);
- the session prefix: session log calls pass ``ControlChannel._who()`` (``"[sid] ip:port user"``)
  as their first argument; the JSON formatter parses it into ``sid``, ``peer`` and ``user``.
Records without an ``event`` get the last part of their logger name (``ftpd.data`` -> ``data``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
import time
from typing import Any

from ..config import Config

__all__ = ["JsonFormatter", "TextFormatter", "TEXT_FORMAT", "escape_controls", "setup_logging"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

# The attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}
# ControlChannel._who(): "[12] 127.0.0.1:5555 bob" or "[3] ::1:40000 -" (user "-": not logged in).
_WHO_RE = re.compile(r"\[(\d+)\] (\S+:\d+) (.+)")

_HANDLER_MARK = "_ftpd_handler"

# Client-controlled strings (paths, user names, command lines) end up in log messages: CR/LF would
# start a forged line, ESC and the C1 controls (U+009B is a CSI) drive terminals. All C0 and C1
# controls and DEL are written as escapes, in every format, whatever the call site passed.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_NAMED = {"\r": "\\r", "\n": "\\n", "\t": "\\t"}
_JSON_UNSAFE = re.compile(r"[\x7f-\x9f]")  # json.dumps escapes C0 itself


def _escape_one(m: re.Match[str]) -> str:
    c = m.group()
    return _NAMED.get(c) or f"\\x{ord(c):02x}"


def escape_controls(text: str, keep_newlines: bool = False) -> str:
    """``text`` with every control character escaped (``\\r``, ``\\x1b``...); LF kept when
    ``keep_newlines`` (our own tracebacks)."""
    if keep_newlines:
        return "\n".join(_CONTROLS.sub(_escape_one, part) for part in text.split("\n"))
    return _CONTROLS.sub(_escape_one, text)


class TextFormatter(logging.Formatter):
    """``TEXT_FORMAT`` with control characters escaped (one record is always one line, apart
    from a traceback's own line breaks)."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        record.message = escape_controls(record.message)
        return super().formatMessage(record)

    def formatException(self, ei: Any) -> str:  # noqa: N802
        return escape_controls(super().formatException(ei), keep_newlines=True)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _iso_time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.name.rsplit(".", 1)[-1],
            "message": record.getMessage(),
        }
        args = record.args
        if isinstance(args, tuple) and args and isinstance(args[0], str):
            who = _WHO_RE.fullmatch(args[0])
            if who is not None:
                entry["sid"] = int(who.group(1))
                entry["peer"] = who.group(2)
                if who.group(3) != "-":
                    entry["user"] = who.group(3)
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # ensure_ascii=False keeps UTF-8 file names readable; json escapes CR/LF, so a hostile
        # file name can never start a forged log line.
        text = json.dumps(entry, ensure_ascii=False, default=str)
        return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _iso_time(created: float) -> str:
    seconds = int(created)
    millis = int((created - seconds) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


class BatchingHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that writes all the records of one event-loop iteration at once.

    Under load a session event logs a line per connect, login, transfer and disconnect; one
    ``write`` + ``flush`` per line costs more than the FTP work it describes. Records emitted on
    the event loop's thread are buffered and written by one ``call_soon`` callback at the end of
    the current iteration, so nothing is delayed; records from other threads, warnings and errors
    are written at once.
    """

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._pending: list[str] = []
        self._scheduled = False

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = self.format(record)
        except Exception:  # noqa: BLE001 - logging must never raise into the server
            self.handleError(record)
            return
        loop = None
        if record.levelno < logging.WARNING:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
        self._pending.append(msg)
        if loop is None:
            self.flush()
        elif not self._scheduled:
            self._scheduled = True
            loop.call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        pending = self._pending
        if not pending:
            return
        self._pending = []
        text = "\n".join(pending) + "\n"
        self.acquire()
        try:
            self.stream.write(text)
            self.stream.flush()
        except Exception:  # noqa: BLE001
            pass
        finally:
            self.release()


def _lean_records() -> None:
    """Skip what our log lines never show: the caller's file and line (a stack walk per record),
    thread, process and task names."""
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    if hasattr(logging, "logAsyncioTasks"):
        logging.logAsyncioTasks = False


def setup_logging(config: Config) -> None:
    """Send the ``ftpd`` loggers' records to stderr in ``config.log_format`` at ``log_level``.

    Idempotent: a second call (a test, a worker) replaces the handler the first one installed.
    """
    _lean_records()
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _HANDLER_MARK, False):
            root.removeHandler(handler)
    handler = BatchingHandler(sys.stderr)
    setattr(handler, _HANDLER_MARK, True)
    if config.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(getattr(logging, config.log_level.upper(), logging.INFO))
