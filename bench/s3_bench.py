"""Big STOR/RETR on the S3 backend (moto on loopback) next to the local backend: MB/s, memory, CPU.

What runs: moto's S3 server (as ``tests/s3/moto_launcher.py`` runs it, plus a middleware that
times every request so that part uploads can be lined up with the transfer) on 127.0.0.1, its
spooled part files on tmpfs; one bucket. Then, per repetition, each measurement gets a freshly
started ftpd (``log_level = warning``) so that memory is measured from a cold process every time:

- ``local``: STOR of ``--size`` MiB, then RETR of it (home on /dev/shm when there is one);
- ``s3``: the same, plus one STOR of ``--conc-size`` MiB and ``--streams`` concurrent STORs of
  ``--conc-size`` MiB each (memory must stay bounded per transfer: parts >= 8 MiB, 1-2 parts in
  flight, the data socket not read while the part in flight would make a third).

The client is ftplib for the control connection and plain blocking sockets for the data (one
reused 1 MiB block sent, or received into one reused buffer), so it costs little CPU. A thread
samples /proc every 20 ms: ftpd's RSS (``statm``) and utime+stime of ftpd and moto (``stat``);
ftpd's PSS (``smaps_rollup``) only every 100 ms, because one read walks every page of the process
(about 4 ms of CPU at 90 MiB: every 20 ms it would take a fifth of a core from the servers). The
peak RSS is also read exactly from VmHWM, reset before each transfer (``clear_refs``). Per
transfer it reports peak minus idle memory, CPU seconds, and the share of 200 ms windows in which
moto used at least 90% of a core: moto is one Python process (one GIL), so a busy share near 100%
means moto is the bottleneck, not ftpd. The machine's CPU pressure (/proc/pressure/cpu) during
each transfer says how much other work got in the way.

    python bench/s3_bench.py --size 256 --reps 3 --out bench/results_s3.md

Ports: control ports from the kernel (port 0), passive ranges 65100-65199 (outside the ephemeral
range and the tests' 61000-64999). Every process started is stopped by its PID; every loop is
bounded by a count or a deadline.
"""

from __future__ import annotations

import argparse
import ftplib
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

from compare import ftpd_version  # noqa: E402  (bench/ is not a package)

MiB = 1 << 20
USER, PASSWORD = "bench", "bench-pass"
BUCKET, PREFIX, REGION = "ftpd-bench", "homes", "us-east-1"
PASV = {"local": "65100-65149", "s3": "65150-65199"}
TIMEOUT = 120.0  # per socket operation
RUN_LIMIT = 900.0  # seconds any one transfer (or sampler) may take
SAMPLE_S = 0.02
WINDOW_S = 0.2  # CPU "busy" windows: /proc CPU times tick every 10 ms
BUSY = 0.9  # of one core
STALL_S = 0.05  # a gap this long between two 1 MiB sends: the server stopped reading
CLK_TCK = os.sysconf("SC_CLK_TCK")
_READY_MOTO = re.compile(r"Running on (http://127\.0\.0\.1:\d+)")
_READY_FTPD = re.compile(r"^ftpd serving .* on 127\.0\.0\.1:(\d+)$", re.MULTILINE)
STATS_PATH = "/_bench/requests"


# --- moto, run by this file in a child process -------------------------------------------------


