"""Run options and per-worker plans, plus the small parsers the command line needs.

Everything here is plain data that pickles, because worker processes are started with the
``spawn`` method and receive their plan as an argument.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

SCENARIOS = ("hold", "logins", "retr", "stor", "small", "mixed")
OPEN_MODEL_SCENARIOS = ("logins", "small", "mixed")  # the ones that take --rate

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_DURATION_UNITS = {None: 1.0, "s": 1.0, "ms": 0.001, "m": 60.0, "h": 3600.0}


def parse_size(text: str) -> int:
    """Bytes from ``4096``, ``4K``, ``64M``, ``1G``, ``1GiB`` (binary multiples)."""
    match = _SIZE_RE.match(text)
    if not match:
        raise ValueError(f"not a size: {text!r} (examples: 4096, 4K, 64M, 1G)")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def parse_duration(text: str) -> float:
    """Seconds from ``10``, ``2.5s``, ``500ms``, ``2m``, ``1h``."""
    match = _DURATION_RE.match(text)
    if not match:
        raise ValueError(f"not a duration: {text!r} (examples: 10, 2.5s, 500ms, 2m)")
    return float(match.group(1)) * _DURATION_UNITS[match.group(2)]


def parse_addresses(text: str) -> list[str]:
    """Source addresses from ``127.0.0.1-127.0.0.8``, ``127.0.0.1-8`` or a comma list of both."""
    out: list[str] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            first_s, last_s = (p.strip() for p in part.split("-", 1))
            first = ipaddress.ip_address(first_s)
            if last_s.isdigit() and first.version == 4:
                # Short form "127.0.0.1-8": the last octet only.
                last = ipaddress.ip_address(first_s.rsplit(".", 1)[0] + "." + last_s)
            else:
                last = ipaddress.ip_address(last_s)
            if last.version != first.version or int(last) < int(first):
                raise ValueError(f"bad address range: {part!r}")
            if int(last) - int(first) >= 65536:
                raise ValueError(f"address range too large: {part!r}")
            out.extend(str(ipaddress.ip_address(i)) for i in range(int(first), int(last) + 1))
        else:
            out.append(str(ipaddress.ip_address(part)))
    if not out:
        raise ValueError("no source address given")
    return out


def parse_weights(text: str, allowed: tuple[str, ...]) -> dict[str, float]:
    """Weights from ``retr=1,stor=0``; names must be in ``allowed``, at least one weight > 0."""
    weights: dict[str, float] = dict.fromkeys(allowed, 0.0)
    for part in text.split(","):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        name = name.strip().lower()
        if not sep or name not in allowed:
            raise ValueError(
                f"bad weight {part!r}: use NAME=WEIGHT with NAME in {', '.join(allowed)}"
            )
        weights[name] = float(value)
        if weights[name] < 0:
            raise ValueError(f"negative weight: {part!r}")
    if not any(w > 0 for w in weights.values()):
        raise ValueError(f"all weights are zero: {text!r}")
    return weights


def split_evenly(total: int, parts: int) -> list[int]:
    """``total`` split in ``parts`` integers that differ by at most one (first ones larger)."""
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


@dataclass(slots=True)
class Options:
    """Everything a run needs, after parsing and validation (the password is never reported)."""

    scenario: str
    # Defaults match a default ``ftpd`` (port 2121, user ``user``); a URL or flags override them.
    host: str = "127.0.0.1"
    port: int = 2121
    user: str = "user"
    password: str = "ftpd-load@"
    tls: bool = False
    implicit_tls: bool = False  # ftps:// (TLS from the first byte) rather than AUTH TLS
    insecure: bool = False
    cafile: str | None = None
    procs: int = 1
    source_addresses: list[str] = field(default_factory=list)
    duration: float = 10.0
    ramp: float = 0.0
    timeout: float = 30.0
    establish_timeout: float = 120.0
    connect_concurrency: int = 24
    sessions: int = 1  # N for hold/mixed, C for logins/retr/stor/small
    count: int = 0  # 0: no limit other than the duration
    noop_sample: int = 100  # -1: all
    noop_interval: float = 1.0
    epsv: bool = False
    size: int = 0
    file: str | None = None
    keep: bool = False
    mix: dict[str, float] = field(default_factory=dict)
    think: float = 10.0
    rate: float = 0.0  # open model: actions (or logins) per second over all workers; 0: closed
    arrivals: str = "constant"  # constant or poisson (open model)
    mlsd: bool = False
    list_files: int = 20
    settle: float = 1.0
    seed: int | None = None
    loop: str = "auto"
    json_path: str | None = None
    plot_path: str | None = None
    report_path: str | None = None
    server_pid: int | None = None
    progress: str = "auto"  # auto, rich, plain, none
    interval: float = 1.0

    def public(self) -> dict[str, object]:
        """The options as reported in the JSON result (no password)."""
        out: dict[str, object] = {}
        for name in self.__slots__:  # type: ignore[attr-defined]
            if name == "password":
                continue
            out[name] = getattr(self, name)
        return out


@dataclass(slots=True)
class Prepared:
    """What the parent set up on the server before the run (virtual paths)."""

    run_dir: str = ""  # "" when the scenario needs no directory
    retr_path: str = ""
    retr_size: int = -1  # -1: unknown (no check of the downloaded size)
    list_dir: str = ""
    created_files: list[str] = field(default_factory=list)
    created_dirs: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Plan:
    """One worker process's share of a run."""

    index: int
    procs: int
    sessions: int
    first_session: int  # global index of this worker's first session (for unique names)
    connect_concurrency: int
    count: int  # operations to run in total; -1: until the duration is over
    noop_sample: int
    sources: list[str]  # all source addresses: session g of the run uses sources[g % len]
    prepared: Prepared
    seed: int
    rate: float = 0.0  # this worker's share of ``--rate``
    rate_phase: float = 0.0  # seconds: offsets the workers' constant schedules from each other


def make_plans(opts: Options, prepared: Prepared, seed: int) -> list[Plan]:
    """Split the sessions, concurrency, count, NOOP sample and source addresses over workers."""
    procs = max(1, min(opts.procs, opts.sessions))
    sessions = split_evenly(opts.sessions, procs)
    concurrency = [max(1, c) for c in split_evenly(opts.connect_concurrency, procs)]
    counts = split_evenly(opts.count, procs) if opts.count else [-1] * procs
    sample_total = opts.sessions if opts.noop_sample < 0 else min(opts.noop_sample, opts.sessions)
    samples = split_evenly(sample_total, procs)
    plans: list[Plan] = []
    first = 0
    for i in range(procs):
        plans.append(
            Plan(
                index=i,
                procs=procs,
                sessions=sessions[i],
                first_session=first,
                connect_concurrency=concurrency[i],
                count=counts[i],
                noop_sample=min(samples[i], sessions[i]),
                sources=opts.source_addresses,
                prepared=prepared,
                seed=seed + i,
                rate=opts.rate / procs,
                # Worker i starts i/rate s later, so constant schedules interleave evenly.
                rate_phase=i / opts.rate if opts.rate else 0.0,
            )
        )
        first += sessions[i]
    return plans
