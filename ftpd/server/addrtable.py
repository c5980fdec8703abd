"""Exact per-address (and per-user) records shared by all worker processes.

``max_per_ip`` and the brute-force bans must count each client exactly, across workers: hashed
buckets let one address lock out another that shares its bucket (127.1.140.163 and 127.0.0.1
under crc32), which with IPv6 is a targeted lockout. So each record is keyed by the address
itself (IPv4; IPv6 by its prefix, a /64 by default: one site or host gets one record), or by a
128-bit digest of a user name.

Theory of operation. One shared map (a memfd on Linux, else an unlinked temporary file, created
before the fork) holds the per-worker session totals and an open-addressing hash table (linear probing,
backward-shift deletion, so there are no tombstones and probe runs stay short). A slot holds the
key, the failed-login count and its window start, the end of a ban, and one session counter per
worker (a worker that dies has its column zeroed by the supervisor's restart). Every operation
that reads and then writes runs under an ``fcntl`` lock on the file (skipped with one worker):
the kernel drops that lock if its holder dies, so a killed worker can never wedge the others.

A full table refuses rather than shares: a new address is admitted only while the table is under
three quarters full (after dropping expired records); beyond that its connection gets 421. The
table is sized from ``max_sessions`` (four slots per session), so only addresses with failed
logins or bans left behind can fill it; those expire after ``ban_seconds``.
"""

from __future__ import annotations

import enum
import fcntl
import functools
import hashlib
import ipaddress
import mmap
import os
import struct
import tempfile
import time

__all__ = ["AddressTable", "Refusal", "TableRules", "address_key"]

_HEAD = struct.Struct("<B16s3xi4xdd")  # kind, key, failures, fail_since, ban_until
_KEY = struct.Struct("<B16s")  # the head's first two fields: what a probe compares
_KIND_EMPTY = 0
_KIND_V4, _KIND_V6, _KIND_USER, _KIND_OTHER = 1, 2, 3, 4
_MIN_SLOTS = 4096
_PURGE_ON_FULL = 1024


class Refusal(enum.Enum):
    """Why ``AddressTable.admit`` refused a connection."""

    SESSIONS = "Too many connected users, please try later."
    BANNED = "Too many failed logins from your address; try again later."
    PER_IP = "Too many connections from your internet address."
    TABLE_FULL = "Too many connected addresses, please try later."


# Called several times per session (admission, login accounting, release) with the same few
# addresses: parsing one with ``ipaddress`` was ~6% of the server's CPU in a login benchmark.
@functools.lru_cache(maxsize=4096)
def address_key(ip: str, v6_prefix: int = 64) -> tuple[int, bytes]:
    """The record key of a client address: IPv4 exact (IPv4-mapped IPv6 too), IPv6 by prefix."""
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return _KIND_OTHER, hashlib.blake2b(
            ip.encode("utf-8", "surrogateescape"), digest_size=16
        ).digest()
    if addr.version == 6 and addr.ipv4_mapped is not None:  # type: ignore[union-attr]
        addr = addr.ipv4_mapped  # type: ignore[union-attr]
    if addr.version == 4:
        return _KIND_V4, addr.packed.ljust(16, b"\0")
    bits = int.from_bytes(addr.packed, "big")
    if v6_prefix < 128:
        bits &= ~((1 << (128 - v6_prefix)) - 1)
    return _KIND_V6, bits.to_bytes(16, "big")


@functools.lru_cache(maxsize=1024)
def _user_key(name: str) -> tuple[int, bytes]:
    return _KIND_USER, hashlib.blake2b(
        name.encode("utf-8", "surrogateescape"), digest_size=16
    ).digest()


# A slot's home: a hash that is the same in every worker (Python's hash() is salted per process
# when workers are spawned). Cached: a login looks the same one or two keys up five times.
@functools.lru_cache(maxsize=4096)
def _key_hash(kind: int, key: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(bytes([kind]) + key, digest_size=8).digest(), "little")


def _slots_for(max_sessions: int) -> int:
    want = 4 * (max_sessions or 65536)
    slots = _MIN_SLOTS
    while slots < want:
        slots *= 2
    return slots


class TableRules:
    """What both address tables are configured with: ``AddressTable`` (shared by the workers) and
    ``addrlocal.LocalTable`` (one process)."""

    __slots__ = ("v6_prefix", "slots", "_ban_after", "_window")

    def __init__(
        self, max_sessions: int, v6_prefix: int, ban_after: int, ban_seconds: float, slots: int
    ) -> None:
        self.v6_prefix = v6_prefix  # IPv6 addresses count per this prefix
        self._ban_after = ban_after  # failed logins that start a ban (0: never)
        self._window = ban_seconds  # a failure counts this long; a ban lasts this long
        self.slots = slots or _slots_for(max_sessions)  # the capacity, in records


