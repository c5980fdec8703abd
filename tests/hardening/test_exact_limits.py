"""Issue 16 item 3: ``max_per_ip`` and bans count each address exactly, across workers.

Counts used to live in 65,536 crc32 buckets: 127.1.140.163 shares 127.0.0.1's bucket, so five
sessions from one locked the other out (``max_per_ip 5``); with IPv6 a colliding address is easy
to pick. Bans were per worker: with 2 workers and ``ban_after 3`` up to 6 failures were needed.
"""

from __future__ import annotations

import time
import zlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
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


def _shared(**kw: Any) -> Any:
    from ftpd.server.addrtable import AddressTable

    return AddressTable(1, **kw)


def _local(**kw: Any) -> Any:
    from ftpd.server.addrlocal import LocalTable

    return LocalTable(**kw)


# Both tables keep the same rules: the shared one (several workers) and the dict (one worker).
TABLES = pytest.mark.parametrize("make", [_shared, _local], ids=["shared", "local"])


@TABLES
def test_ipv6_prefix_and_full_table(make: Any) -> None:
    """IPv6 addresses count per /64 by default (configurable); IPv4-mapped forms are the IPv4
    address; a full table refuses a new address rather than sharing a record."""
    from ftpd.server.addrtable import Refusal

    now = time.monotonic()
    t = make(max_sessions=10)
    assert t.admit("2001:db8::1", 2, 0, now) is None
    assert t.admit("2001:db8::ffff:2", 2, 0, now) is None
    assert t.admit("2001:db8::3", 2, 0, now) is Refusal.PER_IP  # same /64
    assert t.admit("2001:db8:0:1::1", 2, 0, now) is None  # the next /64
    exact = make(max_sessions=10, v6_prefix=128)
    for host in ("2001:db8::1", "2001:db8::2", "2001:db8::3"):
        assert exact.admit(host, 1, 0, now) is None
    assert t.admit("127.0.0.1", 1, 0, now) is None
    assert t.admit("::ffff:127.0.0.1", 1, 0, now) is Refusal.PER_IP
    small = make(slots=16)
    results = [small.admit(f"10.0.0.{i}", 0, 0, now) for i in range(16)]
    assert results[:12] == [None] * 12 and set(results[12:]) == {Refusal.TABLE_FULL}
    for i in range(12):
        small.release(f"10.0.0.{i}", now)
    assert small.records() == 0
    assert small.admit("10.0.0.15", 0, 0, now) is None


@TABLES
def test_user_records_outlive_logout_until_the_purge(make: Any) -> None:
    """A user's record stays at count 0 after the last logout (the next login costs no insert
    and delete) and goes with the purge; a full table purges idle records before giving up."""
    t = make(max_sessions=10)
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

    small = make(slots=16)
    for i in range(15):
        small.add_user(f"u{i}", 1)
        small.add_user(f"u{i}", -1)
    assert small.records() == 15
    small.add_user("new", 1)
    assert small.user_count("new") == 1 and small.records() < 15  # a bounded purge made room


@TABLES
def test_sessions_bans_and_limits(make: Any) -> None:
    """Per-address and total limits, a ban after ``ban_after`` failures within the window, the
    ban's end, and records dropped once idle."""
    from ftpd.server.addrtable import Refusal

    t = make(max_sessions=10, ban_after=3, ban_seconds=60.0)
    now = 1000.0
    assert [t.admit("10.0.0.1", 2, 3, now) for _ in range(3)] == [None, None, Refusal.PER_IP]
    assert t.admit("10.0.0.2", 2, 3, now) is None
    assert t.admit("10.0.0.3", 2, 3, now) is Refusal.SESSIONS and t.total() == 3
    assert t.ip_count("10.0.0.1") == 2 and t.ip_count("10.0.0.9") == 0
    assert [t.fail("10.0.0.1", now + i) for i in range(3)] == [False, False, True]
    assert t.is_banned("10.0.0.1", now + 59) and not t.is_banned("10.0.0.2", now)
    # The ban began with the third failure (now + 2) and lasts ban_seconds to the microsecond.
    assert t.is_banned("10.0.0.1", now + 61.999) and not t.is_banned("10.0.0.1", now + 62)
    t.release("10.0.0.1", now)
    t.release("10.0.0.1", now)
    assert t.admit("10.0.0.1", 2, 3, now + 10) is Refusal.BANNED
    assert t.records() == 2  # the banned address keeps its record with no session
    assert t.admit("10.0.0.1", 2, 3, now + 63) is None  # the ban is over
    assert not t.fail("10.0.0.99", now)  # no record, no session: nothing to count
    t.release("10.0.0.1", now + 63)
    t.release("10.0.0.2", now + 63)
    t.purge(now + 200, budget=t.slots)
    assert t.records() == 0 and t.total() == 0
    t.add_transfer(True, 1)
    assert t.transfers(True) == 1 and t.transfers(False) == 0


_IPS = st.sampled_from(["10.0.0.1", "::ffff:10.0.0.1", "2001:db8::1", "2001:db8::2", "10.0.0.3"])
# Around the window (30 s) and the ban (30 s), where an off-by-one would show.
_WAITS = st.one_of(st.sampled_from([0.0, 1.0, 15.0, 29.0, 29.999, 30.0, 30.001, 31.0]), st.floats(0, 40))
_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("admit"), _IPS, st.integers(0, 3), st.integers(0, 6)),
        st.tuples(st.just("release"), _IPS),
        st.tuples(st.just("fail"), _IPS),
        st.tuples(st.just("user"), st.sampled_from(["ann", "bob"]), st.sampled_from([1, -1])),
        st.tuples(st.just("wait"), _WAITS),
        st.tuples(st.just("purge"),),
    ),
    max_size=60,
)


@given(_OPS)
@settings(max_examples=500, deadline=None)
def test_local_table_answers_as_the_shared_one(ops: list[Any]) -> None:
    """The same operations on both tables (large enough never to fill): the same refusals, bans,
    counts and number of records after every step."""
    shared = _shared(max_sessions=100, ban_after=2, ban_seconds=30.0)
    local = _local(max_sessions=100, ban_after=2, ban_seconds=30.0)
    admitted: list[str] = []
    now = 1000.0
    for op in ops:
        kind = op[0]
        if kind == "admit":
            a = shared.admit(op[1], op[2], op[3], now)
            assert local.admit(op[1], op[2], op[3], now) is a
            if a is None:
                admitted.append(op[1])
        elif kind == "release" and op[1] in admitted:  # the server releases what it admitted
            admitted.remove(op[1])
            shared.release(op[1], now)
            local.release(op[1], now)
        elif kind == "fail":
            assert local.fail(op[1], now) is shared.fail(op[1], now)
        elif kind == "user":
            shared.add_user(op[1], op[2])
            local.add_user(op[1], op[2])
        elif kind == "wait":
            now += op[1]
        elif kind == "purge":
            shared.purge(now, budget=shared.slots)
            local.purge(now, budget=local.slots)
        for ip in ("10.0.0.1", "10.0.0.2", "2001:db8::1", "2001:db8:1::1"):
            assert local.is_banned(ip, now) is shared.is_banned(ip, now)
            assert local.ip_count(ip) == shared.ip_count(ip)
        assert local.user_count("ann") == shared.user_count("ann")
        assert local.total() == shared.total() and local.records() == shared.records()
