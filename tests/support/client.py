"""The raw control-connection client every suite uses, and the data-socket helpers.

``Ctl`` is deliberately small and blocking: it can bind its source address (``127.0.0.x``), send
any bytes, and parses replies strictly (RFC 959 §4.2), so that a malformed reply is a test failure
rather than something a forgiving client papers over. ftplib is the forgiving client.

A ``Reply`` unpacks as ``code, text = ctl.cmd("NOOP")``; ``text`` is the reply without its code
prefixes (lines joined by newlines), ``lines`` the complete lines as sent, ``raw`` the bytes.
"""

from __future__ import annotations

import re
import socket
import struct
import time
from typing import Any

TIMEOUT = 10.0
REPLY_FIRST = re.compile(rb"^([1-5][0-5][0-9])([ -])")


class ReplyError(AssertionError):
    """The server sent something that is not an RFC 959 reply."""


class Closed(ConnectionError):
    """The server closed the control connection."""


class Reply(tuple):  # type: ignore[type-arg]
    """One complete reply: a ``(code, text)`` pair plus ``lines`` and ``raw``."""

    lines: list[str]
    raw: bytes

    def __new__(cls, code: int, lines: list[str], raw: bytes) -> Reply:
        body = [lines[0][4:], *lines[1:-1], lines[-1][4:]] if len(lines) > 1 else [lines[0][4:]]
        obj = super().__new__(cls, (code, "\n".join(body)))
        obj.lines = lines
        obj.raw = raw
        return obj

    @property
    def code(self) -> int:
        return int(self[0])

    @property
    def text(self) -> str:
        return str(self[1])

    def __repr__(self) -> str:
        return f"Reply({self.code}, {self.raw[:200]!r})"


def check_reply_lines(raw_lines: list[bytes]) -> int:
    """Check one complete reply (its CRLF-terminated lines) against RFC 959 §4.2; return the code.

    Single line ``DDD text``; multi-line ``DDD-text`` ... ``DDD text`` where no inner line may look
    like the end line. No bare CR or LF inside a line (that is how reply injection would look).
    """
    if not raw_lines:
        raise ReplyError("empty reply")
    for ln in raw_lines:
        if not ln.endswith(b"\r\n"):
            raise ReplyError(f"reply line not ended by CRLF: {ln!r}")
        body = ln[:-2]
        if b"\r" in body or b"\n" in body or b"\0" in body:
            raise ReplyError(f"CR, LF or NUL inside a reply line: {ln!r}")
    m = REPLY_FIRST.match(raw_lines[0])
    if not m:
        raise ReplyError(f"not a reply line: {raw_lines[0]!r}")
    code = m.group(1)
    if m.group(2) == b" ":
        if len(raw_lines) != 1:
            raise ReplyError(f"lines after a single-line reply: {raw_lines!r}")
        return int(code)
    last = raw_lines[-1]
    if not last.startswith(code + b" "):
        raise ReplyError(f"multi-line reply does not end with '{code.decode()} ': {raw_lines!r}")
    for inner in raw_lines[1:-1]:
        if inner.startswith(code + b" "):
            raise ReplyError(f"inner line looks like the end line: {inner!r}")
    return int(code)


def split_replies(data: bytes) -> tuple[list[list[bytes]], bytes]:
    """Split a byte stream from the server into complete replies; returns (replies, rest)."""
    replies: list[list[bytes]] = []
    pos = 0
    current: list[bytes] = []
    code = b""
    while True:
        nl = data.find(b"\n", pos)
        if nl < 0:
            break
        ln = data[pos : nl + 1]
        pos = nl + 1
        if not current:
            m = REPLY_FIRST.match(ln)
            if not m:
                raise ReplyError(f"not a reply line: {ln!r}")
            current = [ln]
            code = m.group(1)
            if m.group(2) == b" ":
                replies.append(current)
                current = []
            continue
        current.append(ln)
        if ln.startswith(code + b" "):
            replies.append(current)
            current = []
    rest = b"".join(current) + data[pos:]
    return replies, rest