def moto_main(host: str) -> None:
    """moto's S3 server plus ``GET /_bench/requests``: the requests served since the last GET."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import run_simple

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    served: list[dict[str, Any]] = []
    lock = threading.Lock()

    class Timed:
        """A response body; the request ends when werkzeug closes it (PEP 3333), after sending."""

        def __init__(self, body: Iterable[bytes], rec: dict[str, Any]) -> None:
            self.body, self.rec = body, rec

        def __iter__(self) -> Any:
            return iter(self.body)

        def close(self) -> None:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
            self.rec["end"] = time.monotonic()  # CLOCK_MONOTONIC: the same clock in every process
            with lock:
                served.append(self.rec)

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == STATS_PATH:
            with lock:
                body = json.dumps(served).encode()
                served.clear()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        rec = {
            "op": s3_op(environ["REQUEST_METHOD"], environ.get("QUERY_STRING", "")),
            "start": time.monotonic(),
            "bytes": int(environ.get("CONTENT_LENGTH") or 0),
        }
        return Timed(app(environ, start_response), rec)

    run_simple(host, 0, wsgi, threaded=True, request_handler=MotoRequestHandler)


def s3_op(method: str, query: str) -> str:
    """The S3 operation of a path-style object request (enough to tell the ones a transfer uses)."""
    if method == "PUT":
        return "UploadPart" if "partNumber=" in query else "PutObject"
    if method == "POST":
        return "CompleteMultipartUpload" if "uploadId=" in query else "CreateMultipartUpload"
    if method == "GET":
        return "List" if "list-type" in query or "prefix=" in query else "GetObject"
    return {"HEAD": "HeadObject", "DELETE": "Delete"}.get(method, method)


# --- processes ----------------------------------------------------------------------------------


def aws_env(tmp: Path) -> dict[str, str]:
    """Fake credentials; never a metadata service or the machine's ~/.aws (as tests/s3 does)."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(tmp / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "no-aws-credentials"),
    }


class Child:
    """A process started here, logging to a file, stopped by its PID (SIGTERM, then SIGKILL)."""

    def __init__(self, argv: list[str], log: Path, env: dict[str, str], ready: re.Pattern[str]):
        self.log = log
        with log.open("w") as fh:
            self.proc = subprocess.Popen(
                argv, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
            )
        self.pid = self.proc.pid
        deadline = time.monotonic() + 60
        while True:
            match = ready.search(log.read_text(errors="replace"))
            if match:
                self.address = match.group(1)
                return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{argv[:4]} did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait(10)


def start_ftpd(backend: str, work: Path, env: dict[str, str], endpoint: str) -> Child:
    argv = [sys.executable, "-m", "ftpd", "--host", "127.0.0.1", "--port", "0"]
    argv += ["--root", str(work / "home"), "--user", USER, "--password", PASSWORD]
    argv += ["--log-level", "warning", "--pasv-ports", PASV[backend], "--max-per-ip", "0"]
    argv += ["--login-fail-delay", "0", "--data-timeout", "120", "--storage", backend]
    if backend == "s3":
        argv += ["--s3-endpoint", endpoint, "--s3-bucket", BUCKET, "--s3-prefix", PREFIX]
        argv += ["--s3-region", REGION]
    log = work / f"ftpd-{backend}-{time.monotonic_ns()}.log"
    return Child(argv, log, env, _READY_FTPD)


def moto_requests(endpoint: str) -> list[dict[str, Any]]:
    """The requests moto served since the last call (and forget them)."""
    with urllib.request.urlopen(endpoint + STATS_PATH, timeout=30) as resp:
        return list(json.loads(resp.read()))


def create_bucket(endpoint: str) -> None:
    """CreateBucket, unsigned: moto does not check signatures (AWS would refuse it)."""
    req = urllib.request.Request(f"{endpoint}/{BUCKET}", method="PUT")
    with urllib.request.urlopen(req, timeout=30) as resp:
        resp.read()


# --- /proc sampling -----------------------------------------------------------------------------


PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
PSS_EVERY = 5  # samples: smaps_rollup every 100 ms


def rss_kib(pid: int) -> int:
    """Resident set size in KiB (statm: a counter, cheap to read)."""
    with open(f"/proc/{pid}/statm") as fh:
        return int(fh.read().split()[1]) * PAGE_KIB


def pss_kib(pid: int) -> int:
    """Proportional set size in KiB (smaps_rollup: walks the page tables)."""
    with open(f"/proc/{pid}/smaps_rollup") as fh:
        for line in fh:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    raise OSError(f"no Pss in /proc/{pid}/smaps_rollup")


def hwm_kib(pid: int) -> int:
    """Peak RSS in KiB since start or the last ``reset_hwm`` (VmHWM), or -1."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1


def reset_hwm(pid: int) -> bool:
    """Reset VmHWM to the current RSS (proc(5) clear_refs "5"); False when not allowed."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return False
    return True


