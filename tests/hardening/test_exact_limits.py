"""Issue 16 item 3: ``max_per_ip`` and bans count each address exactly, across workers.

Counts used to live in 65,536 crc32 buckets: 127.1.140.163 shares 127.0.0.1's bucket, so five
sessions from one locked the other out (``max_per_ip 5``); with IPv6 a colliding address is easy
to pick. Bans were per worker: with 2 workers and ``ban_after 3`` up to 6 failures were needed.
"""

from __future__ import annotations

import time
import zlib
from typing import Any

from support.client import Closed, Ctl
from support.proc import fds, settle_fds

COLLIDING = ("127.0.0.1", "127.1.140.163")


def _greeting(srv: Any, source: str) -> int:
    try:
        with Ctl(srv.host, srv.port, source=source, timeout=5) as c:
            assert c.greeting is not None
            return c.greeting.code
    except (Closed, ConnectionError):
        return 0


def test_per_ip_limit_is_exact_for_colliding_addresses(servers: Any) -> None:
    a, b = COLLIDING
    assert zlib.crc32(a.encode()) & 0xFFFF == zlib.crc32(b.encode()) & 0xFFFF  # the premise
    srv = servers(max_per_ip=5)
    base = fds(srv.pid)
    held = [Ctl(srv.host, srv.port, source=a) for _ in range(5)]
    try:
        assert all(c.greeting is not None and c.greeting.code == 220 for c in held)
        assert _greeting(srv, a) == 421  # a's own limit holds
        t0 = time.monotonic()
        with Ctl(srv.host, srv.port, source=b).login(srv.user, srv.password) as c:
            assert c.greeting is not None and c.greeting.code == 220  # not a's bucket any more
            assert c.stor("f.bin", b"x" * 1000).code == 226
            data, _, done = c.retr("f.bin")
            assert data == b"x" * 1000 and done.code == 226
        assert time.monotonic() - t0 < 1.0
    finally:
        for c in held:
            c.close()
    assert settle_fds(srv.pid, base) <= base
    # Every count came back: a's five slots are free again.
    again = [Ctl(srv.host, srv.port, source=a) for _ in range(5)]
    try:
        assert all(c.greeting is not None and c.greeting.code == 220 for c in again)
    finally:
        for c in again:
            c.close()


def test_ban_is_shared_between_workers(servers: Any) -> None:
    """With 2 workers, ``ban_after 3`` bans after exactly 3 failures wherever they landed."""
    srv = servers(workers=2, ban_after=3, ban_seconds=30, max_login_attempts=1)
    for source in ("127.0.0.2", "127.0.0.3", "127.0.0.4"):
        for i in range(3):
            with Ctl(srv.host, srv.port, source=source) as c:
                assert c.greeting is not None and c.greeting.code == 220, (source, i)
                c.cmd("USER user")
                assert c.cmd("PASS wrong").code == 530
        # SO_REUSEPORT spreads connections over the workers: whichever gets the next one knows.
        for _ in range(4):
            assert _greeting(srv, source) == 421, f"{source} not banned after 3 failures"
    t0 = time.monotonic()
    with Ctl(srv.host, srv.port, source="127.0.0.5").login(srv.user, srv.password) as c:
        assert c.stor("g.bin", b"y" * 100).code == 226
    assert time.monotonic() - t0 < 1.0


def test_ipv6_prefix_and_full_table() -> None:
    """IPv6 addresses count per /64 by default (configurable); IPv4-mapped forms are the IPv4
    address; a full table refuses a new address rather than sharing a record."""
    from ftpd.server.addrtable import AddressTable, Refusal

    now = time.monotonic()
    t = AddressTable(1, max_sessions=10)
    assert t.admit("2001:db8::1", 2, 0, now) is None
    assert t.admit("2001:db8::ffff:2", 2, 0, now) is None
    assert t.admit("2001:db8::3", 2, 0, now) is Refusal.PER_IP  # same /64
    assert t.admit("2001:db8:0:1::1", 2, 0, now) is None  # the next /64
    exact = AddressTable(1, max_sessions=10, v6_prefix=128)
    for host in ("2001:db8::1", "2001:db8::2", "2001:db8::3"):
        assert exact.admit(host, 1, 0, now) is None
    assert t.admit("127.0.0.1", 1, 0, now) is None
    assert t.admit("::ffff:127.0.0.1", 1, 0, now) is Refusal.PER_IP
    small = AddressTable(1, slots=16)
    results = [small.admit(f"10.0.0.{i}", 0, 0, now) for i in range(16)]
    assert results[:12] == [None] * 12 and set(results[12:]) == {Refusal.TABLE_FULL}
    for i in range(12):
        small.release(f"10.0.0.{i}", now)
    assert small.records() == 0
    assert small.admit("10.0.0.15", 0, 0, now) is None


def test_user_records_outlive_logout_until_the_purge() -> None:
    """A user's record stays at count 0 after the last logout (the next login costs no insert
    and delete) and goes with the purge; a full table purges idle records before giving up."""
    from ftpd.server.addrtable import AddressTable

    t = AddressTable(1, max_sessions=10)
    t.add_user("alice", 1)
    t.add_user("alice", 1)
    assert t.user_count("alice") == 2
    t.add_user("alice", -1)
    t.add_user("alice", -1)
    assert t.user_count("alice") == 0 and t.records() == 1
    t.add_user("alice", 1)
    assert t.user_count("alice") == 1 and t.records() == 1
    t.add_user("alice", -1)
    t.purge(time.monotonic(), budget=t.slots)
    assert t.records() == 0 and t.user_count("alice") == 0
    t.add_user("bob", -1)  # a logout with no record makes none
    assert t.records() == 0

    small = AddressTable(1, slots=16)
    for i in range(15):
        small.add_user(f"u{i}", 1)
        small.add_user(f"u{i}", -1)
    assert small.records() == 15
    small.add_user("new", 1)
    assert small.user_count("new") == 1 and small.records() < 15  # a bounded purge made room