class Ctl:
    """A blocking raw control connection. ``source``: local address to bind (e.g. 127.0.0.2);
    ``greet=False`` leaves the greeting unread (for tests that send before it)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        source: str | None = None,
        timeout: float = TIMEOUT,
        greet: bool = True,
    ) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.timeout = timeout
        self.sock.settimeout(timeout)
        try:
            if source is not None:
                self.sock.bind((source, 0))
            self.sock.connect((host, port))
        except OSError:
            self.sock.close()
            raise
        self.host = host
        self.buf = b""
        self.greeting: Reply | None = self.reply() if greet else None

    @property
    def local_ip(self) -> str:
        return str(self.sock.getsockname()[0])

    # -- io
    def send(self, line: str | bytes) -> None:
        """Send one command line (CRLF appended)."""
        data = line if isinstance(line, bytes) else line.encode("utf-8", "surrogateescape")
        self.sock.sendall(data + b"\r\n")

    def send_raw(self, data: bytes) -> None:
        """Send bytes exactly as given (partial lines, several lines, garbage)."""
        self.sock.sendall(data)

    def cmd(self, line: str | bytes) -> Reply:
        self.send(line)
        return self.reply()

    def code(self, line: str | bytes) -> int:
        return self.cmd(line).code

    def reply(self, timeout: float | None = None) -> Reply:
        """Read exactly one reply; ``Closed`` if the connection ends first."""
        if timeout is not None:
            self.sock.settimeout(timeout)
        try:
            while True:
                replies, _rest = split_replies(self.buf)
                if replies:
                    first = replies[0]
                    self.buf = self.buf[sum(len(x) for x in first) :]
                    code = check_reply_lines(first)
                    text = [x[:-2].decode("utf-8", "surrogateescape") for x in first]
                    return Reply(code, text, b"".join(first))
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise Closed(f"connection closed; unparsed {self.buf!r}")
                self.buf += chunk
        finally:
            if timeout is not None:
                self.sock.settimeout(self.timeout)

    def closed(self, timeout: float = 5.0) -> bool:
        """True if the server closes the connection within ``timeout`` (pending replies are kept
        in ``buf``)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except TimeoutError:
            return False
        except ConnectionResetError:
            return True
        finally:
            try:
                self.sock.settimeout(self.timeout)
            except OSError:
                pass

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def abort(self) -> None:
        """Vanish: close with RST (SO_LINGER 0), as a crashed client or a cut cable looks."""
        abort_socket(self.sock)

    def __enter__(self) -> Ctl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- protocol helpers
    def login(self, user: str, password: str) -> Ctl:
        r = self.cmd(f"USER {user}")
        assert r.code == 331, r
        r = self.cmd(f"PASS {password}")
        assert r.code == 230, r
        return self

    def epsv(self) -> int:
        r = self.cmd("EPSV")
        assert r.code == 229, r
        m = re.search(r"\(\|\|\|(\d+)\|\)", r.text)
        assert m, r
        return int(m.group(1))

    def pasv(self) -> int:
        r = self.cmd("PASV")
        assert r.code == 227, r
        m = re.search(r"\d+,\d+,\d+,\d+,(\d+),(\d+)", r.text)
        assert m, r
        return int(m.group(1)) * 256 + int(m.group(2))

    def data_socket(
        self,
        *,
        source: str | None = None,
        timeout: float = TIMEOUT,
        extended: bool = True,
    ) -> socket.socket:
        """EPSV (or PASV), then connect a data socket from ``source`` (default: the control
        connection's own address, as a real client does)."""
        port = self.epsv() if extended else self.pasv()
        s = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        s.settimeout(timeout)
        try:
            s.bind((source or self.local_ip, 0))
            s.connect((self.host, port))
        except OSError:
            s.close()
            raise
        return s

    def passive(self, extended: bool | None = None) -> socket.socket:
        """PASV (IPv4) or EPSV (IPv6, or when asked); returns the connected data socket."""
        return self.data_socket(extended=(":" in self.host) if extended is None else extended)

    def retr(self, path: str) -> tuple[bytes, Reply, Reply]:
        """Download ``path`` (TYPE I is the caller's business): data, 150, final reply."""
        d = self.data_socket()
        r150 = self.cmd(f"RETR {path}")
        if r150.code != 150:
            d.close()
            return b"", r150, r150
        data = recv_all(d)
        return data, r150, self.reply()

    def stor(self, path: str, data: bytes, verb: str = "STOR") -> Reply:
        """Upload ``data`` with ``verb`` (STOR, APPE, STOU); returns the final reply (or the
        refusal)."""
        d = self.data_socket()
        r = self.cmd(f"{verb} {path}".rstrip())
        if r.code != 150:
            d.close()
            return r
        send_all_and_close(d, data)
        return self.reply()

    def listing(self, verb: str = "LIST", arg: str = "") -> tuple[bytes, Reply]:
        d = self.data_socket()
        r = self.cmd(f"{verb} {arg}".rstrip())
        if r.code != 150:
            d.close()
            return b"", r
        data = recv_all(d)
        return data, self.reply()


def recv_all(sock: socket.socket) -> bytes:
    """Everything until the peer closes; closes ``sock``."""
    parts = []
    with sock:
        while True:
            chunk = sock.recv(1 << 18)
            if not chunk:
                return b"".join(parts)
            parts.append(chunk)


def send_all_and_close(sock: socket.socket, data: bytes) -> None:
    with sock:
        sock.sendall(data)


def abort_socket(sock: socket.socket) -> None:
    """Close with a TCP RST (SO_LINGER 0): what a crashing client does."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def noop_latency(ctl: Ctl) -> float:
    """Seconds for one NOOP round trip (asserting its 200)."""
    t0 = time.perf_counter()
    r = ctl.cmd("NOOP")
    dt = time.perf_counter() - t0
    assert r.code == 200, r
    return dt


def connect_ftplib(
    server: Any, user: str | None = None, password: str | None = None, login: bool = True
) -> Any:
    """An ftplib client connected (and logged in) to ``server``: the forgiving client."""
    import ftplib

    f = ftplib.FTP(timeout=TIMEOUT, encoding="utf-8")
    f.connect(server.host, server.port)
    if login:
        f.login(
            server.user if user is None else user, server.password if password is None else password
        )
    return f
