"""Client-side helpers for the integration tests (the fixtures are in conftest.py).

- ``Raw``: a control connection as bytes on a socket: sends lines, reads complete (multi-line)
  replies, opens passive data connections from the control connection's own address.
- ``ftp_connect``: an ftplib client, logged in; ``uniq``: file names no other test uses.
- ``FAMILIES``: the address families every shared-server test runs on (127.0.0.1 and ::1).
"""

from __future__ import annotations

import ftplib
import itertools
import re
import socket
import struct
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

TIMEOUT = 10.0
_names = itertools.count()


def _has_ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


HAS_IPV6 = _has_ipv6_loopback()
FAMILIES = [
    pytest.param("127.0.0.1", id="ipv4"),
    pytest.param(
        "::1", id="ipv6", marks=pytest.mark.skipif(not HAS_IPV6, reason="this machine has no ::1")
    ),
]

# Fast failure when something hangs; the module server is shared, so keep its limits generous.
SERVER_DEFAULTS: dict[str, object] = {"data_timeout": 10, "idle_timeout": 60, "login_timeout": 30}


def uniq(prefix: str = "f") -> str:
    """A file name no other test uses."""
    return f"{prefix}-{next(_names)}-{uuid.uuid4().hex[:6]}"


def ftp_connect(
    server: Any, user: str | None = None, password: str | None = None, login: bool = True
) -> ftplib.FTP:
    f = ftplib.FTP(timeout=TIMEOUT, encoding="utf-8")
    f.connect(server.host, server.port)
    if login:
        f.login(
            server.user if user is None else user, server.password if password is None else password
        )
    return f


class Raw:
    """A control connection as bytes on a socket: exact replies, no client-side cleverness."""

    def __init__(
        self, host: str, port: int, *, source: str | None = None, timeout: float = TIMEOUT
    ) -> None:
        src = (source, 0) if source else None
        self.sock = socket.create_connection((host, port), timeout, source_address=src)
        self.host = host
        self.buf = b""
        self.greeting = self.reply()

    @property
    def local_ip(self) -> str:
        return str(self.sock.getsockname()[0])

    def send(self, line: str | bytes) -> None:
        data = line if isinstance(line, bytes) else line.encode("utf-8", "surrogateescape")
        self.sock.sendall(data + b"\r\n")

    def _line(self) -> bytes:
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(f"connection closed; pending {self.buf!r}")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        assert line.endswith(b"\r"), f"reply line without CRLF: {line!r}"
        return line[:-1]

    def reply(self) -> tuple[int, str]:
        """One complete reply: (code, text with the lines joined by newlines)."""
        first = self._line()
        m = re.match(rb"^(\d{3})([ -])", first)
        assert m, f"malformed reply line {first!r}"
        code, lines = int(m.group(1)), [first[4:]]
        if m.group(2) == b"-":
            end = m.group(1) + b" "
            while True:
                ln = self._line()
                if ln.startswith(end):
                    lines.append(ln[4:])
                    break
                lines.append(ln)
        return code, b"\n".join(lines).decode("utf-8", "surrogateescape")

    def cmd(self, line: str | bytes) -> tuple[int, str]:
        self.send(line)
        return self.reply()

    def code(self, line: str | bytes) -> int:
        return self.cmd(line)[0]

    def login(self, user: str, password: str) -> Raw:
        assert self.code(f"USER {user}") == 331
        code, text = self.cmd(f"PASS {password}")
        assert code == 230, text
        return self

    def passive(self, extended: bool | None = None) -> socket.socket:
        """PASV (IPv4) or EPSV (IPv6, or when asked); returns the connected data socket."""
        if extended is None:
            extended = ":" in self.host
        if extended:
            code, text = self.cmd("EPSV")
            assert code == 229, text
            m = re.search(r"\(\|\|\|(\d+)\|\)", text)
        else:
            code, text = self.cmd("PASV")
            assert code == 227, text
            m = re.search(r"\d+,\d+,\d+,\d+,(\d+),(\d+)", text)
        assert m, text
        port = int(m.group(1)) if extended else int(m.group(1)) * 256 + int(m.group(2))
        return socket.create_connection(
            (self.host, port), TIMEOUT, source_address=(self.local_ip, 0)
        )

    def closed(self, timeout: float = 5.0) -> bool:
        """True if the server closes the connection within ``timeout`` (pending replies read)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
        finally:
            self.sock.settimeout(TIMEOUT)

    def close(self) -> None:
        self.sock.close()


def recv_all(sock: socket.socket) -> bytes:
    """Everything until the peer closes."""
    parts = []
    with sock:
        while True:
            chunk = sock.recv(1 << 16)
            if not chunk:
                return b"".join(parts)
            parts.append(chunk)


def send_all_and_close(sock: socket.socket, data: bytes) -> None:
    with sock:
        sock.sendall(data)


def abort_socket(sock: socket.socket) -> None:
    """Close with a TCP RST (SO_LINGER 0): what a crashing client does."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def wait_for(pred: Callable[[], Any], timeout: float = 5.0, interval: float = 0.05) -> Any:
    """Poll ``pred`` until it returns something true; returns it, or the last falsy value."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def write_file(root: Path, name: str, data: bytes) -> Path:
    p = root / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p
