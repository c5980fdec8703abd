"""Profile a server under one ftpd-load scenario: where its CPU goes, per thread and per frame.

Starts a fresh server (as bench/compare.py does: tmpfs root, same flags), starts ftpd-load with the
given arguments against it, waits ``--warmup`` seconds, then for ``--seconds`` samples the server:

- CPU per thread from /proc/PID/task/*/stat (user and system ticks): how much goes to the event
  loop's thread and how much to executor threads (file IO hops, their wake-ups and GIL hand-offs);
- ``py-spy record -f raw`` (Python frames; uvloop's C code and the kernel show as the frame that
  called into them, e.g. ``serve``), aggregated by bench/pyspy_top.py;
- with ``--perf``, ``perf record`` by shared object (kernel vs libpython vs uvloop vs libc);
- with ``--cpu``, bench/cpu_sampler.py instead of py-spy: samples taken on CPU time (SIGPROF), not
  wall time. py-spy counts a loop idle in ``epoll_wait`` or preempted after a ``write`` woke the
  client as busy in the frame it stopped in, so its shares are not CPU shares; these are.

    python bench/profile.py --server ftpd -- small -c 20 --procs 2 --duration 25
    python bench/profile.py --server pyftpdlib --perf -- logins -c 20 --procs 2 --duration 25
    python bench/profile.py --cpu --server ftpd --warmup 30 --seconds 25 -- mixed 10000 ...
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from cases import FLOOR, FTPD, PYFTPDLIB, Case, Variant  # noqa: E402
from compare import PASSWORD, USER, Server, free_port, server_command  # noqa: E402
from pyspy_top import parse, top  # noqa: E402


def threads(pid: int) -> dict[str, tuple[str, int, int]]:
    """(group, user ticks, system ticks) per thread of ``pid`` and of its child processes."""
    out = {}
    pids = [pid] + [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    for proc in pids:
        for task in Path(f"/proc/{proc}/task").iterdir():
            try:
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if task.name == str(proc):
                group = "main thread (event loop)"
            else:
                group = "other threads (executors)"
            out[task.name] = (group, int(fields[11]), int(fields[12]))
    return out


def cpu_split(
    before: dict[str, tuple[str, int, int]], after: dict[str, tuple[str, int, int]]
) -> str:
    """Ticks per thread group between two samples."""
    groups: dict[str, list[int]] = {}
    for key, (group, u, s) in after.items():
        _, u0, s0 = before.get(key, (group, 0, 0))
        g = groups.setdefault(group, [0, 0, 0])
        g[0] += u - u0
        g[1] += s - s0
        g[2] += 1 if (u - u0) + (s - s0) > 0 else 0
    total = sum(g[0] + g[1] for g in groups.values()) or 1
    lines = [f"CPU ticks ({os.sysconf('SC_CLK_TCK')}/s) by thread group, user + system:"]
    for name, (u, s, busy) in sorted(groups.items(), key=lambda kv: -(kv[1][0] + kv[1][1])):
        lines.append(
            f"  {name:30} {u:6} + {s:6}  ({100 * (u + s) / total:5.1f}%, {busy} thread(s) busy)"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the scenario, profile the server, print the findings."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--server", choices=("ftpd", "pyftpdlib", "floor"), default="ftpd")
    p.add_argument("--flags", default="", help="extra ftpd flags, e.g. '--workers 2'")
    p.add_argument("--log-level", default="warning")
    p.add_argument("--warmup", type=float, default=5.0)
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--perf", action="store_true", help="also perf record (by shared object)")
    p.add_argument("--raw", default="", help="keep the py-spy raw profile here")
    p.add_argument(
        "--cpu",
        action="store_true",
        help="sample CPU time (bench/cpu_sampler.py, SIGPROF) instead of py-spy's wall time",
    )
    p.add_argument("--rate", type=int, default=100, help="py-spy samples per second")
    p.add_argument("load", nargs=argparse.REMAINDER, help="-- then ftpd-load's arguments")
    a = p.parse_args(argv)
    load = a.load[1:] if a.load[:1] == ["--"] else a.load
    if not load:
        p.error("give ftpd-load's arguments after --")
    variant = {"ftpd": FTPD, "pyftpdlib": PYFTPDLIB, "floor": FLOOR}[a.server]
    if a.flags:
        variant = Variant(variant.name, variant.kind, tuple(a.flags.split()))
    case = Case("profile", "profile", tuple(load), (), log_level=a.log_level)
    with tempfile.TemporaryDirectory(prefix="ftpd-profile-", dir="/dev/shm") as tmp:
        work = Path(tmp)
        root = work / "root"
        root.mkdir()
        port = free_port()
        cmd = server_command(variant, case, port, root, None)
        if a.cpu:
            # The sampler's window starts with the server; the load starts about a second later.
            sampler = [str(HERE / "cpu_sampler.py"), "--out", str(work / "pyspy.txt")]
            sampler += ["--start", str(a.warmup + 1), "--seconds", str(a.seconds), "--"]
            cmd = [cmd[0], *sampler, *cmd[1:]]
        server = Server(cmd, port, work / "server.log", 2 if "--workers" in a.flags else 1)
        pid = server.proc.pid
        out = work / "result.json"
        lcmd = [sys.executable, "-m", "ftpd.load", *load, "--port", str(port), "--user", USER]
        lcmd += ["--password", PASSWORD, "--server-pid", str(pid), "--json", str(out)]
        lcmd += ["--progress", "none"]
        loader = subprocess.Popen(lcmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            time.sleep(a.warmup)
            t0 = threads(pid)
            raw = work / "pyspy.txt"
            spy = ["py-spy", "record", "-p", str(pid), "-f", "raw", "-o", str(raw)]
            spy += ["-d", str(int(a.seconds)), "-t", "--nonblocking", "-r", str(a.rate)]
            if "--workers" in a.flags:
                spy.append("--subprocesses")
            perf = None
            if a.perf and shutil.which("perf"):
                perf = subprocess.Popen(
                    ["perf", "record", "-F", "499", "-p", str(pid), "-o", str(work / "perf.data")]
                    + ["--", "sleep", str(a.seconds)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            if a.cpu:
                time.sleep(a.seconds + 2)  # the sampler writes its file when its window ends
            else:
                subprocess.run(spy, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
            if perf is not None:
                perf.wait()
            t1 = threads(pid)
            loader.wait(timeout=600)
        finally:
            if loader.poll() is None:
                loader.kill()
            server.stop()
        if out.exists():
            r = json.loads(out.read_text())
            srv = r.get("server") or {}
            print(
                f"ftpd-load {' '.join(load)}: ops/s {r['rates'].get('ops_per_s')}, "
                f"errors {r['errors_total']}, server CPU µs/op {srv.get('cpu_us_per_op')}"
            )
        print(cpu_split(t0, t1))
        if perf is not None:
            rep = subprocess.run(
                ["perf", "report", "-i", str(work / "perf.data"), "--no-children", "-g", "none"]
                + ["--sort", "dso", "--stdio"],
                capture_output=True,
                text=True,
                check=False,
            )
            print("perf, share of samples by shared object:")
            for line in rep.stdout.splitlines():
                if line.strip() and not line.startswith("#"):
                    print("  " + line.strip())
        if raw.exists():
            if a.raw:
                shutil.copy(raw, a.raw)
            print(top(parse(raw), a.top, by_function=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
