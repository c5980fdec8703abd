"""Run the same ftpd-load scenarios against ftpd and pyftpdlib, back to back, on loopback.

Both servers get the same user, the same files and no connection limits (pyftpdlib through
bench/pyftpdlib_server.py: max_cons=0, max_cons_per_ip=0, sendfile on). Every (scenario, repeat,
server) run starts a fresh server process, so that memory per session is measured from a cold
server each time, and the servers alternate so that drifts of the machine hit both alike.
Prints one markdown table (median, min-max over ``--repeat`` runs, ratio ftpd/pyftpdlib) and
writes it to ``--out``; the raw JSON of every run goes to ``--raw``.

    python bench/compare.py --quick            # small scale, about 2 minutes
    python bench/compare.py --repeat 3 --hold 10000 --procs 4
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
USER, PASSWORD = "bench", "bench-pass"
BIG_FILE = "big.bin"

# metric name -> (how to read it from a result, higher is better)
Metric = tuple[str, Callable[[dict[str, Any]], float | None], bool]


def _get(*path: str) -> Callable[[dict[str, Any]], float | None]:
    def read(result: dict[str, Any]) -> float | None:
        value: Any = result
        for key in path:
            if not isinstance(value, dict) or key not in value:
                return None
            value = value[key]
        return value

    return read


METRICS: dict[str, list[Metric]] = {
    "hold": [
        ("sessions established/s", _get("rates", "establish_per_s"), True),
        ("NOOP p99 ms (all held)", _get("latency", "noop", "p99"), False),
        ("server KiB per session (PSS)", _get("server", "per_session_kib"), False),
        ("server CPU µs per session set-up", _get("server", "cpu_us_per_session"), False),
        ("alive at end", _get("sessions", "alive_at_end"), True),
    ],
    "logins": [
        ("logins/s", _get("rates", "logins_per_s"), True),
        ("login p99 ms", _get("latency", "login", "p99"), False),
        ("server CPU µs per login", _get("server", "cpu_us_per_op"), False),
    ],
    "small": [
        ("transfers/s", _get("rates", "transfers_per_s"), True),
        ("RETR p99 ms", _get("latency", "retr", "p99"), False),
        ("server CPU µs per transfer", _get("server", "cpu_us_per_op"), False),
    ],
    "retr": [
        ("RETR MB/s", _get("rates", "mb_per_s"), True),
        ("server CPU µs per RETR", _get("server", "cpu_us_per_op"), False),
    ],
    "stor": [
        ("STOR MB/s", _get("rates", "mb_per_s"), True),
        ("server CPU µs per STOR", _get("server", "cpu_us_per_op"), False),
    ],
    "mixed": [
        ("actions/s", _get("rates", "actions_per_s"), True),
        ("action p99 ms (LIST)", _get("latency", "list", "p99"), False),
        ("action p99 ms (RETR)", _get("latency", "retr", "p99"), False),
        ("server KiB per session (PSS)", _get("server", "per_session_kib"), False),
        ("alive at end", _get("sessions", "alive_at_end"), True),
    ],
}


FULL = {"hold": 2000, "mixed": 500, "concurrency": 20, "size": "256M", "duration": 10.0}
QUICK = {"hold": 200, "mixed": 50, "concurrency": 10, "size": "32M", "duration": 3.0}


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """Wait until something accepts on 127.0.0.1:port (or fail if the process died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with status {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server not listening on port {port} after {timeout} s")


class Server:
    """One server process started for one run."""

    def __init__(self, kind: str, root: Path, log: Path) -> None:
        self.kind = kind
        self.port = free_port()
        env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        if kind == "ftpd":
            cmd = [sys.executable, "-m", "ftpd", "--host", "127.0.0.1", "--port", str(self.port)]
            cmd += ["--root", str(root), "--user", USER, "--password", PASSWORD]
            cmd += ["--max-per-ip", "0", "--max-sessions", "0", "--pasv-ports", "61000-61999"]
            cmd += ["--log-level", "warning"]
        else:
            cmd = [sys.executable, str(HERE / "pyftpdlib_server.py"), "--host", "127.0.0.1"]
            cmd += ["--port", str(self.port), "--root", str(root), "--user", USER]
            cmd += ["--password", PASSWORD, "--pasv-ports", "62000-62999"]
        self._log = log.open("ab")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        try:
            wait_listening(self.port, self.proc)
        except BaseException as exc:
            self.stop()
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{kind} did not start: {exc}\n{tail}") from None

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def scenario_args(name: str, a: argparse.Namespace) -> list[str]:
    """ftpd-load arguments for one scenario at the chosen scale."""
    common = ["--duration", str(a.duration), "--procs", str(a.procs)]
    if a.source_addresses:
        common += ["--source-addresses", a.source_addresses]
    if name == "hold":
        return ["hold", str(a.hold), *common, "--noop-sample", "100"]
    if name == "logins":
        return ["logins", "-c", str(a.concurrency), *common]
    if name == "small":
        return ["small", "-c", str(a.concurrency), *common]
    if name == "retr":
        return ["retr", "-c", "1", "--file", f"/{BIG_FILE}", *common]
    if name == "stor":
        return ["stor", "-c", "1", "--size", a.size, *common]
    if name == "mixed":
        return ["mixed", str(a.mixed), "--think", str(a.think), *common]
    raise ValueError(name)


def run_one(
    kind: str, name: str, a: argparse.Namespace, work: Path, big: Path, n: int
) -> dict[str, Any]:
    """Start a fresh server, run one scenario against it, stop it; return the JSON result."""
    root = work / f"{kind}-{name}-{n}"
    root.mkdir()
    if name == "retr":
        os.link(big, root / BIG_FILE)  # the same file (and page cache) for both servers
    server = Server(kind, root, work / f"{kind}.log")
    out = work / f"{kind}-{name}-{n}.json"
    cmd = [sys.executable, "-m", "ftpd.load", *scenario_args(name, a)]
    cmd += ["--port", str(server.port), "--user", USER, "--password", PASSWORD]
    cmd += ["--server-pid", str(server.proc.pid), "--json", str(out), "--progress", "none"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=a.duration + 600)
    finally:
        server.stop()
    if not out.exists():
        raise RuntimeError(f"{kind} {name}: no result\n{proc.stdout}\n{proc.stderr}")
    result = json.loads(out.read_text())
    if result["errors_total"]:
        print(f"  {kind} {name}: errors {result['errors']}", file=sys.stderr)
    return result


def _fmt(values: list[float]) -> str:
    if not values:
        return "n/a"
    med = statistics.median(values)
    digits = 0 if med >= 100 else 1 if med >= 10 else 2 if med >= 1 else 3
    text = f"{med:.{digits}f}"
    if len(values) > 1:
        text += f" ({min(values):.{digits}f}-{max(values):.{digits}f})"
    return text


def table(results: dict[tuple[str, str], list[dict[str, Any]]], a: argparse.Namespace) -> str:
    """The markdown comparison table."""
    lines = [
        "| scenario | metric | ftpd median (min-max) | pyftpdlib median (min-max) | ftpd / pyftpdlib |",
        "|---|---|---|---|---|",
    ]
    for name in a.scenarios:
        for label, read, _higher in METRICS[name]:
            cols = {}
            meds = {}
            for kind in ("ftpd", "pyftpdlib"):
                vals = [v for r in results.get((kind, name), []) if (v := read(r)) is not None]
                cols[kind] = _fmt([float(v) for v in vals])
                meds[kind] = statistics.median(vals) if vals else None
            ratio = "n/a"
            if meds["ftpd"] is not None and meds["pyftpdlib"]:
                ratio = f"{meds['ftpd'] / meds['pyftpdlib']:.2f}x"
            lines.append(f"| {name} | {label} | {cols['ftpd']} | {cols['pyftpdlib']} | {ratio} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse options, run everything, print and write the table."""
    p = argparse.ArgumentParser(description="ftpd vs pyftpdlib with ftpd-load")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="small scale: hold 200, 3 s runs")
    p.add_argument("--scenarios", default="hold,logins,small,retr,stor,mixed")
    p.add_argument("--hold", type=int, help="sessions held (hold; 2000, quick 200)")
    p.add_argument("--mixed", type=int, help="sessions (mixed; 500, quick 50)")
    p.add_argument("--think", type=float, default=1.0, help="mean think time (mixed)")
    p.add_argument("--concurrency", type=int, help="clients (logins, small; 20, quick 10)")
    p.add_argument("--size", help="big file (retr, stor; 256M, quick 32M)")
    p.add_argument("--duration", type=float, help="seconds per run (10, quick 3)")
    p.add_argument("--procs", type=int, default=2, help="ftpd-load worker processes")
    p.add_argument("--source-addresses", default="", help="e.g. 127.0.0.1-127.0.0.8")
    p.add_argument("--out", default="bench/results.md", help="markdown table file")
    p.add_argument("--raw", default="", help="JSON file with every run's result")
    a = p.parse_args(argv)
    # --quick changes the defaults only: explicit options win.
    defaults = QUICK if a.quick else FULL
    for key, value in defaults.items():
        if getattr(a, key) is None:
            setattr(a, key, value)
    a.scenarios = [s.strip() for s in a.scenarios.split(",") if s.strip()]
    for name in a.scenarios:
        if name not in METRICS:
            p.error(f"unknown scenario {name!r}")
    sys.path.insert(0, str(REPO))
    from ftpd.load.options import parse_size

    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    load_start = os.getloadavg()[0]  # other work on the box makes the figures noisy: say so
    with tempfile.TemporaryDirectory(prefix="ftpd-compare-") as tmp:
        work = Path(tmp)
        big = work / BIG_FILE
        with big.open("wb") as f:
            block = os.urandom(1 << 20)
            for _ in range(parse_size(a.size) >> 20):
                f.write(block)
        for name in a.scenarios:
            for n in range(a.repeat):
                order = ("ftpd", "pyftpdlib") if n % 2 == 0 else ("pyftpdlib", "ftpd")
                for kind in order:
                    print(f"{name} run {n + 1}/{a.repeat}: {kind}", file=sys.stderr, flush=True)
                    r = run_one(kind, name, a, work, big, n)
                    results.setdefault((kind, name), []).append(r)
    load_end = os.getloadavg()[0]
    header = (
        f"ftpd vs pyftpdlib, ftpd-load on loopback, {os.cpu_count()} CPUs "
        f"(load average {load_start:.1f} at start, {load_end:.1f} at end), "
        f"{a.repeat} runs each, {a.duration:g} s per run, tool procs {a.procs}; "
        f"hold {a.hold}, mixed {a.mixed} (think {a.think:g} s), concurrency {a.concurrency}, "
        f"big file {a.size}.\n\n"
    )
    text = header + table(results, a) + "\n"
    print(text)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(text)
    if a.raw:
        raw = {f"{k}/{s}": v for (k, s), v in results.items()}
        Path(a.raw).write_text(json.dumps(raw, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
