"""Data-connection abuse and password guessing.

- PORT/EPRT bounce (RFC 2577 §3): the server never connects to an address other than the
  client's own, nor to a privileged port; a listener on 127.0.0.2 proves that no connection left.
- Passive-port theft (RFC 2577 §5): a connection to the passive port from another address is
  refused, and the real client's transfer still works.
- Brute force: each failed PASS is answered only after ``login_fail_delay``, the session is closed
  after ``max_login_attempts``, and other sessions are not slowed down meanwhile.
- Per-IP ban (``ban_after``, ``ban_seconds``): after N failed logins from an IP, new connections
  from it get 421 for ``ban_seconds``; other IPs are unaffected.
"""

from __future__ import annotations

import select
import socket
import time
from typing import Any

import pytest
from support.client import Closed, Ctl, noop_latency, recv_all
from support.waits import wait_until


def _listener(host: str) -> socket.socket:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, 0))
    s.listen(8)
    s.settimeout(0.5)
    return s


def _connected(listener: socket.socket) -> bool:
    try:
        conn, _ = listener.accept()
    except TimeoutError:
        return False
    conn.close()
    return True


def _port_arg(host: str, port: int) -> str:
    return ",".join(host.split(".") + [str(port >> 8), str(port & 0xFF)])


def test_port_and_eprt_bounce_is_refused(servers: Any) -> None:
    srv = servers()
    (srv.root / "f.txt").write_bytes(b"payload")
    third = _listener("127.0.0.2")  # a "third party" the attacker wants us to talk to
    tp = third.getsockname()[1]
    own = _listener("127.0.0.1")
    op = own.getsockname()[1]
    try:
        with Ctl(srv.host, srv.port).login(srv.user, srv.password) as ctl:
            attacks = [
                f"PORT {_port_arg('127.0.0.2', tp)}",
                f"EPRT |1|127.0.0.2|{tp}|",
                f"EPRT |2|::ffff:127.0.0.2|{tp}|",
                "PORT 127,0,0,1,0,21",  # privileged port on the client's own address
                "PORT 127,0,0,1,0,25",
                "EPRT |1|127.0.0.1|80|",
                "EPRT |1|127.0.0.1|1023|",
                f"EPRT |2|::1|{op}|",  # another address family is another address
                "PORT 10,0,0,1,4,1",
            ]
            for line in attacks:
                r = ctl.cmd(line)
                assert r.code == 501, (line, r)
                r = ctl.cmd("RETR f.txt")
                assert r.code == 425, (line, r)  # no data connection was set up
            # A connection to the third party would wait in its listen backlog: there is none.
            assert not _connected(third)
            # Control: the client's own address and an unprivileged port do work, and the
            # listener above does see the connection, so the negative checks can fail.
            assert ctl.cmd(f"PORT {_port_arg('127.0.0.1', op)}").code == 200
            assert ctl.cmd("RETR f.txt").code == 150
            conn, _ = own.accept()
            assert recv_all(conn) == b"payload"
            conn.close()
            assert ctl.reply().code == 226
    finally:
        third.close()
        own.close()


def test_bounce_check_uses_the_clients_real_address(servers: Any) -> None:
    """A client on 127.0.0.3 may PORT to 127.0.0.3 but not to 127.0.0.1 (the server's own)."""
    srv = servers()
    (srv.root / "f.txt").write_bytes(b"x")
    mine = _listener("127.0.0.3")
    other = _listener("127.0.0.1")
    try:
        with Ctl(srv.host, srv.port, source="127.0.0.3").login(srv.user, srv.password) as ctl:
            assert ctl.cmd(f"PORT {_port_arg('127.0.0.1', other.getsockname()[1])}").code == 501
            assert ctl.cmd("RETR f.txt").code == 425
            assert not _connected(other)
            assert ctl.cmd(f"PORT {_port_arg('127.0.0.3', mine.getsockname()[1])}").code == 200
            assert ctl.cmd("RETR f.txt").code == 150
            conn, _ = mine.accept()
            assert recv_all(conn) == b"x"
            conn.close()
            assert ctl.reply().code == 226
    finally:
        mine.close()
        other.close()


