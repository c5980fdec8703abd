"""Issue 23: after a burst of work, what the server keeps returns to the idle set.

A real server in this process (so that ``tracemalloc`` sees its heap); its clients in a child
process (so that theirs does not count): N sessions from N addresses log in and idle (snapshot
A), then each runs a burst (LIST, NLST, RETR of 2 MB, STOR of 300 KB, STAT, 20 pipelined NOOPs)
and idles again; after two sweeper passes, snapshot B. What B holds beyond A must not grow with
the sessions: no receive buffer is left in the spare list or pinned by an idle IO thread (before
the fix: ~230 KiB per session, every buffer of the burst), and no 64 KiB+ block allocated by the
burst is alive. Thread start-up objects of the IO pool (bounded by ``io_threads``) are left out.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import textwrap
import time
import tracemalloc
from pathlib import Path

from ftpd.config import Config
from ftpd.server import data
from ftpd.server.server import Server

N = 40
CLIENT = textwrap.dedent(
    """
    import ftplib, io, sys, threading
    port, n = int(sys.argv[1]), int(sys.argv[2])
    fs = []
    for i in range(n):
        f = ftplib.FTP(timeout=30)
        f.connect("127.0.0.1", port, source_address=(f"127.0.2.{1 + i}", 0))
        f.login("user", "pw")
        fs.append(f)
    print("idle", flush=True)
    sys.stdin.readline()
    errors = []
    def burst(f, i):
        try:
            f.voidcmd("TYPE I")
            f.retrlines("LIST", lambda line: None)
            f.nlst()
            f.retrbinary("RETR big.bin", lambda b: None)
            f.storbinary(f"STOR up{i}.bin", io.BytesIO(b"z" * 300_000))
            f.sendcmd("STAT")
            f.sock.sendall(b"NOOP\\r\\n" * 20)
            for _ in range(20):
                f.getresp()
        except Exception as exc:
            errors.append(repr(exc))
    ts = [threading.Thread(target=burst, args=(f, i)) for i, f in enumerate(fs)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    print("done " + ";".join(errors), flush=True)
    sys.stdin.readline()
    """
)


def _burst_only(stat: tracemalloc.StatisticDiff) -> bool:
    return not any(f.filename.endswith("threading.py") for f in stat.traceback)


async def test_burst_leaves_nothing_per_session(tmp_path: Path) -> None:
    root = tmp_path / "home"
    root.mkdir()
    for i in range(300):
        (root / f"a-file-with-a-longish-name-{i:04d}.txt").write_bytes(b"x" * i)
    (root / "big.bin").write_bytes(os.urandom(2_000_000))
    first = 65250 + (os.getpid() % 4) * 10
    cfg = Config(
        host="127.0.0.1",
        port=0,
        root=str(root),
        password="pw",
        max_per_ip=0,
        login_fail_delay=0,
        pasv_ports=f"{first}-{first + 9}",
        log_level="warning",
    )
    srv = Server(cfg, embedded=True)
    port = (await srv.start())[0][1]
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CLIENT,
        str(port),
        str(N),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        line = await asyncio.wait_for(child.stdout.readline(), 60)
        assert line == b"idle\n"
        gc.collect()
        tracemalloc.start(10)
        try:
            idle = tracemalloc.take_snapshot()
            child.stdin.write(b"go\n")
            line = await asyncio.wait_for(child.stdout.readline(), 120)
            assert line == b"done \n", line
            assert data.BUFFERS.out == 0
            for _ in range(2):  # the sweeper's passes after the burst
                await srv.sweep_once(time.monotonic())
            gc.collect()
            after = tracemalloc.take_snapshot()
        finally:
            tracemalloc.stop()
        assert data.BUFFERS.out == 0
        assert len(data._FREE_BUFFERS) == 0  # the spare buffers were freed
        diff = [s for s in after.compare_to(idle, "traceback") if _burst_only(s)]
        big = [s for s in diff if s.size_diff >= 64 * 1024]
        assert not big, "\n".join(f"{s}\n" + "\n".join(s.traceback.format()) for s in big)
        per_session = sum(s.size_diff for s in diff) / N
        assert per_session < 1024, f"{per_session:.0f} bytes kept per session after the burst"
        child.stdin.write(b"bye\n")
        await asyncio.wait_for(child.wait(), 30)
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
        await srv.shutdown(0)
