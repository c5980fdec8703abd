"""The address table of a one-process server: ``AddressTable``'s records in a dict.

With one worker nothing is shared, so the records need no shared mapping, no struct packing and
no probing. A login's five table operations (admit, the ban check, the user's count up and down,
the release) cost ~2 µs here against ~13 µs in the mapping, and the mapping's slots, scattered
over up to 12 MiB, are rarely in the CPU's caches under load: measured on whole logins, about a
sixth of the server's CPU per login (docs/PERFORMANCE.md, "Fourth round").

Same keys (``address_key``: IPv4 exact, IPv6 by prefix; users by digest), same rules and the same
capacity as ``AddressTable``, whose docstring explains them: a record per address with a session,
a failure window or a ban; a user's record kept at count 0 until a purge; a new address refused
(``TABLE_FULL``) once three quarters of ``slots`` are records, after a bounded purge.
``tests/hardening/test_exact_limits.py`` runs the same cases on both tables, and the same random
operations on both side by side.
"""

from __future__ import annotations

import time
from itertools import islice

from .addrtable import (
    _PURGE_ON_FULL,
    AddressTable,
    Refusal,
    TableRules,
    _user_key,
    address_key,
)

__all__ = ["LocalTable", "Counters"]


class _Record:
    __slots__ = ("failures", "since", "until", "count")

    def __init__(self) -> None:
        self.failures = 0
        self.since = 0.0  # the failure window's start
        self.until = 0.0  # the ban's end
        self.count = 0  # sessions (an address) or logins (a user)


class LocalTable(TableRules):
    """``AddressTable``'s interface and rules for a server of one process."""

    __slots__ = ("workers", "index", "_records", "_total", "_xfers")

    def __init__(
        self,
        max_sessions: int = 10000,
        v6_prefix: int = 64,
        ban_after: int = 0,
        ban_seconds: float = 600.0,
        slots: int = 0,
    ) -> None:
        super().__init__(max_sessions, v6_prefix, ban_after, ban_seconds, slots)
        self.workers = 1
        self.index = 0
        self._records: dict[tuple[int, bytes], _Record] = {}
        self._total = 0
        self._xfers = [0, 0]  # running rate-shared downloads, uploads

    def _idle(self, rec: _Record, now: float) -> bool:
        """No session, no failure window open, no ban running: the record can go."""
        if rec.until > now or rec.count:
            return False
        return rec.failures == 0 or now - rec.since > self._window

    def _purge(self, now: float, budget: int) -> None:
        # Oldest records first; one that must stay goes to the back, so that successive purges
        # go round the whole table as AddressTable's cursor does.
        records = self._records
        for key in list(islice(records, budget)):
            rec = records.pop(key)
            if not self._idle(rec, now):
                records[key] = rec

    # -- sessions ---------------------------------------------------------------------------
    def total(self) -> int:
        return self._total

    def admit(self, ip: str, max_per_ip: int, max_sessions: int, now: float) -> Refusal | None:
        """Count a new connection from ``ip``, or say why it is refused (nothing counted)."""
        if max_sessions and self._total >= max_sessions:
            return Refusal.SESSIONS
        key = address_key(ip, self.v6_prefix)
        records = self._records
        rec = records.get(key)
        if rec is not None:
            if rec.until > now:
                return Refusal.BANNED
            if max_per_ip and rec.count >= max_per_ip:
                return Refusal.PER_IP
        else:
            if len(records) * 4 >= self.slots * 3:
                self._purge(now, _PURGE_ON_FULL)
                if len(records) * 4 >= self.slots * 3:
                    return Refusal.TABLE_FULL
            rec = records[key] = _Record()
        rec.count += 1
        self._total += 1
        return None

    def release(self, ip: str, now: float) -> None:
        """A connection counted by ``admit`` has ended."""
        self._total -= 1
        key = address_key(ip, self.v6_prefix)
        rec = self._records.get(key)
        if rec is None:
            return
        rec.count -= 1
        if self._idle(rec, now):
            del self._records[key]

    def ip_count(self, ip: str) -> int:
        rec = self._records.get(address_key(ip, self.v6_prefix))
        return rec.count if rec is not None else 0

    # -- users (per-user max_sessions) -------------------------------------------------------
    def add_user(self, name: str, delta: int) -> None:
        """Count a login of ``name`` (``delta`` 1) or its logout (-1); see AddressTable."""
        key = _user_key(name)
        records = self._records
        rec = records.get(key)
        if rec is None:
            if delta <= 0:
                return
            if len(records) >= self.slots - 1:
                self._purge(time.monotonic(), _PURGE_ON_FULL)
                if len(records) >= self.slots - 1:
                    return  # (full: that user's limit is not enforced rather than shared)
            rec = records[key] = _Record()
        rec.count += delta

    def user_count(self, name: str) -> int:
        rec = self._records.get(_user_key(name))
        return rec.count if rec is not None else 0

    # -- failed logins and bans --------------------------------------------------------------
    def is_banned(self, ip: str, now: float) -> bool:
        rec = self._records.get(address_key(ip, self.v6_prefix))
        return rec is not None and rec.until > now

    def fail(self, ip: str, now: float) -> bool:
        """Count a failed login from ``ip``; True when this failure starts a ban."""
        if not self._ban_after:
            return False
        rec = self._records.get(address_key(ip, self.v6_prefix))
        if rec is None:
            return False
        if rec.failures == 0 or now - rec.since > self._window:
            rec.failures, rec.since = 0, now
        rec.failures += 1
        if rec.failures >= self._ban_after:
            rec.failures, rec.until = 0, now + self._window
            return True
        return False

    def purge(self, now: float, budget: int = 1024) -> None:
        """Drop up to ``budget`` records' worth of expired ones (the sweeper calls this)."""
        self._purge(now, budget)

    # -- rate-shared transfers (rates.py) ---------------------------------------------------
    def transfers(self, upload: bool) -> int:
        return self._xfers[upload]

    def add_transfer(self, upload: bool, delta: int) -> None:
        self._xfers[upload] += delta

    def records(self) -> int:
        """Records in use (addresses and users): for tests and metrics."""
        return len(self._records)

    def reset_worker(self, index: int) -> None:
        """Zero the counts (AddressTable's, for a dead worker; here only for symmetry)."""
        self._total = 0
        self._xfers = [0, 0]
        for rec in self._records.values():
            rec.count = 0


Counters = AddressTable | LocalTable  # what SessionHost and the rate limiter count with
