"""Issue 16 item 8: online guessing is stopped by default, and a failure reveals no name.

A correct password is answered at once, so a client that hangs up on any PASS not answered
within a few milliseconds guesses at full speed whatever ``login_fail_delay`` is: only a
per-address ban stops that, so one is on by default (``ban_after`` failures within
``ban_seconds``). With a users file plus the single user, every failed login takes the same
path (a hash verification), so the answer time does not tell the single user's name apart.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from support.client import Closed, Ctl

from ftpd.auth.hashing import hash_password
from ftpd.config import Config


def _guess(srv: Any, source: str, password: str) -> int:
    """One guess on a fresh connection: the PASS reply code, or the greeting's if refused."""
    try:
        with Ctl(srv.host, srv.port, source=source, timeout=5) as c:
            assert c.greeting is not None
            if c.greeting.code != 220:
                return c.greeting.code
            c.cmd(f"USER {srv.user}")
            return c.cmd(f"PASS {password}").code
    except (Closed, ConnectionError):
        return 421


def test_guessing_is_stopped_by_default(servers: Any, figures: Any) -> None:
    # The defaults, except the per-connection delay the fixture turns off: a guesser does not
    # wait for it anyway (see the module docstring).
    srv = servers()
    default = Config()
    assert default.ban_after > 0 and default.ban_seconds >= 60
    answered = 0
    for i in range(60):
        code = _guess(srv, "127.0.0.6", f"guess{i}")
        if code == 421:
            break
        assert code == 530
        answered += 1
    figures.record("guessing with the defaults", answered_before_ban=answered)
    assert answered == default.ban_after, f"{answered} guesses answered before a ban"
    assert _guess(srv, "127.0.0.6", srv.password) == 421  # not even the right one now
    t0 = time.monotonic()
    with Ctl(srv.host, srv.port, source="127.0.0.7").login(srv.user, srv.password) as c:
        assert c.stor("ok.bin", b"z" * 4096).code == 226
    assert time.monotonic() - t0 < 1.0


def _users_file(tmp_path: Path) -> Path:
    home = tmp_path / "alice"
    home.mkdir()
    users = tmp_path / "users.toml"
    users.write_text(
        f'[[users]]\nname = "alice"\npassword_hash = "{hash_password("wonderland")}"\n'
        f'home = "{home}"\n'
    )
    return users


def _fail_time(srv: Any, user: str) -> float:
    with Ctl(srv.host, srv.port, source="127.0.0.8") as c:
        c.cmd(f"USER {user}")
        t0 = time.perf_counter()
        r = c.cmd("PASS not-the-password")
        dt = time.perf_counter() - t0
        assert r.code == 530, r
    return dt


def test_failed_logins_take_the_same_time_for_every_name(
    servers: Any, tmp_path: Path, figures: Any
) -> None:
    srv = servers(users_file=str(_users_file(tmp_path)), ban_after=0)
    times: dict[str, list[float]] = {"single": [], "alice": [], "unknown": []}
    for _ in range(5):
        times["single"].append(_fail_time(srv, srv.user))
        times["alice"].append(_fail_time(srv, "alice"))
        times["unknown"].append(_fail_time(srv, "mallory"))
    med = {k: statistics.median(v) for k, v in times.items()}
    figures.record(
        "failed login time (median ms)", **{k: round(v * 1000, 1) for k, v in med.items()}
    )
    others = min(med["alice"], med["unknown"])
    # Before: 0.2 ms for the single user against ~46 ms (one scrypt) for the other names.
    assert med["single"] > 0.5 * others, med
    with Ctl(srv.host, srv.port, source="127.0.0.9").login(srv.user, srv.password):
        pass
    with Ctl(srv.host, srv.port, source="127.0.0.9").login("alice", "wonderland"):
        pass