def test_passive_port_theft_is_refused(servers: Any) -> None:
    srv = servers()
    (srv.root / "f.txt").write_bytes(b"secret payload" * 1000)
    with Ctl(srv.host, srv.port).login(srv.user, srv.password) as ctl:
        assert ctl.cmd("TYPE I").code == 200
        for verb in ("EPSV", "PASV"):
            r = ctl.cmd(verb)
            assert r.code in (227, 229)
            if verb == "EPSV":
                port = int(r.text.split("|||")[1].split("|")[0])
            else:
                nums = r.text.split("(")[1].split(")")[0].split(",")
                port = int(nums[4]) * 256 + int(nums[5])
            # The thief (another address) connects first, then the real client.
            thief = socket.socket()
            thief.bind(("127.0.0.2", 0))
            thief.settimeout(5)
            # connect() returns once the handshake is done, so the thief is ahead of the real
            # client in the listener's accept queue (the server accepts only at RETR).
            thief.connect((srv.host, port))
            real = socket.create_connection((srv.host, port), timeout=5)
            assert ctl.cmd("RETR f.txt").code == 150
            data = recv_all(real)
            real.close()
            assert ctl.reply().code == 226
            assert data == b"secret payload" * 1000
            try:
                stolen = recv_all(thief)
            except ConnectionResetError:
                stolen = b""
            thief.close()
            assert stolen == b"", f"{verb}: the thief got {len(stolen)} bytes"
            # After the transfer the port is closed: a late thief cannot connect at all.
            with pytest.raises(OSError):
                late = socket.socket()
                late.bind(("127.0.0.2", 0))
                late.settimeout(2)
                try:
                    late.connect((srv.host, port))
                finally:
                    late.close()
    assert "refused data connection from foreign 127.0.0.2" in srv.log()


def test_brute_force_is_slowed_and_disconnected(servers: Any, figures: Any) -> None:
    srv = servers(login_fail_delay=0.5, max_login_attempts=3)
    bystander = Ctl(srv.host, srv.port).login(srv.user, srv.password)
    with Ctl(srv.host, srv.port, source="127.0.0.2") as ctl:
        times = []
        for i in range(3):
            assert ctl.cmd("USER user").code == 331
            ctl.send_raw(f"PASS wrong{i}\r\n".encode())
            t0 = time.monotonic()
            # Meanwhile other sessions are answered (the delay is not a blocking sleep): the
            # bystander's NOOP, sent after the PASS, is answered before the PASS is. A blocking
            # sleep would answer them in order; a slow machine only makes both later.
            assert bystander.code("NOOP") == 200
            assert not select.select([ctl.sock], [], [], 0)[0] and not ctl.buf, (
                f"the 530 came before the bystander's NOOP ({time.monotonic() - t0:.2f} s)"
            )
            r = ctl.reply()
            times.append(time.monotonic() - t0)
            assert r.code == 530, r
        assert all(t >= 0.45 for t in times), times
        assert ctl.closed(3), "still connected after max_login_attempts failures"
    figures.record("brute force", failed_logins=3, reply_delays_s=[round(t, 2) for t in times])
    assert noop_latency(bystander) < 1
    bystander.close()


def _try_connect(srv: Any, source: str) -> int:
    """The greeting code a new connection from ``source`` gets (421 means refused)."""
    try:
        with Ctl(srv.host, srv.port, source=source, timeout=5) as c:
            assert c.greeting is not None
            return c.greeting.code
    except (Closed, ConnectionError):
        return -1


def test_ban_after_failed_logins(servers: Any) -> None:
    """``ban_after = 3``: three failed logins from 127.0.0.2 (over two connections) ban that IP
    for ``ban_seconds``; 127.0.0.3 is unaffected; the ban expires."""
    srv = servers(ban_after=3, ban_seconds=2, max_login_attempts=2)
    with Ctl(srv.host, srv.port, source="127.0.0.2") as c:
        for pw in ("a", "b"):
            c.cmd("USER user")
            assert c.cmd(f"PASS {pw}").code == 530
    with Ctl(srv.host, srv.port, source="127.0.0.2") as c:
        c.cmd("USER user")
        assert c.cmd("PASS c").code == 530
    t_banned = time.monotonic()
    # The ban is recorded before the third 530 is sent: no wait needed.
    assert _try_connect(srv, "127.0.0.2") == 421, "an IP with 3 failed logins is not banned"
    # Even the right password cannot be tried from a banned IP; other IPs are not affected.
    assert _try_connect(srv, "127.0.0.3") == 220
    with Ctl(srv.host, srv.port, source="127.0.0.3") as c:
        c.login(srv.user, srv.password)
    # The ban lasts ban_seconds, then the IP may connect again.
    while time.monotonic() - t_banned < 1.5:
        assert _try_connect(srv, "127.0.0.2") == 421
        time.sleep(0.4)  # retrying through the ban: the behaviour under test
    assert wait_until(lambda: _try_connect(srv, "127.0.0.2") == 220, 5), (
        "the ban did not expire after ban_seconds"
    )
    assert time.monotonic() - t_banned >= 2.0 - 0.1, "the ban ended before ban_seconds"
