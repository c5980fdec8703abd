"""FTP replies as the load client sees them: framing, PASV/EPSV parsing, and errors.

Replies are framed per RFC 959 §4.2: a multi-line reply starts with ``ddd-`` and ends with a line
starting with the same ``ddd `` code. Errors are counted under a short key (the reply code, or
the exception's class name) with the text kept beside it for the report's hints.
"""

from __future__ import annotations

import re

Reply = tuple[int, str]

MAX_REPLY_BYTES = 1 << 16  # a control reply bigger than this is a protocol error

_PASV_RE = re.compile(r"(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3})")
_EPSV_RE = re.compile(r"\((.)\1\1(\d{1,5})\1\)")


class ReplyError(Exception):
    """The server answered with an unexpected reply code."""

    def __init__(self, code: int, text: str, command: str = "") -> None:
        super().__init__(f"{command}: {code} {text}" if command else f"{code} {text}")
        self.code = code
        self.text = text


class ProtocolError(Exception):
    """The server sent something that is not an FTP reply."""


class ShortTransfer(ProtocolError):
    """A download's byte count differs from the file's known size (the session is still usable)."""


def error_key(exc: BaseException) -> str:
    """The key an exception is counted under: the reply code, or the exception's class name."""
    if isinstance(exc, ReplyError):
        return str(exc.code)
    return type(exc).__name__


def error_text(exc: BaseException) -> str:
    """What an error said: the reply (code and text), or the exception's message."""
    if isinstance(exc, ReplyError):
        return f"{exc.code} {exc.text}"
    return str(exc) or type(exc).__name__


def parse_pasv(text: str) -> int:
    """Port number from a 227 reply text (RFC 959 §4.1.2: ``h1,h2,h3,h4,p1,p2``)."""
    match = _PASV_RE.search(text)
    if not match:
        raise ProtocolError(f"cannot parse 227 reply: {text!r}")
    p1, p2 = int(match.group(5)), int(match.group(6))
    if p1 > 255 or p2 > 255:
        raise ProtocolError(f"bad port in 227 reply: {text!r}")
    return p1 * 256 + p2


def parse_epsv(text: str) -> int:
    """Port number from a 229 reply text (RFC 2428 §3: ``(|||port|)``, any delimiter)."""
    match = _EPSV_RE.search(text)
    if not match or not 0 < int(match.group(2)) < 65536:
        raise ProtocolError(f"cannot parse 229 reply: {text!r}")
    return int(match.group(2))


class ReplyParser:
    """Turns control-channel bytes into complete replies (RFC 959 §4.2 multi-line rules)."""

    __slots__ = ("_buf", "_code", "_lines")

    def __init__(self) -> None:
        self._buf = b""
        self._code: bytes | None = None
        self._lines: list[str] = []

    def feed(self, data: bytes) -> list[Reply]:
        """Consume ``data``; return the replies it completed (possibly none)."""
        buf = self._buf + data if self._buf else data
        out: list[Reply] = []
        start = 0
        while True:
            end = buf.find(b"\n", start)
            if end < 0:
                break
            line = buf[start:end]
            start = end + 1
            if line.endswith(b"\r"):
                line = line[:-1]
            reply = self._line(line)
            if reply is not None:
                out.append(reply)
        self._buf = buf[start:]
        if len(self._buf) > MAX_REPLY_BYTES or len(self._lines) > 10_000:
            raise ProtocolError("reply line too long or too many lines")
        return out

    def _line(self, line: bytes) -> Reply | None:
        text = line.decode("utf-8", "replace")
        if self._code is None:
            head = line[:3]
            if len(line) >= 3 and head.isdigit():
                sep = line[3:4]
                if sep == b"-":
                    self._code = head
                    self._lines = [text[4:]]
                    return None
                if sep in (b" ", b""):
                    return int(head), text[4:]
            raise ProtocolError(f"not an FTP reply: {text[:80]!r}")
        # Inside a multi-line reply only "ddd " with the opening code ends it (RFC 959 §4.2);
        # other lines, even ones starting with digits, are text.
        if line[:3] == self._code and line[3:4] in (b" ", b""):
            self._lines.append(text[4:])
            code, self._code = int(self._code), None
            lines, self._lines = self._lines, []
            return code, "\n".join(lines)
        self._lines.append(text)
        return None
