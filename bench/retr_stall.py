"""Does one big download stall the other sessions? (issue 18, the IO model)

While one client downloads ``--file`` (RETR, binary, received with ``splice(2)`` into /dev/null
so the client is not the bottleneck), another logged-in session sends a NOOP every
``--noop-interval`` seconds and records each round trip. ``--cold`` first writes back and drops
the page cache (``sync; echo 3 > /proc/sys/vm/drop_caches``: needs root), so the server reads the
file from the disk during the download; ``--warm`` downloads it once, untimed, so that it is in
the page cache. Any FTP server: bench/compare.py runs it against ftpd and pyftpdlib side by side
(cases ``retr-stall-cold`` and ``retr-stall-cached``, roots on a real disk).

    python bench/retr_stall.py --port 2121 --user u --password p --file /big.bin --cold --json -

The JSON has the shape of ftpd-load's (``latency.noop``, ``rates.mb_per_s``, ``server``,
``errors_total``), so compare.py reads it with the same metric readers. Figures taken while other
work shares the machine only show that the tool works.
"""

from __future__ import annotations

import argparse
import ftplib
import json
import multiprocessing
import os
import sys
import time
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ftpd.load.procstat import sample  # noqa: E402

SPLICE_CHUNK = 1 << 20


def drop_caches() -> None:
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def download(
    host: str, port: int, user: str, password: str, path: str, out: dict[str, Any]
) -> None:
    """RETR ``path`` into /dev/null with splice; records bytes and seconds (or the error)."""
    try:
        ftp = ftplib.FTP()
        ftp.connect(host, port, timeout=600)
        ftp.login(user, password)
        ftp.voidcmd("TYPE I")
        t0 = time.perf_counter()
        conn = ftp.transfercmd(f"RETR {path}")
        conn.settimeout(None)  # blocking: splice then waits in the kernel (GIL released)
        r, w = os.pipe()
        null = os.open(os.devnull, os.O_WRONLY)
        total = 0
        try:
            fd = conn.fileno()
            while True:
                n = os.splice(fd, w, SPLICE_CHUNK)
                if n == 0:
                    break
                total += n
                while n:
                    n -= os.splice(r, null, n)
        finally:
            conn.close()
            for f in (r, w, null):
                os.close(f)
        ftp.voidresp()
        out["seconds"] = time.perf_counter() - t0
        out["bytes"] = total
        ftp.quit()
    except (OSError, ftplib.Error) as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"


def _download_child(
    host: str, port: int, user: str, password: str, path: str, send: Connection
) -> None:
    out: dict[str, Any] = {}
    download(host, port, user, password, path, out)
    send.send(out)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--file", default="/big.bin", help="the file to download (server path)")
    p.add_argument("--cold", action="store_true", help="drop the page cache first (root)")
    p.add_argument("--warm", action="store_true", help="download once, untimed, first")
    p.add_argument("--noop-interval", type=float, default=0.005, help="seconds between NOOPs")
    p.add_argument("--server-pid", type=int, default=0, help="sample this server's CPU")
    p.add_argument("--json", default="-", help="write the result here ('-': stdout)")
    p.add_argument("--progress", default="none", help="accepted for ftpd-load compatibility")
    a = p.parse_args(argv)

    errors: dict[str, int] = {}
    if a.warm:
        warm: dict[str, Any] = {}
        download(a.host, a.port, a.user, a.password, a.file, warm)
        if "error" in warm:
            errors["warm"] = 1
    if a.cold:
        drop_caches()
    noop = ftplib.FTP()
    noop.connect(a.host, a.port, timeout=60)
    noop.login(a.user, a.password)
    cpu0 = sample(a.server_pid).cpu_seconds if a.server_pid else None
    started = datetime.now(UTC).isoformat()
    result: dict[str, Any] = {}
    # The download runs in a child process, not a thread: a thread would share this process's
    # GIL, and its splice loop (a GIL release and re-take per call) keeps the GIL from the NOOP
    # thread until the 5 ms switch interval forces a hand-off; every NOOP then measured ~5 ms
    # whatever the server did (p50 4.9 ms against ftpd and pyftpdlib alike).
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(
        target=_download_child, args=(a.host, a.port, a.user, a.password, a.file, send),
        daemon=True,
    )
    child.start()
    send.close()
    rtts: list[float] = []
    deadline = time.monotonic() + 600
    while not receive.poll() and child.is_alive() and time.monotonic() < deadline:
        s = time.perf_counter()
        try:
            noop.voidcmd("NOOP")
        except (OSError, ftplib.Error):
            errors["noop"] = errors.get("noop", 0) + 1
            break
        rtts.append((time.perf_counter() - s) * 1000)
        time.sleep(a.noop_interval)
    if receive.poll(max(0.0, deadline - time.monotonic())):
        result.update(receive.recv())
    else:
        result["error"] = f"the download process ended without a result (exit {child.exitcode})"
    child.join(5)
    if child.is_alive():
        child.kill()
    cpu1 = sample(a.server_pid).cpu_seconds if a.server_pid else None
    try:
        noop.quit()
    except (OSError, ftplib.Error):
        pass
    if "error" in result:
        errors["retr"] = 1
    seconds = result.get("seconds") or 0.0
    nbytes = result.get("bytes", 0)
    report = {
        "scenario": "retr-stall",
        "started": started,
        "ended": datetime.now(UTC).isoformat(),
        "cold": a.cold,
        "file": a.file,
        "errors_total": sum(errors.values()),
        "errors": errors,
        "error_detail": result.get("error", ""),
        "latency": {
            "noop": {
                "count": len(rtts),
                "p50": percentile(rtts, 0.5),
                "p99": percentile(rtts, 0.99),
                "max": max(rtts) if rtts else None,
            }
        },
        "rates": {"mb_per_s": nbytes / seconds / 1e6 if seconds else None},
        "bytes": nbytes,
        "seconds": seconds,
        "server": {
            "cpu_ms_per_retr": (cpu1 - cpu0) * 1000
            if cpu0 is not None and cpu1 is not None
            else None
        },
    }
    text = json.dumps(report, indent=1)
    if a.json == "-":
        print(text)
    else:
        Path(a.json).write_text(text)
    return 0 if not errors else 1


if __name__ == "__main__":
    raise SystemExit(main())
