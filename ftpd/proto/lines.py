"""Control-connection framing: bytes in, command lines out.

- A line ends with CRLF (RFC 959 §4.1, RFC 1123 §4.1.2.10) or a bare LF (clients and humans with netcat).
- Telnet sequences are stripped (RFC 959 §4.1.3: the control connection is a Telnet connection): ``IAC IAC``
  is a literal 0xFF byte (lftp doubles 0xFF in names), ``IAC IP``/``IAC DM`` and the other two-byte
  commands are dropped (lftp prefixes ABOR with IP+SYNCH), ``IAC WILL/WONT/DO/DONT x`` are dropped. The
  server sets SO_OOBINLINE so the urgent byte of a SYNCH (or ftplib's OOB ``ABOR``) stays in the stream.
- A line longer than ``max_line`` bytes is never buffered whole: the excess is discarded until the next
  line end and the line is reported as ``TOO_LONG`` (answered ``500``).
- Lines are decoded as UTF-8 (RFC 2640) with surrogateescape, so names that are not valid UTF-8 survive
  byte for byte to the filesystem and back.
"""

from __future__ import annotations

__all__ = ["LineReader", "TOO_LONG", "parse_command"]

# Bytes searched for as ints: ``data.find(10)`` and ``255 in data`` go straight to memchr, where a
# one-byte bytes needle takes the general search (2-5x the time on a command line).
_LF = 0x0A
_CR = 0x0D
IAC = 0xFF  # Telnet "interpret as command" (RFC 854)
_TWO_BYTE_SKIP = frozenset({0xFB, 0xFC, 0xFD, 0xFE})  # WILL WONT DO DONT take an option byte

TOO_LONG = "\x00too-long"  # sentinel line: cannot come from a client (NUL is never kept)


def _strip_telnet(data: bytes) -> bytes:
    out = bytearray()
    i = 0
    n = len(data)
    while i < n:
        b = data[i]
        if b != IAC:
            j = data.find(IAC, i)
            if j < 0:
                out += data[i:]
                break
            out += data[i:j]
            i = j
            continue
        if i + 1 >= n:
            break  # a lone IAC at the very end of a line: drop it
        cmd = data[i + 1]
        if cmd == IAC:
            out.append(IAC)
            i += 2
        elif cmd in _TWO_BYTE_SKIP:
            i += 3
        else:
            i += 2  # IP, DM, AYT, NOP, ...
    return bytes(out)


class LineReader:
    """Incremental line framer with a hard cap on buffered bytes.

    ``feed(data, limit)`` returns at most ``limit`` lines and keeps the rest of the bytes as they
    came: a client that pipelines thousands of commands costs its raw bytes, not thousands of
    line objects, until the session gets to them (``has_more``).
    """

    __slots__ = ("_buf", "_pos", "_discarding", "max_line")

    def __init__(self, max_line: int = 4096) -> None:
        self._buf = b""
        self._pos = 0  # lines before this offset of _buf were returned already
        self._discarding = False
        self.max_line = max_line

    @property
    def buffered(self) -> int:
        """Bytes held waiting to be returned as lines."""
        return len(self._buf) - self._pos

    def has_more(self) -> bool:
        """Whether a complete line is waiting (``feed(b"", limit)`` returns it)."""
        return bool(self._buf) and self._buf.find(_LF, self._pos) >= 0

    def feed(self, data: bytes = b"", limit: int = 0) -> list[str]:
        """Add received bytes; return the complete lines (without line ends), in order, at most
        ``limit`` of them (0: all)."""
        if data and not self._buf and not self._discarding:
            # The usual case: one whole command in one segment, nothing held before it.
            nl = data.find(_LF)
            if nl == len(data) - 1 and nl <= self.max_line:
                return [self._decode(data[:nl])]
        if data:
            if self._pos:
                self._buf = self._buf[self._pos :] + data
                self._pos = 0
            else:
                self._buf = self._buf + data if self._buf else data
        buf = self._buf
        start = self._pos
        lines: list[str] = []
        while not limit or len(lines) < limit:
            nl = buf.find(_LF, start)
            if nl < 0:
                if len(buf) - start > self.max_line:
                    # Overlong and still no line end: drop it, report it once at its end.
                    self._discarding = True
                    buf, start = b"", 0
                elif self._discarding:
                    buf, start = b"", 0
                break
            if self._discarding:
                self._discarding = False
                lines.append(TOO_LONG)
            elif nl - start > self.max_line:
                lines.append(TOO_LONG)
            else:
                lines.append(self._decode(buf[start:nl]))
            start = nl + 1
        if start >= len(buf):
            buf, start = b"", 0
        self._buf = buf
        self._pos = start
        return lines

    @staticmethod
    def _decode(raw: bytes) -> str:
        if raw and raw[-1] == _CR:
            raw = raw[:-1]
        if IAC in raw:
            raw = _strip_telnet(raw)
        if 0 in raw:
            raw = raw.replace(b"\0", b"")  # NUL never belongs in a command or a path
        return raw.decode("utf-8", "surrogateescape")


def parse_command(line: str) -> tuple[str, str]:
    """Split a line into (VERB upper-cased, argument). The argument keeps inner and trailing spaces.

    RFC 959 §5.3: one space separates the verb from its argument; names may contain spaces, so only the
    single separator is consumed (a leading extra space is tolerated, as vsftpd does, for sloppy clients).
    """
    line = line.lstrip(" ")
    sp = line.find(" ")
    if sp < 0:
        return line.upper(), ""
    return line[:sp].upper(), line[sp + 1 :]
