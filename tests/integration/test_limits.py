"""Limits, timeouts and lifecycle against a real server, on 127.0.0.1 and ::1: sessions per IP and in
total, login and idle timeouts, failed-login limit, overlong lines, a client vanishing mid-upload,
and SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from integ_helpers import FAMILIES, uniq
from support.client import Ctl, abort_socket
from support.waits import wait_until

from ftpd.auth.hashing import hash_password

by_family = pytest.mark.parametrize("host", FAMILIES)


def _refused(srv: Any) -> tuple[int, str]:
    c = Ctl(srv.host, srv.port, greet=False)  # the greeting itself is the refusal
    try:
        reply = c.reply()
        assert c.closed(), "the refused connection stays open"
        return reply
    finally:
        c.close()


@by_family
def test_max_per_ip(factory: Any, host: str) -> None:
    srv = factory(host=host, max_per_ip=2)
    a, b = Ctl(srv.host, srv.port), Ctl(srv.host, srv.port)
    try:
        assert a.greeting[0] == b.greeting[0] == 220
        code, text = _refused(srv)
        assert code == 421 and "address" in text
        a.close()
        # The slot comes back once the server has seen the close.
        c = wait_until(lambda: _try_connect(srv), timeout=5)
        assert c is not None
        c.close()
    finally:
        a.close()
        b.close()


def _try_connect(srv: Any) -> Ctl | None:
    c = Ctl(srv.host, srv.port)
    if c.greeting[0] == 220:
        return c
    c.close()
    return None


@by_family
def test_max_sessions(factory: Any, host: str) -> None:
    srv = factory(host=host, max_sessions=2)
    a = Ctl(srv.host, srv.port).login(srv.user, srv.password)
    b = Ctl(srv.host, srv.port)
    try:
        code, text = _refused(srv)
        assert code == 421 and "Too many" in text
        assert a.code("NOOP") == 200 and b.code("NOOP") == 200  # the others are untouched
    finally:
        a.close()
        b.close()


@by_family
def test_login_and_idle_timeouts(factory: Any, host: str) -> None:
    """Three clients wait in parallel: idle before login, busy before login (commands do not
    extend the login timeout), and logged in but idle. All get 421 and are closed in time."""
    srv = factory(host=host, login_timeout=1, idle_timeout=1)
    silent = Ctl(srv.host, srv.port)
    chatty = Ctl(srv.host, srv.port)
    idle = Ctl(srv.host, srv.port).login(srv.user, srv.password)
    t = time.monotonic()
    try:
        for _ in range(3):  # before the earliest expiry (1 s)
            time.sleep(0.25)  # clients that talk every 0.25 s: the behaviour under test
            chatty.send("NOOP")
            assert idle.code("NOOP") == 200  # activity keeps a logged-in session alive
        for c in (silent, chatty, idle):
            assert c.closed(4), "not closed by the server"
            assert re.search(rb"^421 ", c.buf, re.M), c.buf
        assert time.monotonic() - t < 4
    finally:
        for c in (silent, chatty, idle):
            c.close()


@pytest.fixture(scope="module", params=FAMILIES)
def lim_srv(request: pytest.FixtureRequest, module_factory: Any) -> Any:
    return module_factory(host=request.param, max_login_attempts=2)


def test_max_login_attempts(lim_srv: Any) -> None:
    srv = lim_srv
    c = Ctl(srv.host, srv.port)
    try:
        assert c.code(f"USER {srv.user}") == 331
        assert c.code("PASS bad1") == 530
        assert c.code(f"USER {srv.user}") == 331
        assert c.code("PASS bad2") == 530
        assert c.closed(3)
    finally:
        c.close()
    # A good login on a new connection still works (no ban configured here).
    Ctl(srv.host, srv.port).login(srv.user, srv.password).close()


def test_overlong_line(lim_srv: Any) -> None:
    srv = lim_srv
    c = Ctl(srv.host, srv.port).login(srv.user, srv.password)
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


def test_disconnect_mid_upload(lim_srv: Any) -> None:
    srv = lim_srv
    d = uniq("upload")
    (srv.root / d).mkdir()
    c = Ctl(srv.host, srv.port).login(srv.user, srv.password)
    c.code("TYPE I")
    data = c.passive()
    assert c.code(f"STOR {d}/partial.bin") == 150
    block = os.urandom(1 << 20)
    for _ in range(8):
        data.sendall(block)
    abort_socket(data)
    abort_socket(c.sock)
    pattern = rf"STOR /{d}/partial\.bin .*result=(\S+)"
    line = wait_until(lambda: re.search(pattern, srv.log()), timeout=10)
    assert line, srv.log()
    assert line.group(1) in ("lost", "aborted"), line.group(0)
    assert not (srv.root / d / "partial.bin").exists()
    # No temporary file is left behind either once the upload is discarded.
    assert wait_until(lambda: os.listdir(srv.root / d) == [], timeout=5), os.listdir(srv.root / d)
    # The server is fine.
    Ctl(srv.host, srv.port).login(srv.user, srv.password).close()


def test_clean_data_close_with_control_loss_is_not_committed(lim_srv: Any) -> None:
    """The control connection is gone and the data connection, still open, has no EOF: the
    server takes what the kernel holds and ends the upload itself, uncommitted, without waiting
    for the data connection (hangup.py). A clean close of the data connection after that does
    not bring it back: an upload the client never saw confirmed must not appear as complete.

    (The verdict is awaited before the data connection closes: a FIN that arrives while the
    server is still draining the queued bytes cannot be told from one the client queued before
    its control connection went, which test_integrity's EOF-then-reset test commits.)"""
    srv = lim_srv
    name = uniq("vanished")
    c = Ctl(srv.host, srv.port).login(srv.user, srv.password)
    c.code("TYPE I")
    data = c.passive()
    assert c.code(f"STOR {name}") == 150
    data.sendall(os.urandom(1 << 20))
    abort_socket(c.sock)
    pattern = rf"STOR /{name} .*result=(\S+)"
    line = wait_until(lambda: re.search(pattern, srv.log()), timeout=10)
    assert line and line.group(1) != "ok", srv.log()  # ended by the server, data still open
    data.close()
    time.sleep(0.2)  # nothing the late FIN could commit
    assert not (srv.root / name).exists()
    assert len(re.findall(pattern, srv.log())) == 1


@by_family
def test_sigterm_exits_zero(factory: Any, host: str) -> None:
    srv = factory(host=host)
    idle = Ctl(srv.host, srv.port).login(srv.user, srv.password)
    fresh = Ctl(srv.host, srv.port)
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


def test_per_user_max_sessions(factory: Any, tmp_path: Path) -> None:
    """``max_sessions`` of a users-file account: its third login is refused with 421 and closed,
    another account is not affected, and a slot comes back when one of its sessions ends."""
    pw = hash_password("pw", ln=4)
    for name in ("alice", "bob"):
        (tmp_path / name).mkdir()
    (tmp_path / "users.toml").write_text(
        f'[[users]]\nname = "alice"\npassword_hash = "{pw}"\nhome = "alice"\nmax_sessions = 2\n\n'
        f'[[users]]\nname = "bob"\npassword_hash = "{pw}"\nhome = "bob"\n'
    )
    srv = factory(users_file=str(tmp_path / "users.toml"))
    first = Ctl(srv.host, srv.port).login("alice", "pw")
    second = Ctl(srv.host, srv.port).login("alice", "pw")
    others = [Ctl(srv.host, srv.port).login("bob", "pw") for _ in range(3)]  # no limit for bob
    try:
        third = Ctl(srv.host, srv.port)
        assert third.code("USER alice") == 331
        code, text = third.cmd("PASS pw")
        assert code == 421 and "Too many" in text, (code, text)
        assert third.closed(5)
        assert first.code("NOOP") == second.code("NOOP") == 200  # the others are untouched
        # A re-login as alice on a session already counted for alice is not a third session.
        assert second.code("USER alice") == 331 and second.code("PASS pw") == 230
        # The slot comes back once the server has seen a session end.
        assert first.code("QUIT") == 221
        fourth = wait_until(lambda: _login_or_none(srv, "alice"), timeout=5)
        assert fourth is not None, "alice's slot did not come back after QUIT"
        fourth.close()
    finally:
        for c in (first, second, *others):
            c.close()


def _login_or_none(srv: Any, user: str) -> Ctl | None:
    c = Ctl(srv.host, srv.port)
    assert c.code(f"USER {user}") == 331
    if c.code("PASS pw") == 230:
        return c
    c.close()
    return None
