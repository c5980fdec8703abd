"""Limits, timeouts and lifecycle against a real server, on 127.0.0.1 and ::1: sessions per IP and in
total, login and idle timeouts, failed-login limit, overlong lines, a client vanishing mid-upload,
and SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from typing import Any

import pytest
from integ_helpers import FAMILIES, TIMEOUT, Raw, abort_socket, wait_for

pytestmark = pytest.mark.parametrize("host", FAMILIES)


def _refused(srv: Any) -> tuple[int, str]:
    c = Raw.__new__(Raw)  # the greeting itself is the refusal: read it by hand
    c.sock = socket.create_connection((srv.host, srv.port), TIMEOUT)
    c.host, c.buf = srv.host, b""
    try:
        reply = c.reply()
        assert c.closed(), "the refused connection stays open"
        return reply
    finally:
        c.close()


def test_max_per_ip(factory: Any, host: str) -> None:
    srv = factory(host=host, max_per_ip=2)
    a, b = Raw(srv.host, srv.port), Raw(srv.host, srv.port)
    try:
        assert a.greeting[0] == b.greeting[0] == 220
        code, text = _refused(srv)
        assert code == 421 and "address" in text
        a.close()
        # The slot comes back once the server has seen the close.
        c = wait_for(lambda: _try_connect(srv), timeout=5)
        assert c is not None
        c.close()
    finally:
        a.close()
        b.close()


def _try_connect(srv: Any) -> Raw | None:
    c = Raw(srv.host, srv.port)
    if c.greeting[0] == 220:
        return c
    c.close()
    return None


def test_max_sessions(factory: Any, host: str) -> None:
    srv = factory(host=host, max_sessions=2)
    a = Raw(srv.host, srv.port).login(srv.user, srv.password)
    b = Raw(srv.host, srv.port)
    try:
        code, text = _refused(srv)
        assert code == 421 and "Too many" in text
        assert a.code("NOOP") == 200 and b.code("NOOP") == 200  # the others are untouched
    finally:
        a.close()
        b.close()


def test_login_timeout(factory: Any, host: str) -> None:
    srv = factory(host=host, login_timeout=1)
    c = Raw(srv.host, srv.port)
    try:
        t = time.monotonic()
        c.sock.settimeout(5)
        code, _ = c.reply()
        assert code == 421
        assert c.closed(2)
        assert time.monotonic() - t < 3.5
    finally:
        c.close()
    # Sending commands without logging in does not extend it.
    c = Raw(srv.host, srv.port)
    try:
        t = time.monotonic()
        for _ in range(3):  # all before the earliest expiry (1 s)
            time.sleep(0.25)
            c.send("NOOP")
        assert wait_for(lambda: c.closed(0.5), timeout=4)
        assert "421" in c.buf.decode() and time.monotonic() - t < 4
    finally:
        c.close()


def test_idle_timeout(factory: Any, host: str) -> None:
    srv = factory(host=host, idle_timeout=1)
    c = Raw(srv.host, srv.port).login(srv.user, srv.password)
    try:
        for _ in range(3):  # activity keeps it alive
            time.sleep(0.5)
            assert c.code("NOOP") == 200
        t = time.monotonic()
        c.sock.settimeout(5)
        assert c.reply()[0] == 421
        assert c.closed(2) and time.monotonic() - t < 3.5
    finally:
        c.close()


def test_max_login_attempts(factory: Any, host: str) -> None:
    srv = factory(host=host, max_login_attempts=2)
    c = Raw(srv.host, srv.port)
    try:
        assert c.code(f"USER {srv.user}") == 331
        assert c.code("PASS bad1") == 530
        assert c.code(f"USER {srv.user}") == 331
        assert c.code("PASS bad2") == 530
        assert c.closed(3)
    finally:
        c.close()
    # A good login on a new connection still works (no ban configured here).
    Raw(srv.host, srv.port).login(srv.user, srv.password).close()


def test_overlong_line(factory: Any, host: str) -> None:
    srv = factory(host=host)
    c = Raw(srv.host, srv.port).login(srv.user, srv.password)
    try:
        assert c.code("X" * 5000) == 500
        assert c.code("NOOP") == 200
        # In pieces, and much longer: still one 500, memory stays bounded.
        for _ in range(100):
            c.sock.sendall(b"A" * 10_000)
        c.send("")
        assert c.reply()[0] == 500
        assert c.cmd("PWD")[0] == 257
    finally:
        c.close()


def test_disconnect_mid_upload(factory: Any, host: str) -> None:
    srv = factory(host=host)
    c = Raw(srv.host, srv.port).login(srv.user, srv.password)
    c.code("TYPE I")
    data = c.passive()
    assert c.code("STOR partial.bin") == 150
    block = os.urandom(1 << 20)
    for _ in range(8):
        data.sendall(block)
    abort_socket(data)
    abort_socket(c.sock)
    line = wait_for(lambda: re.search(r"STOR /partial\.bin .*result=(\S+)", srv.log()), timeout=10)
    assert line, srv.log()
    assert line.group(1) in ("lost", "aborted"), line.group(0)
    assert not (srv.root / "partial.bin").exists()
    # No temporary file is left behind either once the upload is discarded.
    assert wait_for(lambda: os.listdir(srv.root) == [], timeout=5), os.listdir(srv.root)
    # The server is fine.
    Raw(srv.host, srv.port).login(srv.user, srv.password).close()


def test_clean_data_close_with_control_loss_is_not_committed(factory: Any, host: str) -> None:
    """The data connection ends normally (FIN) but the control connection is gone: an upload the
    client never saw confirmed must not appear as complete."""
    srv = factory(host=host)
    c = Raw(srv.host, srv.port).login(srv.user, srv.password)
    c.code("TYPE I")
    data = c.passive()
    assert c.code("STOR vanished.bin") == 150
    data.sendall(os.urandom(1 << 20))
    abort_socket(c.sock)
    time.sleep(0.2)
    data.close()
    line = wait_for(lambda: re.search(r"STOR /vanished\.bin .*result=(\S+)", srv.log()), timeout=10)
    assert line and line.group(1) != "ok", srv.log()
    assert not (srv.root / "vanished.bin").exists()


def test_sigterm_exits_zero(factory: Any, host: str) -> None:
    srv = factory(host=host)
    idle = Raw(srv.host, srv.port).login(srv.user, srv.password)
    fresh = Raw(srv.host, srv.port)
    try:
        t = time.monotonic()
        os.kill(srv.pid, signal.SIGTERM)
        assert srv.proc.wait(15) == 0
        assert time.monotonic() - t < 11  # within the shutdown grace period
        for c in (idle, fresh):
            c.sock.settimeout(5)
            assert c.reply()[0] == 421
            assert c.closed(2)
        with pytest.raises(OSError):
            socket.create_connection((srv.host, srv.port), 2).close()
    finally:
        idle.close()
        fresh.close()
