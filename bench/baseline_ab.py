"""ftpd at an earlier revision against this checkout, on one ``ftpd-load`` scenario, alternately.

Issue 18 asks that small transfers and logins cost "no worse than today", today being the code of
the day it was filed (9ba10eb). Its figures came from an older harness (pyftpdlib measured 292 µs
per login then, ~173 now), so the ratios cannot be compared across harnesses: this runs both
trees with today's load tool, side by side. The old tree comes from ``git archive REV`` into a
temporary directory; each run starts a fresh server (single user, a tmpfs root) and the trees
alternate, which old first, so that the machine's drift hits both.

    python3 bench/baseline_ab.py --rev 9ba10eb --repeat 3 -- logins -c 20 --procs 2 --duration 10
    python3 bench/baseline_ab.py --rev 9ba10eb --repeat 3 -- small -c 20 --procs 2 --duration 10
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("the server did not listen within 15 s")


def run_once(tree: Path, load: list[str], work: Path) -> float:
    """Server CPU µs per operation of one fresh server from ``tree`` under ``load``."""
    root = Path(tempfile.mkdtemp(prefix="ab-root-", dir="/dev/shm"))
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(tree))
    env.pop("FTPD_CONFIG", None)
    cmd = [sys.executable, "-m", "ftpd", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--root", str(root), "--user", "bench", "--password", "bench-pass"]
    cmd += ["--max-per-ip", "0", "--max-sessions", "0", "--pasv-ports", "20000-20999"]
    cmd += ["--log-level", "warning"]
    server = subprocess.Popen(cmd, cwd=tree, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    out = work / "result.json"
    try:
        _wait_listening(port, server)
        time.sleep(0.3)
        lcmd = [sys.executable, "-m", "ftpd.load", *load, "--port", str(port), "--user", "bench",
                "--password", "bench-pass", "--server-pid", str(server.pid), "--json", str(out),
                "--progress", "none"]
        subprocess.run(lcmd, cwd=REPO, check=True, capture_output=True, timeout=600)
    finally:
        server.terminate()
        server.wait(10)
        subprocess.run(["rm", "-rf", str(root)], check=False)
    result = json.loads(out.read_text())
    if result["errors_total"]:
        raise SystemExit(f"{result['errors_total']} errors: {result.get('error_texts')}")
    return float(result["server"]["cpu_us_per_op"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rev", required=True, help="the earlier revision (git)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("load", nargs=argparse.REMAINDER, help="-- then the ftpd-load scenario")
    a = ap.parse_args()
    load = a.load[1:] if a.load[:1] == ["--"] else a.load
    with tempfile.TemporaryDirectory(prefix="ab-") as tmp:
        work = Path(tmp)
        old = work / "old"
        old.mkdir()
        archive = subprocess.run(["git", "archive", a.rev], cwd=REPO, check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
        trees = {a.rev: old, "this checkout": REPO}
        got: dict[str, list[float]] = {name: [] for name in trees}
        for i in range(a.repeat):
            order = list(trees) if i % 2 == 0 else list(reversed(trees))
            for name in order:
                got[name].append(run_once(trees[name], load, work))
                print(f"run {i + 1}: {name}: {got[name][-1]:.1f} µs", flush=True)
                time.sleep(2)
    for name, values in got.items():
        print(f"{name}: server CPU µs per op, median {statistics.median(values):.1f} "
              f"({min(values):.1f}-{max(values):.1f}) over {len(values)} runs")


if __name__ == "__main__":
    main()
