"""What one trip to a thread and back costs: ``run_in_executor`` against ``ftpd.fs.iopool.IoPool``.

Each job is what a small RETR's open does (walk two directories with O_NOFOLLOW, open, fstat,
close); ``conc`` coroutines each run ``n`` jobs on one uvloop loop, and the process's CPU time
(all threads) is divided by the jobs done. ``inline`` runs the job on the loop itself: the
difference to it is the hop.

    python bench/hop.py --modes inline,tpe,iopool --conc 1,20 --n 2000 --reps 5

Prints the minimum and median µs of CPU per job over the repetitions (each a fresh process).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

D = ""


def job(i: int) -> int:
    dfd = os.open(D, os.O_RDONLY | os.O_DIRECTORY)
    a = os.open("a", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dfd)
    os.close(dfd)
    b = os.open("b", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=a)
    os.close(a)
    fd = os.open(f"f{i % 20}", os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=b)
    os.close(b)
    size = os.fstat(fd).st_size
    os.close(fd)
    return size


async def run(mode: str, threads: int, conc: int, n: int) -> float:
    from ftpd.fs.iopool import IoPool

    loop = asyncio.get_running_loop()
    if mode == "tpe":
        ex = concurrent.futures.ThreadPoolExecutor(threads)

        def call(i: int) -> asyncio.Future[int]:
            return loop.run_in_executor(ex, job, i)
    elif mode == "iopool":
        pool = IoPool(threads)

        def call(i: int) -> asyncio.Future[int]:
            return pool.submit(job, i)

    async def worker() -> None:
        for i in range(n):
            if mode == "inline":
                job(i)
            else:
                await call(i)
            await asyncio.sleep(0)

    t0 = time.process_time()
    await asyncio.gather(*(worker() for _ in range(conc)))
    return (time.process_time() - t0) / (conc * n) * 1e6


def one(mode: str, threads: int, conc: int, n: int, tmp: str) -> float:
    out = subprocess.run(
        [sys.executable, __file__, "_one", mode, str(threads), str(conc), str(n), tmp],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return float(out.stdout.strip())


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_one":
        global D
        mode, threads, conc, n, D = (
            sys.argv[2],
            int(sys.argv[3]),
            int(sys.argv[4]),
            int(sys.argv[5]),
            sys.argv[6],
        )
        import uvloop

        print(uvloop.run(run(mode, threads, conc, n)))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modes", default="inline,tpe,iopool")
    ap.add_argument("--threads", type=int, default=32, help="pool size (tpe, iopool)")
    ap.add_argument("--conc", default="1,20")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(dir=base) as tmp:
        os.makedirs(f"{tmp}/a/b")
        for i in range(20):
            Path(f"{tmp}/a/b/f{i}").write_bytes(b"x" * 4096)
        print("| mode | threads | concurrent | µs CPU per job, min | median |")
        print("|---|---|---|---|---|")
        for conc in (int(c) for c in args.conc.split(",")):
            for mode in args.modes.split(","):
                threads = 0 if mode == "inline" else args.threads
                runs = [one(mode, threads, conc, args.n, tmp) for _ in range(args.reps)]
                print(
                    f"| {mode} | {threads} | {conc} | {min(runs):.1f} | "
                    f"{statistics.median(runs):.1f} |"
                )


if __name__ == "__main__":
    main()