def cpu_s(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of proc(5)


def cpu_pressure_us() -> float:
    """Microseconds in which some runnable task of this machine waited for a CPU (PSI), or NaN."""
    try:
        with open("/proc/pressure/cpu") as fh:
            return float(fh.readline().rpartition("total=")[2])
    except (OSError, ValueError):
        return float("nan")


@dataclass
class Sample:
    t: float
    rss: int
    pss: int  # -1: not read in this sample
    ftpd_cpu: float
    moto_cpu: float


class Sampler:
    """Samples ftpd's memory and ftpd's and moto's CPU every 20 ms in a thread (bounded);
    PSS every PSS_EVERY samples."""

    def __init__(self, ftpd: int, moto: int) -> None:
        self.ftpd, self.moto = ftpd, moto
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        deadline = time.monotonic() + RUN_LIMIT
        n = 0
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                t = time.monotonic()
                pss = pss_kib(self.ftpd) if n % PSS_EVERY == 0 else -1
                rss, cpu = rss_kib(self.ftpd), cpu_s(self.ftpd)
                self.samples.append(Sample(t, rss, pss, cpu, cpu_s(self.moto)))
                n += 1
            except OSError:
                return  # a process ended
            self._stop.wait(SAMPLE_S)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def between(self, t0: float, t1: float) -> list[Sample]:
        return [s for s in self.samples if t0 <= s.t <= t1]


def busy_share(samples: list[Sample], cpu: Callable[[Sample], float]) -> float:
    """Share of WINDOW_S windows in which the process used >= BUSY of one core."""
    windows = busy = 0
    i = 0
    for j in range(1, len(samples)):
        dt = samples[j].t - samples[i].t
        if dt >= WINDOW_S:
            windows += 1
            busy += (cpu(samples[j]) - cpu(samples[i])) / dt >= BUSY
            i = j
    return busy / windows if windows else float("nan")


# --- the client ---------------------------------------------------------------------------------


@dataclass
class Transfer:
    """Client-side timestamps (time.monotonic) of one transfer."""

    start: float = 0.0  # before PASV
    data_end: float = 0.0  # last byte sent (STOR) or EOF (RETR)
    done: float = 0.0  # 226 received
    first: float = 0.0  # RETR: first byte received
    nbytes: int = 0
    marks: list[float] = field(default_factory=list)  # each MiB sent or received

    def stalled(self) -> float:
        """Seconds of the data phase spent in gaps >= STALL_S between two MiB marks."""
        gaps = (b - a for a, b in zip([self.start, *self.marks], self.marks, strict=False))
        return sum(g for g in gaps if g >= STALL_S)


def login(port: int) -> ftplib.FTP:
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", port, timeout=TIMEOUT)
    ftp.login(USER, PASSWORD)
    ftp.voidcmd("TYPE I")
    return ftp


def stor(ftp: ftplib.FTP, name: str, size: int, block: memoryview) -> Transfer:
    tr = Transfer(start=time.monotonic())
    conn = ftp.transfercmd(f"STOR {name}")
    with conn:
        for _ in range(-(-size // len(block))):
            chunk = block[: min(len(block), size - tr.nbytes)]
            conn.sendall(chunk)
            tr.nbytes += len(chunk)
            tr.marks.append(time.monotonic())
    tr.data_end = time.monotonic()
    ftp.voidresp()
    tr.done = time.monotonic()
    return tr


def retr(ftp: ftplib.FTP, name: str, size: int) -> Transfer:
    buf = memoryview(bytearray(MiB))
    tr = Transfer(start=time.monotonic())
    deadline = tr.start + RUN_LIMIT
    conn = ftp.transfercmd(f"RETR {name}")
    with conn:
        next_mark = MiB
        while time.monotonic() < deadline:
            n = conn.recv_into(buf)
            if not n:
                break
            if not tr.nbytes:
                tr.first = time.monotonic()
            tr.nbytes += n
            if tr.nbytes >= next_mark:
                tr.marks.append(time.monotonic())
                next_mark += MiB
            if tr.nbytes > size:
                raise RuntimeError(f"RETR {name}: more than {size} bytes")
    tr.data_end = time.monotonic()
    ftp.voidresp()
    tr.done = time.monotonic()
    if tr.nbytes != size:
        raise RuntimeError(f"RETR {name}: {tr.nbytes} bytes, expected {size}")
    return tr


# --- one measurement ----------------------------------------------------------------------------


@dataclass
class Env:
    work: Path
    env: dict[str, str]
    endpoint: str
    moto_pid: int
    block: memoryview


def moto_stats(reqs: list[dict[str, Any]], t0: float, t1: float) -> dict[str, float]:
    """What moto did during [t0, t1]: UploadPart count, most at once, median duration, share of
    the time with >= 1 and >= 2 in flight; CompleteMultipartUpload and GetObject durations."""

    def spans(op: str) -> list[tuple[float, float]]:
        return [(r["start"], r["end"]) for r in reqs if r["op"] == op]

    parts = spans("UploadPart")
    events = sorted([(a, 1) for a, _ in parts] + [(b, -1) for _, b in parts])
    level = peak = 0
    one = two = 0.0
    last = t0
    for t, step in events:
        t = min(max(t, t0), t1)
        one += (t - last) * (level >= 1)
        two += (t - last) * (level >= 2)
        last, level = t, level + step
        peak = max(peak, level)
    nan = float("nan")
    completes, gets = spans("CompleteMultipartUpload"), spans("GetObject")
    return {
        "parts": len(parts),
        "parts_max_concurrent": peak,
        "part_s": statistics.median([b - a for a, b in parts] or [nan]),
        "parts_ge1_share": one / (t1 - t0),
        "parts_ge2_share": two / (t1 - t0),
        "complete_s": statistics.median([b - a for a, b in completes] or [nan]),
        "complete_share": (
            (max(b for _, b in completes) - min(a for a, _ in completes)) / (t1 - t0)
            if completes
            else 0.0
        ),
        "get_s": statistics.median([b - a for a, b in gets] or [nan]),
    }


def measure(e: Env, backend: str, kind: str, size: int, streams: int) -> dict[str, Any]:
    """Start a fresh ftpd, run one transfer (or ``streams`` concurrent STORs), stop ftpd."""
    name = f"bench-{size // MiB}m.bin"
    ftpd = start_ftpd(backend, e.work, e.env, e.endpoint)
    try:
        sessions = [login(int(ftpd.address)) for _ in range(streams)]
        if backend == "s3":
            moto_requests(e.endpoint)  # forget the requests of start-up and login
        load = os.getloadavg()[0]
        sampler = Sampler(ftpd.pid, e.moto_pid)
        time.sleep(0.4)
        idle = list(sampler.samples)
        hwm_ok = reset_hwm(ftpd.pid)
        cpu0 = (cpu_s(ftpd.pid), cpu_s(e.moto_pid), time.process_time(), cpu_pressure_us())
        if kind == "RETR":
            transfers = [retr(sessions[0], name, size)]
        elif streams == 1:
            transfers = [stor(sessions[0], name, size, e.block)]
        else:
            transfers = run_concurrent(sessions, size, e.block)
        cpu1 = (cpu_s(ftpd.pid), cpu_s(e.moto_pid), time.process_time(), cpu_pressure_us())
        hwm = hwm_kib(ftpd.pid) if hwm_ok else -1
        time.sleep(0.4)
        sampler.stop()
        t0 = min(t.start for t in transfers)
        t1 = max(t.done for t in transfers)
        during = sampler.between(t0, t1)
        after = sampler.samples[-10:]
        if kind == "STOR":
            for i, ftp in enumerate(sessions):
                got = ftp.size(name if streams == 1 else f"conc-{i}.bin")
                if got != size:
                    raise RuntimeError(f"{backend} STOR: SIZE says {got}, expected {size}")
        for ftp in sessions:
            ftp.quit()
    finally:
        ftpd.stop()
    idle_rss = statistics.median(s.rss for s in idle[-10:])
    idle_pss = statistics.median(s.pss for s in idle if s.pss >= 0)
    sampled_rss = max(s.rss for s in during)
    pss = [s.pss for s in during if s.pss >= 0]
    wall = t1 - t0
    row: dict[str, Any] = {
        "backend": backend,
        "kind": kind,
        "size_mib": size // MiB,
        "streams": streams,
        "load1": load,
        "wall_s": wall,
        "mb_s": size * streams / wall / 1e6,
        "data_mb_s": size * streams / (max(t.data_end for t in transfers) - t0) / 1e6,
        "tail_s": statistics.median(t.done - t.data_end for t in transfers),
        "first_s": transfers[0].first - transfers[0].start if kind == "RETR" else float("nan"),
        "stalled_share": statistics.median(t.stalled() / (t.data_end - t.start) for t in transfers),
        # VmHWM is the exact peak; the 20 ms samples can only miss a short one.
        "peak_rss_mib": (max(hwm, sampled_rss) - idle_rss) / 1024 / streams,
        "sampled_rss_mib": (sampled_rss - idle_rss) / 1024 / streams,
        "peak_pss_mib": (max(pss) - idle_pss) / 1024 / streams if pss else float("nan"),
        "kept_rss_mib": (statistics.median(s.rss for s in after) - idle_rss) / 1024,
        "ftpd_cpu_s": cpu1[0] - cpu0[0],
        "moto_cpu_s": cpu1[1] - cpu0[1],
        "client_cpu_s": cpu1[2] - cpu0[2],
        "moto_share": (cpu1[1] - cpu0[1]) / wall,
        "moto_busy": busy_share(during, lambda s: s.moto_cpu),
        "pressure": (cpu1[3] - cpu0[3]) / 1e6 / wall,
    }
    if backend == "s3":
        row.update(moto_stats(moto_requests(e.endpoint), t0, t1))
    return row


def run_concurrent(sessions: list[ftplib.FTP], size: int, block: memoryview) -> list[Transfer]:
    """One STOR per session, all started together (threads: sendall releases the GIL)."""
    barrier = threading.Barrier(len(sessions), timeout=60)
    results: list[Transfer | BaseException | None] = [None] * len(sessions)

    def one(i: int) -> None:
        try:
            barrier.wait()
            results[i] = stor(sessions[i], f"conc-{i}.bin", size, block)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(sessions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(RUN_LIMIT)
    out: list[Transfer] = []
    for r in results:
        if not isinstance(r, Transfer):
            raise RuntimeError(f"concurrent STOR failed: {r!r}")
        out.append(r)
    return out


# --- the report ---------------------------------------------------------------------------------


def fmt(values: list[float], digits: int = 3) -> str:
    """median (min–max), or one value; '—' when nothing was measured."""
    vals = [v for v in values if v == v]  # drop NaN
    if not vals:
        return "—"

    def f(v: float) -> str:
        if abs(v) >= 100:
            return f"{v:,.0f}"
        return f"{v:.{digits}g}" if abs(v) >= 1 else f"{v:.2g}"

    med = f(statistics.median(vals))
    return med if len(vals) == 1 else f"{med} ({f(min(vals))}–{f(max(vals))})"


def label(r: dict[str, Any]) -> tuple[str, str]:
    what = f"{r['kind']} {r['size_mib']} MiB"
    if r["streams"] > 1:
        what = f"{r['streams']} × {what}"
    return r["backend"], what


# (header, row key, scale, only for s3): each cell is the median (min-max) of key * scale.
Column = tuple[str, str, float, bool]
MAIN_COLUMNS: list[Column] = [
    ("MB/s", "mb_s", 1, False),
    ("wall s", "wall_s", 1, False),
    ("MB/s until the last byte", "data_mb_s", 1, False),
    ("last byte → 226, s", "tail_s", 1, False),
    ("ftpd peak RSS Δ MiB per transfer", "peak_rss_mib", 1, False),
    ("peak PSS Δ MiB per transfer", "peak_pss_mib", 1, False),
    ("RSS kept after, MiB (not per transfer)", "kept_rss_mib", 1, False),
    ("ftpd CPU s", "ftpd_cpu_s", 1, False),
    ("moto CPU s", "moto_cpu_s", 1, True),
    ("moto CPU, % of a core", "moto_share", 100, True),
    ("moto ≥ 90% busy, % of time", "moto_busy", 100, True),
    ("client CPU s", "client_cpu_s", 1, False),
    ("CPU pressure, %", "pressure", 100, False),
]
S3_COLUMNS: list[Column] = [
    ("parts", "parts", 1, True),
    ("most parts in flight", "parts_max_concurrent", 1, True),
    ("part upload s", "part_s", 1, True),
    ("≥ 1 part in flight, % of wall", "parts_ge1_share", 100, True),
    ("2+ parts in flight, %", "parts_ge2_share", 100, True),
    ("CompleteMultipartUpload s", "complete_s", 1, True),
    ("Complete, % of wall", "complete_share", 100, True),
    ("GetObject s", "get_s", 1, True),
    ("RETR first byte s", "first_s", 1, True),
    ("data socket stalled, %", "stalled_share", 100, True),
]


def table(
    groups: dict[tuple[str, str], list[dict[str, Any]]], columns: list[Column], s3_only: bool
) -> list[str]:
    """A markdown table: one line per (backend, transfer), one cell per column."""
    lead = ["transfer"] if s3_only else ["backend", "transfer"]
    out = ["| " + " | ".join(lead + [c[0] for c in columns]) + " |"]
    out.append("|" + "---|" * (len(lead) + len(columns)))
    for (backend, what), rows in groups.items():
        if s3_only and backend != "s3":
            continue
        cells = [what] if s3_only else [backend, what]
        for _, key, scale, only_s3 in columns:
            vals = [float(r.get(key, float("nan"))) * scale for r in rows]
            cells.append(fmt(vals) if backend == "s3" or not only_s3 else "—")
        out.append("| " + " | ".join(cells) + " |")
    return out


def report(rows: list[dict[str, Any]], argv: list[str], started: str, version: str) -> str:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    order = sorted(
        rows,
        key=lambda r: (r["backend"] != "local", r["streams"], -r["size_mib"], r["kind"] != "STOR"),
    )
    for r in order:
        groups.setdefault(label(r), []).append(r)
    loads = [r["load1"] for r in rows]
    lines = [
        f"## ftpd big transfers: S3 backend (moto) vs local, {max(len(g) for g in groups.values())}"
        " run(s) each",
        "",
        f"Machine: {os.cpu_count()} cores, Linux {platform.release()}, Python "
        f"{platform.python_version()}, {versions()}; ftpd {version}. Started {started} UTC. "
        f"1-minute load average before each run {min(loads):.2f}–{max(loads):.2f} (the machine "
        "is shared). Figures are medians (min–max) over the runs; every run starts a fresh "
        "ftpd. Local home on "
        f"{'tmpfs (/dev/shm)' if Path('/dev/shm').is_dir() else 'a temp dir'}; moto keeps "
        "parts and objects in spooled files on tmpfs too. MB = 10^6 bytes.",
        "",
    ]
    lines += table(groups, MAIN_COLUMNS, s3_only=False)
    lines += [
        "",
        "S3 requests as moto served them (timed inside moto, on the client's clock), and the "
        "client's view of the data connection:",
        "",
    ]
    lines += table(groups, S3_COLUMNS, s3_only=True)
    lines += [
        "",
        "Columns: *wall* is from PASV to the 226 reply; *MB/s until the last byte* leaves out the "
        "end (for STOR, the rate at which ftpd took the data; socket buffers absorb a few MiB); "
        "*last byte → 226* is what the server does after the client's last byte (S3: the parts "
        "still in flight and CompleteMultipartUpload). "
        "*Peak RSS Δ* is ftpd's peak RSS during the transfer (VmHWM, reset just before it, or "
        "the highest 20 ms sample if higher) minus its idle value just before (logged in), "
        "divided by the concurrent transfers; *peak PSS Δ* the same from smaps_rollup sampled "
        "every 100 ms; *kept after* is RSS 0.4 s after the 226 minus idle (memory the allocator "
        "keeps). *CPU s* is utime+stime during the transfer; *moto CPU, % of a core* is moto's "
        "CPU over the wall time, and *≥ 90% busy* the share of 200 ms windows in which moto used "
        "at least 90% of a core (moto serves requests in threads under one GIL: near 100% means "
        "moto is the bottleneck). *CPU pressure* is /proc/pressure/cpu 'some' over the wall "
        "time: how long some task on this shared machine (this benchmark's three processes "
        "included) waited for a core. *Client CPU* is this "
        "script (ftplib, sockets, the sampler). "
        "*Data socket stalled* is the share of the data phase spent in gaps ≥ 50 ms between two "
        "MiB that the client sent or received (the server not reading, or not sending).",
        "",
        "Command: `" + " ".join(["python3", "bench/s3_bench.py", *argv]) + "`",
        "",
        "Runs (in order):",
        "",
    ]
    lines += [f"- {run_line(r)}" for r in rows]
    return "\n".join(lines) + "\n"


def run_line(r: dict[str, Any]) -> str:
    """One run's main figures, with the load it ran under."""
    return (
        f"{' '.join(label(r))}: {r['mb_s']:.0f} MB/s, wall {r['wall_s']:.2f} s, peak RSS Δ "
        f"{r['peak_rss_mib']:.1f} MiB/transfer (sampled {r['sampled_rss_mib']:.1f}), ftpd CPU "
        f"{r['ftpd_cpu_s']:.2f} s, moto CPU {r['moto_cpu_s']:.2f} s, load {r['load1']:.2f}, "
        f"CPU pressure {r['pressure']:.0%}"
    )


def versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for pkg in ("moto", "aiobotocore", "botocore", "aiohttp", "uvloop"):
        try:
            out.append(f"{pkg} {version(pkg)}")
        except PackageNotFoundError:  # uvloop is optional
            pass
    return ", ".join(out)


# --- main ---------------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=256, help="MiB per STOR/RETR (default 256)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions (default 3)")
    parser.add_argument("--conc-size", type=int, default=64, help="MiB per concurrent STOR")
    parser.add_argument("--streams", type=int, default=4, help="concurrent STORs on S3")
    parser.add_argument("--out", help="also write the markdown report here")
    args = parser.parse_args(argv)
    if not (1 <= args.size <= 4096 and 1 <= args.reps <= 20 and 1 <= args.streams <= 16):
        parser.error("--size 1-4096, --reps 1-20, --streams 1-16")
    if not 1 <= args.conc_size <= 4096:
        parser.error("--conc-size 1-4096")
    started = time.strftime("%Y-%m-%dT%H:%M", time.gmtime())
    shm = Path("/dev/shm")
    work = Path(tempfile.mkdtemp(prefix="ftpd-s3bench-", dir=shm if shm.is_dir() else None))
    env = dict(os.environ, **aws_env(work))
    env["PYTHONPATH"] = str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")
    env.pop("FTPD_CONFIG", None)
    moto_env = dict(env, TMPDIR=str(work))  # moto's spooled part and object files on tmpfs
    block = memoryview(os.urandom(MiB))
    rows: list[dict[str, Any]] = []
    moto: Child | None = None
    try:
        moto = Child(
            [sys.executable, __file__, "_moto", "127.0.0.1"],
            work / "moto.log",
            moto_env,
            _READY_MOTO,
        )
        create_bucket(moto.address)
        e = Env(work, env, moto.address, moto.pid, block)
        plan: list[tuple[str, str, int, int]] = []
        for backend in ("local", "s3"):
            plan += [(backend, "STOR", args.size * MiB, 1), (backend, "RETR", args.size * MiB, 1)]
        if args.conc_size != args.size:  # the single-STOR figure to compare the concurrent ones to
            plan += [("s3", "STOR", args.conc_size * MiB, 1)]
        plan += [("s3", "STOR", args.conc_size * MiB, args.streams)]
        for rep in range(args.reps):
            # Alternate the backends' order, so that drifts of the shared machine hit both alike.
            order = plan if rep % 2 == 0 else plan[2:4] + plan[:2] + plan[4:]
            for backend, kind, size, streams in order:
                row = measure(e, backend, kind, size, streams)
                rows.append(row)
                print(f"rep {rep + 1}/{args.reps}: {run_line(row)}", file=sys.stderr, flush=True)
    finally:
        if moto is not None:
            moto.stop()
        shutil.rmtree(work, ignore_errors=True)
    text = report(rows, argv, started, ftpd_version())
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["_moto"]:
        moto_main(sys.argv[2])
    else:
        sys.exit(main(sys.argv[1:]))
