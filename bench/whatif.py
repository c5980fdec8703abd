"""Size a suggested server change before making it: ftpd with runtime patches, A/B against ftpd.

NOT for production. The patches below are quick prototypes of the changes docs/PERFORMANCE.md
suggests, applied at start-up by monkeypatching, only to measure what each would save:

- ``bufs``: ``receive_upload`` takes its two 256 KiB receive buffers from a ring of 512 buffers
  allocated once. (Applied since, as a bounded free list in data.py: the patch now changes only
  where fresh buffers come from.)
- ``inline``: the local filesystem's blocking calls run on the event loop's thread instead of one
  hop to the ``IoPool`` each (``IoPool.submit`` returns a future already done): what the hop that
  remains still costs.
- ``splice``: the bulk-upload thread moves bytes socket -> pipe -> file with ``splice(2)`` instead
  of ``recv_into`` + ``write``.
- ``noatomic`` and ``info`` are server flags (``--atomic-uploads false``, ``--log-level info``).

    python bench/whatif.py ab --variants /bufs/inline/bufs,inline --repeat 3 \\
        -- small -c 20 --procs 2 --duration 10 --mix retr=0,stor=1
    WHATIF=bufs,inline python bench/whatif.py serve --root /dev/shm/x --port 2121 ...

``ab`` starts a fresh patched server per run (tmpfs root, the flags bench/compare.py gives
ftpd), alternates the variants, and prints the median server CPU µs per operation of each.
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
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def apply(what: set[str]) -> None:
    """Monkeypatch the imported server modules (see the module docstring)."""
    import ftpd.server.data as data

    if "bufs" in what:
        ring = [bytearray(data.RECV_BUF) for _ in range(512)]
        state = [0]
        real = bytearray

        def pooled(n: Any = 0, *rest: Any) -> bytearray:
            if n == data.RECV_BUF and not rest:
                state[0] = (state[0] + 1) % len(ring)
                return ring[state[0]]
            return real(n, *rest)

        data.bytearray = pooled  # type: ignore[attr-defined]
    if "inline" in what:
        import asyncio

        from ftpd.fs.iopool import IoPool

        def submit_inline(self: Any, fn: Any, *args: Any, dispose: Any = None) -> Any:
            fut = asyncio.get_running_loop().create_future()
            try:
                fut.set_result(fn(*args))
            except Exception as exc:  # noqa: BLE001 - handed to the awaiting handler
                fut.set_exception(exc)
            return fut

        IoPool.submit = submit_inline  # type: ignore[method-assign]
    if "splice" in what:
        import fcntl

        def bulk_splice(sock: socket.socket, write: Any, progress: Any) -> None:
            writer = write.__self__
            r, w = os.pipe()
            try:
                fcntl.fcntl(w, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
            except OSError:
                pass
            try:
                with writer._lock:
                    while n := os.splice(sock.fileno(), w, 1 << 20):
                        progress(n)
                        while n:
                            n -= os.splice(r, writer._fd, n)
            finally:
                os.close(r)
                os.close(w)

        data._bulk_receive = bulk_splice  # type: ignore[assignment]


def serve(argv: list[str]) -> int:
    """Run ftpd's command line with the patches named in $WHATIF."""
    sys.path.insert(0, str(REPO))
    apply(set(filter(None, os.environ.get("WHATIF", "").split(","))))
    from ftpd.cli import main

    return main(argv)


def ab(variants: list[str], load: list[str], repeat: int) -> int:
    """Alternate fresh servers of each variant under ``load``; print medians."""
    results: dict[str, list[dict[str, Any]]] = {}
    for n in range(repeat):
        for v in variants if n % 2 == 0 else variants[::-1]:
            flags = set(filter(None, v.split(",")))
            with tempfile.TemporaryDirectory(prefix="ftpd-whatif-", dir="/dev/shm") as tmp:
                with socket.socket() as s:
                    s.bind(("127.0.0.1", 0))
                    port = s.getsockname()[1]
                cmd = [
                    sys.executable,
                    __file__,
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                ]
                cmd += ["--root", tmp, "--user", "u", "--password", "p", "--max-per-ip", "0"]
                cmd += ["--max-sessions", "0", "--pasv-ports", "61000-61999", "--log-level"]
                cmd += ["info" if "info" in flags else "warning"]
                if "noatomic" in flags:
                    cmd += ["--atomic-uploads", "false"]
                env = dict(os.environ, WHATIF=",".join(flags - {"info", "noatomic"}))
                server = subprocess.Popen(
                    cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
                time.sleep(1.5)
                out = Path(tmp) / "result.json"
                load1 = os.getloadavg()[0]
                try:
                    subprocess.run(
                        [sys.executable, "-m", "ftpd.load", *load, "--port", str(port)]
                        + ["--user", "u", "--password", "p", "--server-pid", str(server.pid)]
                        + ["--json", str(out), "--progress", "none"],
                        cwd=REPO,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                        timeout=1800,
                    )
                finally:
                    server.terminate()
                    server.wait(30)
                r = json.loads(out.read_text())
                r["load1"] = load1
                results.setdefault(v or "baseline", []).append(r)
                srv = r["server"]
                print(
                    f"{v or 'baseline':24} run {n + 1}: CPU µs/op {srv['cpu_us_per_op']}, "
                    f"ops/s {r['rates']['ops_per_s']}, errors {r['errors_total']}, "
                    f"p99 ms {r['primary_latency']['p99']}, alive {r['sessions']['alive_at_end']}, "
                    f"KiB/session end {srv.get('per_session_kib_end')}, load {load1:.1f}",
                    flush=True,
                )
    print()
    for v, runs in results.items():
        cpu = [r["server"]["cpu_us_per_op"] for r in runs]
        print(
            f"{v:24} median CPU µs/op {statistics.median(cpu):.0f} ({min(cpu):.0f}-{max(cpu):.0f})"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    """``serve ...`` or ``ab --variants A/B -- LOAD...``."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["serve"]:
        return serve(args[1:])
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    a_p = sub.add_parser("ab", help="A/B variants under one ftpd-load command")
    a_p.add_argument("--variants", required=True, help="'/'-separated; '' is the baseline")
    a_p.add_argument("--repeat", type=int, default=3)
    a_p.add_argument("load", nargs=argparse.REMAINDER, help="-- then ftpd-load's arguments")
    sub.add_parser("serve", help="ftpd's command line, patched per $WHATIF")
    a = p.parse_args(args)
    load = a.load[1:] if a.load[:1] == ["--"] else a.load
    return ab(a.variants.split("/"), load, a.repeat)


if __name__ == "__main__":
    sys.exit(main())
