"""What ``fsync_uploads`` costs: STOR timings with it on and off, small and large files, on a real
disk and on tmpfs (where fsync does nothing, which isolates the cost of the extra calls).

For each (root directory, fsync on/off) a fresh ftpd process (this checkout) serves a fresh
directory; ``--clients`` ftplib sessions then upload ``--small-count`` files of ``--small-size``
bytes each, then every session uploads ``--large-count`` files of ``--large-size`` bytes. A STOR is
timed from the command to its 226, so the commit (and the syncs) are inside it. The machine's load
average is printed with the figures: on a shared machine they are noisy, so take them on a quiet
one.

    python bench/fsync_cost.py                               # /work's disk and /dev/shm, ~1 min
    python bench/fsync_cost.py --roots /srv/ftp --clients 8 --small-count 500
"""

from __future__ import annotations

import argparse
import ftplib
import io
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
USER, PASSWORD = "bench", "bench-pass"
PASV = "24000-24999"  # outside the ephemeral range and the test suite's ranges
READY = re.compile(r"^ftpd serving .* on (\S+):(\d+)$")


def start(root: Path, fsync: bool) -> tuple[subprocess.Popen[str], int]:
    argv = [
        sys.executable,
        "-m",
        "ftpd",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--root",
        str(root),
        "--user",
        USER,
        "--password",
        PASSWORD,
        "--pasv-ports",
        PASV,
        "--log-level",
        "warning",
        "--max-per-ip",
        "0",
        f"--fsync-uploads={'true' if fsync else 'false'}",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("FTPD_CONFIG", None)
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        m = READY.match(proc.stdout.readline().strip())
        if m:
            return proc, int(m.group(2))
    proc.kill()
    raise RuntimeError("ftpd did not start")


def uploads(port: int, tag: str, size: int, count: int, out: list[float]) -> None:
    data = os.urandom(size)
    ftp = ftplib.FTP(timeout=120)
    ftp.connect("127.0.0.1", port)
    ftp.login(USER, PASSWORD)
    ftp.voidcmd("TYPE I")
    for i in range(count):
        t0 = time.perf_counter()
        ftp.storbinary(f"STOR {tag}-{i}.bin", io.BytesIO(data), blocksize=1 << 20)
        out.append(time.perf_counter() - t0)
    ftp.quit()


def run(port: int, kind: str, size: int, count: int, clients: int) -> tuple[list[float], float]:
    times: list[float] = []
    threads = [
        threading.Thread(target=uploads, args=(port, f"{kind}{c}", size, count, times))
        for c in range(clients)
    ]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return times, time.perf_counter() - t0


def fs_type(path: Path) -> str:
    try:
        out = subprocess.run(
            ["stat", "-f", "-c", "%T", str(path)], capture_output=True, text=True, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def size_arg(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    t = text.strip().upper()
    return int(float(t[:-1]) * units[t[-1]]) if t[-1:] in units else int(t)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--roots",
        default=f"{REPO},/dev/shm",
        help="comma-separated directories to serve from (a temp dir is made in each)",
    )
    ap.add_argument("--clients", type=int, default=4, help="concurrent sessions")
    ap.add_argument("--small-size", type=size_arg, default=4096)
    ap.add_argument("--small-count", type=int, default=100, help="per session")
    ap.add_argument("--large-size", type=size_arg, default=64 << 20)
    ap.add_argument("--large-count", type=int, default=2, help="per session")
    a = ap.parse_args()
    print(
        f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; "
        f"{a.clients} sessions; small {a.small_count} x {a.small_size} B per session, "
        f"large {a.large_count} x {a.large_size >> 20} MiB per session\n"
    )
    print("| root (fs) | fsync | small: median ms | p90 ms | files/s | large: median s | MB/s |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for root in a.roots.split(","):
        for fsync in (False, True):
            d = Path(tempfile.mkdtemp(prefix="ftpd-fsync-", dir=root))
            proc, port = start(d, fsync)
            try:
                small, wall_s = run(port, "s", a.small_size, a.small_count, a.clients)
                large, wall_l = run(port, "l", a.large_size, a.large_count, a.clients)
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)
                shutil.rmtree(d, ignore_errors=True)
            q = statistics.quantiles(small, n=10)
            mbs = a.large_size * len(large) / wall_l / 1e6
            print(
                f"| {root} ({fs_type(Path(root))}) | {'on' if fsync else 'off'} "
                f"| {statistics.median(small) * 1e3:.2f} | {q[-1] * 1e3:.2f} "
                f"| {len(small) / wall_s:.0f} | {statistics.median(large):.2f} | {mbs:.0f} |"
            )
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
