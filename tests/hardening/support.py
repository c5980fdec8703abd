"""Helpers for the hardening suite: a raw FTP client, process figures, and reply checking.

``Ctl`` is a deliberately small blocking control-connection client on a raw socket: it can bind
its source address (``127.0.0.x``), send any bytes, and parses replies strictly (RFC 959 §4.2), so
that a malformed reply is a test failure rather than something a forgiving client papers over.

``fds``, ``pss_kib`` and ``cpu_seconds`` read the server's figures from ``/proc/<pid>``: the number
of open file descriptors, the proportional set size (``smaps_rollup``), and user+system CPU time.
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

REPLY_FIRST = re.compile(rb"^([1-5][0-5][0-9])([ -])")
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------------------ process figures
def fds(pid: int) -> int:
    """Open file descriptors of ``pid``."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def pss_kib(pid: int) -> int:
    """Proportional set size of ``pid`` in KiB (``/proc/<pid>/smaps_rollup``)."""
    with open(f"/proc/{pid}/smaps_rollup") as fh:
        for line in fh:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    raise AssertionError("no Pss line in smaps_rollup")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used by ``pid`` so far."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    # Fields after the command: state(0) ... utime(11) stime(12), see proc(5).
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def wait_for(pred: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll ``pred`` until true or ``timeout`` seconds passed; returns the last result."""
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)


def settle_fds(pid: int, baseline: int, timeout: float = 10.0) -> int:
    """Wait for the fd count of ``pid`` to come back to ``baseline``; return the final count."""
    wait_for(lambda: fds(pid) <= baseline, timeout)
    return fds(pid)


# ------------------------------------------------------------------------------ replies
@dataclass
class Reply:
    code: int
    lines: list[str]
    raw: bytes

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def __repr__(self) -> str:
        return f"Reply({self.code}, {self.raw[:200]!r})"


class ReplyError(AssertionError):
    """The server sent something that is not an RFC 959 reply."""


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


# ------------------------------------------------------------------------------ the client
class Closed(ConnectionError):
    """The server closed the control connection."""


class Ctl:
    """A blocking raw control connection. ``source``: local address to bind (e.g. 127.0.0.2)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        source: str | None = None,
        timeout: float = 10.0,
        greet: bool = True,
    ) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        if source is not None:
            self.sock.bind((source, 0))
        self.sock.connect((host, port))
        self.host = host
        self.buf = b""
        self.greeting: Reply | None = self.reply() if greet else None

    # -- io
    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def cmd(self, line: str | bytes) -> Reply:
        data = line if isinstance(line, bytes) else line.encode("utf-8", "surrogateescape")
        self.send(data + b"\r\n")
        return self.reply()

    def reply(self, timeout: float | None = None) -> Reply:
        """Read exactly one reply; ``Closed`` if the connection ends first."""
        old = self.sock.gettimeout()
        if timeout is not None:
            self.sock.settimeout(timeout)
        try:
            while True:
                replies, rest = split_replies(self.buf)
                if replies:
                    first = replies[0]
                    n = sum(len(x) for x in first)
                    self.buf = self.buf[n:]
                    code = check_reply_lines(first)
                    text = [x[:-2].decode("utf-8", "replace") for x in first]
                    return Reply(code, text, b"".join(first))
                del rest
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise Closed(f"connection closed; unparsed {self.buf!r}")
                self.buf += chunk
        finally:
            if timeout is not None:
                self.sock.settimeout(old)

    def closed_by_server(self, timeout: float = 5.0) -> bool:
        """True if the server closes the connection within ``timeout`` (replies are drained)."""
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

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def abort(self) -> None:
        """Vanish: close with RST (SO_LINGER 0), as a crashed client or a cut cable looks."""
        try:
            self.sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
        except OSError:
            pass
        self.close()

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

    def data_socket(self, *, source: str | None = None, timeout: float = 10.0) -> socket.socket:
        """EPSV, then connect a data socket from ``source`` (default: the control connection's
        own address, as a real client does)."""
        port = self.epsv()
        s = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        s.settimeout(timeout)
        s.bind((source or self.sock.getsockname()[0], 0))
        s.connect((self.host, port))
        return s

    def retr(self, path: str) -> tuple[bytes, Reply, Reply]:
        """Download ``path`` (TYPE I is the caller's business): data, 150, final reply."""
        d = self.data_socket()
        r150 = self.cmd(f"RETR {path}")
        if r150.code != 150:
            d.close()
            return b"", r150, r150
        data = recv_all(d)
        d.close()
        return data, r150, self.reply()

    def stor(self, path: str, data: bytes, verb: str = "STOR") -> Reply:
        d = self.data_socket()
        r = self.cmd(f"{verb} {path}")
        if r.code != 150:
            d.close()
            return r
        d.sendall(data)
        d.close()
        return self.reply()

    def listing(self, verb: str = "LIST", arg: str = "") -> tuple[bytes, Reply]:
        d = self.data_socket()
        r = self.cmd(f"{verb} {arg}".rstrip())
        if r.code != 150:
            d.close()
            return b"", r
        data = recv_all(d)
        d.close()
        return data, self.reply()


def recv_all(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        chunk = sock.recv(262144)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def noop_latency(ctl: Ctl) -> float:
    """Seconds for one NOOP round trip (asserting its 200)."""
    t0 = time.perf_counter()
    r = ctl.cmd("NOOP")
    dt = time.perf_counter() - t0
    assert r.code == 200, r
    return dt
