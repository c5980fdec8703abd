"""Timeouts fire when they should, and not while something is happening.

- The idle timeout closes a quiet logged-in session no sooner than 0.9x its value and no later
  than 1.5x plus a little slack (the sweeper runs once a second: with ``idle_timeout = 2`` the
  close lands between 2 and 3 s after the last activity).
- A transfer that keeps moving for several times ``data_timeout`` is not cut: the activity clock
  is refreshed per block, in both directions. The slow client is the behaviour under test, so its
  pacing uses ``time.sleep`` on purpose.
"""

from __future__ import annotations

import hashlib
import os
import time
from typing import Any

from support.client import Ctl, Reply

IDLE = 2.0
SLACK = 0.5  # a loaded 2-core CI machine: the sweeper's wake-up and our read may each lag


def _closed_after(c: Ctl, since: float) -> float:
    """Seconds from ``since`` until the server sent 421 and closed."""
    assert c.closed(IDLE * 3), "the idle session was never closed"
    elapsed = time.monotonic() - since
    assert c.buf.startswith(b"421 "), c.buf
    return elapsed


def test_idle_timeout_fires_on_time(factory: Any) -> None:
    srv = factory(idle_timeout=IDLE, login_timeout=30)
    with Ctl(srv.host, srv.port) as c:
        c.login(srv.user, srv.password)
        since = time.monotonic()  # the 230 was the last activity; from now on we are silent
        elapsed = _closed_after(c, since)
    assert 0.9 * IDLE <= elapsed <= 1.5 * IDLE + SLACK, f"closed {elapsed:.2f} s after activity"


def test_idle_timeout_counts_from_the_last_command(factory: Any) -> None:
    srv = factory(idle_timeout=IDLE, login_timeout=30)
    with Ctl(srv.host, srv.port) as c:
        c.login(srv.user, srv.password)
        time.sleep(IDLE * 0.6)  # quiet for most of the timeout: the behaviour under test
        assert c.code("NOOP") == 200
        since = time.monotonic()
        elapsed = _closed_after(c, since)
    assert 0.9 * IDLE <= elapsed <= 1.5 * IDLE + SLACK, f"closed {elapsed:.2f} s after NOOP"


DATA_TIMEOUT = 1  # the sweeper aborts a transfer idle for 1-2 s
MOVING = 4.0  # each transfer keeps moving for this long: 4x data_timeout


def _final(c: Ctl) -> Reply:
    return c.reply(timeout=30)


def test_slow_upload_longer_than_data_timeout_completes(factory: Any) -> None:
    srv = factory(data_timeout=DATA_TIMEOUT, idle_timeout=30)
    block = os.urandom(8192)
    sent = hashlib.sha256()
    with Ctl(srv.host, srv.port) as c:
        c.login(srv.user, srv.password)
        assert c.code("TYPE I") == 200
        d = c.data_socket()
        assert c.code("STOR slow.bin") == 150
        t0 = time.monotonic()
        with d:
            while time.monotonic() - t0 < MOVING:
                d.sendall(block)
                sent.update(block)
                time.sleep(0.2)  # a slow client: a block every 0.2 s, never idle for 1 s
        r = _final(c)
    assert r.code == 226, r
    assert hashlib.sha256((srv.root / "slow.bin").read_bytes()).digest() == sent.digest()


def test_slow_download_longer_than_data_timeout_completes(factory: Any) -> None:
    srv = factory(data_timeout=DATA_TIMEOUT, idle_timeout=30)
    # Far more than the kernel's socket buffers can hold (both ends autotune up to a few MiB), so
    # the server has to keep writing while we read slowly.
    payload = os.urandom(24 << 20)
    (srv.root / "big.bin").write_bytes(payload)
    rate = len(payload) / MOVING  # bytes/s: the whole file takes MOVING seconds
    with Ctl(srv.host, srv.port) as c:
        c.login(srv.user, srv.password)
        assert c.code("TYPE I") == 200
        d = c.data_socket()
        assert c.code("RETR big.bin") == 150
        got = bytearray()
        t0 = time.monotonic()
        with d:
            while chunk := d.recv(65536):
                got += chunk
                ahead = len(got) / rate - (time.monotonic() - t0)
                if ahead > 0:
                    time.sleep(ahead)  # a slow reader: the pace is the behaviour under test
        r = _final(c)
    assert time.monotonic() - t0 >= MOVING * 0.9
    assert r.code == 226, r
    assert bytes(got) == payload
