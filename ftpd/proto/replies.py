"""FTP replies and their wire format (RFC 959 §4.2).

A reply is ``DDD<SP>text<CRLF>``; a multi-line reply is ``DDD-first`` ... ``DDD last``. Inner lines
are indented by one space so that none can be mistaken for the end line (RFC 959 §4.2 allows any text;
a leading space is what FEAT requires anyway, RFC 2389 §3.2). CR and LF inside texts are replaced, so a
file name can never inject a reply line. Names that are not valid UTF-8 go out in their escaped
form (``names.py``): a reply is always valid UTF-8.
"""

from __future__ import annotations

from . import names

__all__ = ["Reply", "sanitize", "printable"]


def sanitize(text: str) -> str:
    """Make a text safe for one reply line: no CR, LF or NUL can reach the wire."""
    if "\r" in text or "\n" in text or "\0" in text:
        return text.replace("\r", "\\r").replace("\n", "\\n").replace("\0", "\\0")
    return text


def printable(text: str) -> str:
    """A client's text echoed in a reply: at most 40 characters, non-ASCII escaped."""
    return text[:40].encode("ascii", "backslashreplace").decode("ascii")


class Reply:
    """One FTP reply: a code and one or more lines of text. Immutable once made: its wire form
    is kept after the first ``encode``, so a reply kept as a module constant (the handlers'
    fixed replies) is formatted once, not per command (1.3 µs each, three a login)."""

    __slots__ = ("code", "lines", "raw", "_wire")

    def __init__(self, code: int, *lines: str) -> None:
        self.code = code
        self.lines: tuple[str, ...] = lines or ("",)
        self.raw: bytes | None = None  # given, already formatted: a ``part``
        self._wire: bytes | None = None  # the wire form, once encoded

    @classmethod
    def part(cls, code: int, raw: bytes, note: str = "") -> Reply:
        """Part of a multi-line reply sent as it comes (a STAT listing streamed in batches):
        ``raw`` is already formatted for the wire and indented by the caller; ``note`` is
        what logs show."""
        reply = cls(code, note)
        reply.raw = raw
        return reply

    @classmethod
    def opening(cls, code: int, text: str) -> Reply:
        """The first line ``DDD-text`` of a multi-line reply whose end comes later."""
        line = names.encode(f"{code}-{sanitize(text)}\r\n")
        return cls.part(code, line, text)

    @property
    def text(self) -> str:
        """All lines joined by newlines (for tests and logs)."""
        return "\n".join(self.lines)

    def encode(self) -> bytes:
        """The reply as it goes on the wire (UTF-8; non-UTF-8 names escaped, see names.py)."""
        if self.raw is not None:
            return self.raw
        if self._wire is not None:
            return self._wire
        lines = self.lines
        code = self.code
        if len(lines) == 1:
            data = f"{code} {sanitize(lines[0])}\r\n"
        else:
            parts = [f"{code}-{sanitize(lines[0])}\r\n"]
            for line in lines[1:-1]:
                parts.append(f" {sanitize(line)}\r\n")
            parts.append(f"{code} {sanitize(lines[-1])}\r\n")
            data = "".join(parts)
        wire = self._wire = names.encode(data)
        return wire

    def __repr__(self) -> str:
        return f"Reply({self.code}, {self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Reply) and other.code == self.code and other.lines == self.lines

    __hash__ = None  # type: ignore[assignment]

