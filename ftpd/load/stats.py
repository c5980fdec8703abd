"""Measurements: a mergeable log-linear latency histogram and a per-process recorder.

Percentiles are computed from every sample, kept in an HDR-style histogram: values below 256 ns are
exact, above that each power of two is split into 256 buckets, so a reported value is within 0.2% of
a real sample while memory stays bounded (a few thousand counters) however long the run. Histograms
from several worker processes merge *exactly* by adding bucket counts; percentiles are never
averaged. The exact minimum, maximum and sum are kept beside the buckets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SUB_BITS = 8
SUB = 1 << SUB_BITS  # buckets per power of two: relative error <= 1 / (2 * SUB)

PERCENTILES = (50.0, 90.0, 99.0)


def bucket_index(value: int) -> int:
    """Index of the bucket holding ``value`` (a non-negative integer, nanoseconds)."""
    if value < SUB:
        return value if value > 0 else 0
    shift = value.bit_length() - SUB_BITS - 1
    return shift * SUB + (value >> shift)


def bucket_value(index: int) -> int:
    """Middle of the range of values that fall in bucket ``index``."""
    if index < 2 * SUB:
        return index
    shift, rem = divmod(index, SUB)
    shift -= 1
    low = (SUB + rem) << shift
    return low + ((1 << shift) >> 1)


@dataclass(slots=True)
class Histogram:
    """Latency samples in nanoseconds; mergeable and picklable (plain dict of counters)."""

    counts: dict[int, int] = field(default_factory=dict)
    count: int = 0
    total: int = 0
    min: int = 0
    max: int = 0

    def record(self, value_ns: int) -> None:
        """Add one sample."""
        value_ns = max(value_ns, 0)
        idx = bucket_index(value_ns)
        counts = self.counts
        counts[idx] = counts.get(idx, 0) + 1
        if self.count == 0 or value_ns < self.min:
            self.min = value_ns
        if value_ns > self.max:
            self.max = value_ns
        self.count += 1
        self.total += value_ns

    def merge(self, other: Histogram) -> None:
        """Add every sample of ``other`` to this histogram (exact)."""
        if other.count == 0:
            return
        counts = self.counts
        for idx, n in other.counts.items():
            counts[idx] = counts.get(idx, 0) + n
        if self.count == 0 or other.min < self.min:
            self.min = other.min
        self.max = max(self.max, other.max)
        self.count += other.count
        self.total += other.total

    def percentile(self, pct: float) -> int:
        """Value (ns) at or below which ``pct`` percent of the samples lie (nearest rank)."""
        if self.count == 0:
            return 0
        # Nearest-rank definition: the smallest sample with at least pct% of samples <= it.
        rank = max(1, -(-int(pct * self.count * 1000) // 100_000))
        rank = min(rank, self.count)
        seen = 0
        for idx in sorted(self.counts):
            seen += self.counts[idx]
            if seen >= rank:
                # Clamp to the exact extremes so p100 == max and tiny histograms stay exact-ish.
                return min(max(bucket_value(idx), self.min), self.max)
        return self.max

    def summary_ms(self) -> dict[str, float | int]:
        """p50/p90/p99/max/mean in ms plus the sample count (the JSON ``latency`` entry)."""
        out: dict[str, float | int] = {}
        for pct in PERCENTILES:
            out[f"p{int(pct)}"] = round(self.percentile(pct) / 1e6, 4)
        out["max"] = round(self.max / 1e6, 4)
        out["mean"] = round(self.total / self.count / 1e6, 4) if self.count else 0.0
        out["count"] = self.count
        return out


@dataclass(slots=True)
class Recorder:
    """What one worker measured since the last flush: counts, errors, latencies, bytes.

    Workers send a Recorder's contents to the parent every tick and start a fresh one, so the
    parent's running sum is exactly everything measured, even if a worker dies later.
    """

    counts: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    latency: dict[str, Histogram] = field(default_factory=dict)
    bytes: dict[str, int] = field(default_factory=dict)
    # Open model (``--rate``) only: ``latency`` then runs from each action's intended start,
    # ``service`` from its actual start; ``lag`` is actual minus intended start.
    service: dict[str, Histogram] = field(default_factory=dict)
    lag: Histogram = field(default_factory=Histogram)
    intended: int = 0  # starts the schedule asked for
    missed: int = 0  # of those, starts never made (no free session in time, or the run ended)
    # One example of what the server (or the system) said per error key, for the report's hints.
    error_texts: dict[str, str] = field(default_factory=dict)

    def ok(self, op: str, elapsed_ns: int, nbytes: int = 0, service_ns: int | None = None) -> None:
        """Record one successful operation (``service_ns``: its service time, open model)."""
        self.counts[op] = self.counts.get(op, 0) + 1
        hist = self.latency.get(op)
        if hist is None:
            hist = self.latency[op] = Histogram()
        hist.record(elapsed_ns)
        if service_ns is not None:
            svc = self.service.get(op)
            if svc is None:
                svc = self.service[op] = Histogram()
            svc.record(service_ns)
        if nbytes:
            self.bytes[op] = self.bytes.get(op, 0) + nbytes

    def error(self, op: str, what: str, text: str = "") -> None:
        """Record one failed operation; ``what`` is a reply code or an exception class name.

        ``text`` (the reply text or the exception message) is kept once per key.
        """
        key = f"{op} {what}"
        self.errors[key] = self.errors.get(key, 0) + 1
        if text and key not in self.error_texts:
            self.error_texts[key] = text[:300]

    def add_bytes(self, op: str, nbytes: int) -> None:
        """Count bytes moved by an operation that did not complete (partial transfers)."""
        if nbytes:
            self.bytes[op] = self.bytes.get(op, 0) + nbytes

    def merge(self, other: Recorder) -> None:
        """Add everything ``other`` recorded (exact)."""
        for op, n in other.counts.items():
            self.counts[op] = self.counts.get(op, 0) + n
        for key, n in other.errors.items():
            self.errors[key] = self.errors.get(key, 0) + n
        for op, nbytes in other.bytes.items():
            self.bytes[op] = self.bytes.get(op, 0) + nbytes
        for mine_map, theirs in ((self.latency, other.latency), (self.service, other.service)):
            for op, hist in theirs.items():
                mine = mine_map.get(op)
                if mine is None:
                    mine = mine_map[op] = Histogram()
                mine.merge(hist)
        self.lag.merge(other.lag)
        self.intended += other.intended
        self.missed += other.missed
        for key, text in other.error_texts.items():
            self.error_texts.setdefault(key, text)

    def empty(self) -> bool:
        """True when nothing was recorded."""
        return not (self.counts or self.errors or self.bytes or self.intended)

    def to_wire(self) -> dict[str, Any]:
        """A compact picklable form for the multiprocessing queue."""
        return {
            "counts": self.counts,
            "errors": self.errors,
            "bytes": self.bytes,
            "latency": {op: _hist_wire(h) for op, h in self.latency.items()},
            "service": {op: _hist_wire(h) for op, h in self.service.items()},
            "lag": _hist_wire(self.lag),
            "intended": self.intended,
            "missed": self.missed,
            "error_texts": self.error_texts,
        }

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Recorder:
        """Inverse of :meth:`to_wire`."""
        rec = cls(
            counts=dict(data["counts"]),
            errors=dict(data["errors"]),
            bytes=dict(data["bytes"]),
            lag=_hist_from_wire(data["lag"]),
            intended=data["intended"],
            missed=data["missed"],
            error_texts=dict(data["error_texts"]),
        )
        for op, wire in data["latency"].items():
            rec.latency[op] = _hist_from_wire(wire)
        for op, wire in data["service"].items():
            rec.service[op] = _hist_from_wire(wire)
        return rec

    def errors_total(self) -> int:
        """Number of failed operations of any kind."""
        return sum(self.errors.values())


def _hist_wire(h: Histogram) -> tuple[dict[int, int], int, int, int, int]:
    return (h.counts, h.count, h.total, h.min, h.max)


def _hist_from_wire(wire: tuple[dict[int, int], int, int, int, int]) -> Histogram:
    counts, count, total, lo, hi = wire
    return Histogram(dict(counts), count, total, lo, hi)
