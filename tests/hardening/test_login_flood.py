"""Issue 16 item 4: abandoned logins cannot pile up hashing work.

With a users file, ``USER x``/``PASS y`` then a reset, repeated for seconds, queued one scrypt
verification per connection and nothing cancelled them: a real user's next login took 49.5 s.
Now a closed connection cancels its check, the checks are bounded per address and in total
(the excess is refused with 421 at once), and addresses are served in turn.
"""

from __future__ import annotations

import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from support.client import Closed, Ctl
from support.proc import fds, pss_kib, settle_fds
from support.waits import wait_until

from ftpd.auth.hashing import hash_password

FLOOD_SECONDS = 4.0


USERS = 30  # each real login below is a user's first: a hash verification, not a cache hit


def _users_file(tmp_path: Path) -> Path:
    home = tmp_path / "homes"
    home.mkdir()
    users = tmp_path / "users.toml"
    users.write_text(
        "".join(
            f'[[users]]\nname = "u{i}"\npassword_hash = "{hash_password(f"pw{i}")}"\n'
            f'home = "{home}"\n'
            for i in range(USERS)
        )
    )
    return users


# The flood runs in its own process: flooder threads in the test process would take the GIL
# from the client whose login is timed.
FLOODER = """
import socket, sys, threading, time
host, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
linger = b"\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00"
sent = [0]
end = time.monotonic() + seconds
def flood():
    while time.monotonic() < end:
        s = socket.socket()
        try:
            s.settimeout(2)
            s.bind(("127.0.0.2", 0))
            s.connect((host, port))
            s.sendall(b"USER u0\\r\\nPASS guess\\r\\n")
            s.recv(100)  # the greeting: the PASS is being read
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            sent[0] += 1
        except OSError:
            pass
        finally:
            s.close()
threads = [threading.Thread(target=flood) for _ in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(sent[0])
"""


_next_user = iter(range(USERS))


def _real_login(srv: Any) -> float:
    i = next(_next_user)
    t0 = time.monotonic()
    with Ctl(srv.host, srv.port, source="127.0.0.3", timeout=10) as c:
        c.login(f"u{i}", f"pw{i}")
        assert c.stor(f"real{i}.bin", b"r" * 2048).code == 226
    return time.monotonic() - t0


def test_real_login_stays_fast_during_a_login_flood(
    servers: Any, tmp_path: Path, figures: Any
) -> None:
    srv = servers(users_file=str(_users_file(tmp_path)), ban_after=0)
    _real_login(srv)  # warm: the hashing threads and their arenas exist from here on
    base, base_pss = fds(srv.pid), pss_kib(srv.pid)
    flood = subprocess.Popen(
        [sys.executable, "-c", FLOODER, srv.host, str(srv.port), str(FLOOD_SECONDS)],
        stdout=subprocess.PIPE,
        text=True,
    )
    during: list[float] = []
    try:
        t_end = time.monotonic() + FLOOD_SECONDS
        time.sleep(0.5)  # let the flood build up
        while time.monotonic() < t_end - 0.3:
            during.append(_real_login(srv))
            time.sleep(0.1)
    finally:
        out, _ = flood.communicate(timeout=30)
    sent = [int(out.strip() or 0)]
    after = [_real_login(srv) for _ in range(3)]
    figures.record(
        "login flood",
        flood_connections=sent[0],
        login_during_max_s=round(max(during), 3),
        login_after_max_s=round(max(after), 3),
    )
    assert sent[0] > 200, "the flood did not run"
    assert max(during) < 1.0, during
    assert max(after) < 1.0, after
    assert settle_fds(srv.pid, base) <= base
    # A verification still running when the flood stopped holds its 16 MiB until it ends.
    wait_until(lambda: pss_kib(srv.pid) <= base_pss * 1.1, 10)
    after_pss = pss_kib(srv.pid)
    figures.record("login flood", pss_before_kib=base_pss, pss_after_kib=after_pss)
    assert after_pss <= base_pss * 1.1, (base_pss, after_pss)  # 16 MiB per hash went back


def test_checks_beyond_the_bound_are_refused_at_once(servers: Any, tmp_path: Path) -> None:
    srv = servers(users_file=str(_users_file(tmp_path)), ban_after=0)
    conns = [Ctl(srv.host, srv.port, source="127.0.0.4") for _ in range(10)]
    try:
        for c in conns:
            c.send(b"USER nobody\r\n")
            assert c.reply().code == 331
        t0 = time.monotonic()
        for c in conns:
            c.send(b"PASS guess\r\n")
        # When each answer arrives (the four admitted checks take a hash each, one at a time).
        answered: dict[int, tuple[int, float]] = {}
        deadline = t0 + 20
        while len(answered) < len(conns) and time.monotonic() < deadline:
            waiting = [c.sock for i, c in enumerate(conns) if i not in answered]
            ready, _, _ = select.select(waiting, [], [], 0.5)
            now = time.monotonic()
            for sock in ready:
                i = next(i for i, c in enumerate(conns) if c.sock is sock)
                try:
                    answered[i] = (conns[i].reply().code, now - t0)
                except Closed:
                    answered[i] = (0, now - t0)
        codes = sorted(code for code, _ in answered.values())
        assert codes.count(421) >= 5 and set(codes) <= {421, 530}, answered
        assert all(dt < 1.0 for code, dt in answered.values() if code == 421), answered
    finally:
        for c in conns:
            c.close()
    assert _real_login(srv) < 1.0


def test_gate_cancels_queued_checks_and_shares_threads() -> None:
    """The gate itself: checks cancelled while queued never run, one address never holds all
    the threads, the excess over the per-address bound is refused, and nothing is left after."""
    import asyncio

    from ftpd.auth import Refusal
    from ftpd.server import logins

    class SlowAuth:
        def __init__(self) -> None:
            self.names: list[str] = []

        async def authenticate(self, name: str, password: str) -> None:
            self.names.append(name)
            await asyncio.sleep(0.05)
            return None

    async def main() -> None:
        auth = SlowAuth()
        failures: list[str] = []
        gate = logins.LoginGate(lambda n, p, _client: auth.authenticate(n, p), 2, failures.append)
        owners = [object() for _ in range(6)]
        addrs = ["10.0.0.1"] * 4 + ["10.0.0.2"] * 2
        tasks = [
            asyncio.ensure_future(gate.check(o, a, a, "pw"))
            for o, a in zip(owners, addrs, strict=True)
        ]
        await asyncio.sleep(0.01)  # (well within the 50 ms a verification takes here)
        assert gate.running == 2 and auth.names == ["10.0.0.1", "10.0.0.2"]  # one thread each
        assert await gate.check(object(), "10.0.0.1", "x", "pw") == Refusal(
            logins.BUSY
        )  # 4 waiting
        for o in owners[1:4]:
            gate.cancel(o)  # the client went away while its check waited
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert [isinstance(r, asyncio.CancelledError) for r in results] == [
            False,
            True,
            True,
            True,
            False,
            False,
        ]
        assert sorted(auth.names) == ["10.0.0.1", "10.0.0.2", "10.0.0.2"]  # cancelled: not run
        assert sorted(failures) == sorted(auth.names)  # every verification that ran counts
        assert gate.pending() == 0 and gate.running == 0
        assert not gate._queues and not gate._turns  # no address left waiting for its turn
        assert await gate.check(object(), "10.0.0.3", "y", "pw") is None

    asyncio.run(main())
