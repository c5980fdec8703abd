"""Does one huge listing stall the other sessions? (issue 16 item 5)

Creates a directory of ``--entries`` (200,000) empty files, starts ftpd (or pyftpdlib with
``--server pyftpdlib``), and while one client lists it (``--verb`` MLSD, LIST or NLST, or
``STAT`` over the control connection) ``--rounds`` times, another logged-in session sends NOOPs
back to back and records each round trip. Also records the server's peak PSS.

    python bench/listing_stall.py --entries 200000 --rounds 3
    python bench/listing_stall.py --server pyftpdlib --entries 200000

Prints one JSON object: NOOP round trips (count, p50/p99/max ms) during the listings, listing
seconds, bytes, and the server's PSS before/peak (KiB). The target: NOOP p99 under 20 ms.
Take figures on a quiet machine; on a shared one they only show that the script works.
"""

from __future__ import annotations

import argparse
import ftplib
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from compare import Server, free_port  # noqa: E402

USER, PASSWORD = "bench", "bench-pw"


def pss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/smaps_rollup") as fh:
        for line in fh:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def make_tree(root: Path, entries: int) -> None:
    big = root / "big"
    big.mkdir()
    for i in range(entries):
        os.mknod(big / f"entry-{i:07d}.dat")


def command(kind: str, port: int, root: Path) -> list[str]:
    if kind == "pyftpdlib":
        return [sys.executable, str(HERE / "pyftpdlib_server.py"), "--host", "127.0.0.1",
                "--port", str(port), "--root", str(root), "--user", USER, "--password", PASSWORD,
                "--pasv-ports", "64600-64699"]
    return [sys.executable, "-m", "ftpd", "--host", "127.0.0.1", "--port", str(port),
            "--root", str(root), "--user", USER, "--password", PASSWORD, "--max-per-ip", "0",
            "--pasv-ports", "64600-64699", "--log-level", "warning"]


def lister(port: int, verb: str, rounds: int, out: dict[str, float]) -> None:
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", port, timeout=300)
    ftp.login(USER, PASSWORD)
    sizes: list[int] = []
    t0 = time.perf_counter()
    for _ in range(rounds):
        if verb == "STAT":
            sizes.append(len(ftp.sendcmd("STAT big")))
            continue
        ftp.retrlines(f"{verb} big", lambda line: sizes.append(len(line) + 2))
    total = sum(sizes)
    out["listing_seconds"] = round((time.perf_counter() - t0) / rounds, 3)
    out["bytes_per_listing"] = total // rounds
    ftp.quit()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--entries", type=int, default=200_000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--verb", default="MLSD", choices=["MLSD", "LIST", "NLST", "STAT"])
    p.add_argument("--server", default="ftpd", choices=["ftpd", "pyftpdlib"])
    p.add_argument("--dir", default="", help="where to build the tree (default: a temp dir)")
    a = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="listing-stall-", dir=a.dir or None))
    try:
        root = work / "home"
        root.mkdir()
        t0 = time.monotonic()
        make_tree(root, a.entries)
        built = time.monotonic() - t0
        port = free_port()
        srv = Server(command(a.server, port, root), port, work / "server.log", 1)
        try:
            noop = ftplib.FTP()
            noop.connect("127.0.0.1", port, timeout=60)
            noop.login(USER, PASSWORD)
            before = pss_kib(srv.proc.pid)
            result: dict[str, float] = {}
            t = threading.Thread(target=lister, args=(port, a.verb, a.rounds, result))
            t.start()
            rtts: list[float] = []
            peak = before
            while t.is_alive():
                s = time.perf_counter()
                noop.voidcmd("NOOP")
                rtts.append((time.perf_counter() - s) * 1000)
                if len(rtts) % 50 == 0:
                    peak = max(peak, pss_kib(srv.proc.pid))
            t.join()
            noop.quit()
            rtts.sort()
            report = {
                "server": a.server, "verb": a.verb, "entries": a.entries, "rounds": a.rounds,
                "tree_build_seconds": round(built, 1), "noops": len(rtts),
                "noop_p50_ms": round(statistics.median(rtts), 2) if rtts else None,
                "noop_p99_ms": round(rtts[int(len(rtts) * 0.99)], 2) if rtts else None,
                "noop_max_ms": round(rtts[-1], 2) if rtts else None,
                "pss_before_kib": before, "pss_peak_kib": peak, **result,
            }
        finally:
            srv.stop()
        print(json.dumps(report))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