class AddressTable(TableRules):
    """Session counts, failed logins and bans per exact address (see the module docstring)."""

    def __init__(
        self,
        workers: int,
        max_sessions: int = 10000,
        v6_prefix: int = 64,
        ban_after: int = 0,
        ban_seconds: float = 600.0,
        slots: int = 0,
    ) -> None:
        super().__init__(max_sessions, v6_prefix, ban_after, ban_seconds, slots)
        self.workers = max(1, workers)
        self.slot_size = _HEAD.size + 4 * self.workers
        # Per-worker cells (int64) come first: sessions, then running rate-shared downloads and
        # uploads (rates.py); each worker writes only its own cells, so these need no lock.
        self._base = 8 * 3 * self.workers
        size = self._base + 8 + self.slots * self.slot_size  # + the used-slot count
        if hasattr(os, "memfd_create"):  # Linux: memory only, no file anywhere
            self._fd = os.memfd_create("ftpd-addresses", os.MFD_CLOEXEC)
        else:
            fd, name = tempfile.mkstemp(prefix="ftpd-addresses-")
            os.unlink(name)
            self._fd = fd
        os.ftruncate(self._fd, size)
        self._mm = mmap.mmap(self._fd, size)  # MAP_SHARED: seen by forked workers
        self._totals = memoryview(self._mm)[: 8 * self.workers].cast("q")
        # Every field is 4-aligned (head 44 bytes, int32 counts): one int view serves all the
        # per-slot counters without a view made per access.
        self._ints = memoryview(self._mm).cast("i")
        self._xfers = memoryview(self._mm)[8 * self.workers : self._base].cast("q")
        self._locking = self.workers > 1
        self.index = 0  # this process's worker column
        self._cursor = 0  # where the next purge slice starts

    # -- locking ----------------------------------------------------------------------------
    def __enter__(self) -> AddressTable:
        if self._locking:
            fcntl.lockf(self._fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._locking:
            fcntl.lockf(self._fd, fcntl.LOCK_UN)

    # -- slots ------------------------------------------------------------------------------
    def _used(self) -> int:
        return int.from_bytes(self._mm[self._base : self._base + 8], "little")

    def _set_used(self, n: int) -> None:
        self._mm[self._base : self._base + 8] = n.to_bytes(8, "little")

    def _off(self, slot: int) -> int:
        return self._base + 8 + slot * self.slot_size

    def _head(self, slot: int) -> tuple[int, bytes, int, float, float]:
        return _HEAD.unpack_from(self._mm, self._off(slot))  # type: ignore[return-value]

    def _count_at(self, slot: int) -> int:
        """The index in ``_ints`` of the slot's first worker counter."""
        return (self._base + 8 + slot * self.slot_size + _HEAD.size) >> 2

    def _counts(self, slot: int) -> memoryview:
        start = self._count_at(slot)
        return self._ints[start : start + self.workers]

    def _home(self, kind: int, key: bytes) -> int:
        return _key_hash(kind, key) & (self.slots - 1)

    def _find(self, kind: int, key: bytes) -> tuple[int, bool]:
        """(slot, found): the key's slot, or the empty slot where it would go."""
        mask = self.slots - 1
        slot = _key_hash(kind, key) & mask
        unpack, mm, base, size = _KEY.unpack_from, self._mm, self._base + 8, self.slot_size
        while True:
            k, stored = unpack(mm, base + slot * size)
            if k == _KIND_EMPTY:
                return slot, False
            if k == kind and stored == key:
                return slot, True
            slot = (slot + 1) & mask

    def _insert(self, slot: int, kind: int, key: bytes) -> None:
        _HEAD.pack_into(self._mm, self._off(slot), kind, key, 0, 0.0, 0.0)
        self._counts(slot)[:] = memoryview(bytes(4 * self.workers)).cast("i")
        self._set_used(self._used() + 1)

    def _delete(self, slot: int) -> None:
        """Backward-shift deletion (linear probing without tombstones)."""
        mask = self.slots - 1
        hole = slot
        nxt = (slot + 1) & mask
        while True:
            kind, key, *_ = self._head(nxt)
            if kind == _KIND_EMPTY:
                break
            home = self._home(kind, key)
            # Move the entry back into the hole unless its home lies cyclically in (hole, nxt].
            if (nxt - home) & mask >= (nxt - hole) & mask:
                a, b = self._off(hole), self._off(nxt)
                self._mm[a : a + self.slot_size] = self._mm[b : b + self.slot_size]
                hole = nxt
            nxt = (nxt + 1) & mask
        off = self._off(hole)
        self._mm[off : off + self.slot_size] = bytes(self.slot_size)
        self._set_used(self._used() - 1)

    def _idle(self, slot: int, now: float) -> bool:
        """No session, no failure window open, no ban running: the record can go."""
        _, _, failures, since, until = self._head(slot)
        if until > now or any(self._counts(slot)):
            return False
        return failures == 0 or now - since > self._window

    def _purge(self, now: float, budget: int) -> None:
        mask = self.slots - 1
        slot = self._cursor
        for _ in range(min(budget, self.slots)):
            kind = self._mm[self._off(slot)]
            if kind != _KIND_EMPTY and self._idle(slot, now):
                self._delete(slot)  # an entry may move into ``slot``: look at it again
                continue
            slot = (slot + 1) & mask
        self._cursor = slot

    # -- sessions ---------------------------------------------------------------------------
    def total(self) -> int:
        return sum(self._totals)

    def admit(self, ip: str, max_per_ip: int, max_sessions: int, now: float) -> Refusal | None:
        """Count a new connection from ``ip``, or say why it is refused (nothing counted)."""
        kind, key = address_key(ip, self.v6_prefix)
        with self:
            if max_sessions and self.total() >= max_sessions:
                return Refusal.SESSIONS
            slot, found = self._find(kind, key)
            if found:
                _, _, _, _, until = self._head(slot)
                if until > now:
                    return Refusal.BANNED
                if max_per_ip and sum(self._counts(slot)) >= max_per_ip:
                    return Refusal.PER_IP
            else:
                if self._used() * 4 >= self.slots * 3:
                    self._purge(now, _PURGE_ON_FULL)  # bounded: a full table costs no scan
                    slot, _ = self._find(kind, key)
                    if self._used() * 4 >= self.slots * 3:
                        return Refusal.TABLE_FULL
                self._insert(slot, kind, key)
            self._ints[self._count_at(slot) + self.index] += 1
            self._totals[self.index] += 1
        return None

    def release(self, ip: str, now: float) -> None:
        """A connection counted by ``admit`` has ended."""
        kind, key = address_key(ip, self.v6_prefix)
        with self:
            self._totals[self.index] -= 1
            slot, found = self._find(kind, key)
            if not found:
                return
            self._ints[self._count_at(slot) + self.index] -= 1
            if self._idle(slot, now):
                self._delete(slot)

    def ip_count(self, ip: str) -> int:
        kind, key = address_key(ip, self.v6_prefix)
        with self:
            slot, found = self._find(kind, key)
            return sum(self._counts(slot)) if found else 0

    # -- users (per-user max_sessions) -------------------------------------------------------
    def add_user(self, name: str, delta: int) -> None:
        """Count a login of ``name`` (``delta`` 1) or its logout (-1). A user's record stays when
        its count drops to 0 (the purge drops it later): a user who logs in again costs no
        insert and delete. Only logged-in names get a record, so no client can make many."""
        kind, key = _user_key(name)
        with self:
            slot, found = self._find(kind, key)
            if not found:
                if delta <= 0:
                    return
                if self._used() >= self.slots - 1:
                    self._purge(time.monotonic(), _PURGE_ON_FULL)
                    slot, _ = self._find(kind, key)
                    if self._used() >= self.slots - 1:
                        return  # (full: that user's limit is not enforced rather than shared)
                self._insert(slot, kind, key)  # bounded by the sessions already admitted
            self._ints[self._count_at(slot) + self.index] += delta

    def user_count(self, name: str) -> int:
        kind, key = _user_key(name)
        with self:
            slot, found = self._find(kind, key)
            return sum(self._counts(slot)) if found else 0

    # -- failed logins and bans --------------------------------------------------------------
    def is_banned(self, ip: str, now: float) -> bool:
        kind, key = address_key(ip, self.v6_prefix)
        with self:
            slot, found = self._find(kind, key)
            return found and self._head(slot)[4] > now

    def fail(self, ip: str, now: float) -> bool:
        """Count a failed login from ``ip``; True when this failure starts a ban. The address has
        a record already (its session is counted), so this never needs a free slot."""
        if not self._ban_after:
            return False
        kind, key = address_key(ip, self.v6_prefix)
        with self:
            slot, found = self._find(kind, key)
            if not found:
                return False
            k, stored, failures, since, until = self._head(slot)
            if failures == 0 or now - since > self._window:
                failures, since = 0, now
            failures += 1
            banned = failures >= self._ban_after
            if banned:
                failures, until = 0, now + self._window
            _HEAD.pack_into(self._mm, self._off(slot), k, stored, failures, since, until)
            return banned

    def purge(self, now: float, budget: int = 1024) -> None:
        """Drop up to ``budget`` slots' worth of expired records (the sweeper calls this)."""
        with self:
            self._purge(now, budget)

    # -- rate-shared transfers (rates.py) ---------------------------------------------------
    def transfers(self, upload: bool) -> int:
        """Transfers sharing ``max_total_*_rate`` in that direction, in every worker."""
        start = self.workers * upload
        return sum(self._xfers[start : start + self.workers])

    def add_transfer(self, upload: bool, delta: int) -> None:
        self._xfers[self.workers * upload + self.index] += delta

    def records(self) -> int:
        """Records in use (addresses and users): for tests and metrics."""
        return self._used()

    def reset_worker(self, index: int) -> None:
        """Zero a dead worker's column: its sessions died with it."""
        with self:
            self._totals[index] = 0
            self._xfers[index] = self._xfers[self.workers + index] = 0
            for slot in range(self.slots):
                if self._mm[self._off(slot)] != _KIND_EMPTY:
                    self._counts(slot)[index] = 0
