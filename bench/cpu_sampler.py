"""Run a Python server under a CPU-time sampler: where its CPU goes, not where its time goes.

py-spy samples wall-clock time: a thread that is runnable but preempted (on this 2-vCPU machine a
loopback ``write`` wakes the client, which often takes the CPU) or idle in ``epoll_wait`` is
counted as busy in the frame it stopped in, so its shares are not CPU shares (docs/PERFORMANCE.md,
"sixth round"). This sampler uses ``ITIMER_PROF``, which only counts while the process is on a CPU
(user + system): each ``SIGPROF`` records the Python stack of the main thread. A native call (a
syscall, uvloop's C code) is charged to the Python frame that made it, since the handler runs at
that frame's next bytecode; uvloop's own work between callbacks lands on the callback it calls next.

It writes py-spy's raw format (``frame;frame;... count``), so ``bench/pyspy_top.py`` reads it:

    python bench/cpu_sampler.py --out prof.txt --start 30 --seconds 25 -- -m ftpd --port 2121 ...
    python bench/cpu_sampler.py --out prof.txt -- bench/floor_server.py --port 2199
"""

from __future__ import annotations

import argparse
import os
import runpy
import signal
import sys
import threading
import time
from collections import Counter
from types import FrameType

INTERVAL = 0.001  # seconds of CPU between samples


class Sampler:
    """Counts the main thread's stacks at each SIGPROF while armed."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.armed = False

    def handler(self, _signum: int, frame: FrameType | None) -> None:
        if not self.armed:
            return
        names = []
        while frame is not None:
            code = frame.f_code
            path = code.co_filename
            short = path.rsplit("/", 2)
            names.append(f"{code.co_name} ({'/'.join(short[-2:])}:{code.co_firstlineno})")
            frame = frame.f_back
        names.append("thread (0x1): MainThread")
        self.counts[";".join(reversed(names))] += 1

    def window(self, start: float, seconds: float, out: str) -> None:
        time.sleep(start)
        self.armed = True
        signal.setitimer(signal.ITIMER_PROF, INTERVAL, INTERVAL)
        time.sleep(seconds)
        signal.setitimer(signal.ITIMER_PROF, 0, 0)
        self.armed = False
        counts = dict(self.counts)  # one C call under the GIL: a consistent copy
        with open(out, "w") as f:
            for stack, n in counts.items():
                f.write(f"{stack} {n}\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", required=True, help="where the raw profile goes")
    p.add_argument("--start", type=float, default=0.0, help="seconds before sampling starts")
    p.add_argument("--seconds", type=float, default=3600.0, help="seconds of sampling")
    p.add_argument("target", nargs=argparse.REMAINDER, help="-- then -m MODULE ARGS or SCRIPT ARGS")
    a = p.parse_args()
    target = a.target[1:] if a.target[:1] == ["--"] else a.target
    if not target:
        p.error("give the program after --")
    sampler = Sampler()
    signal.signal(signal.SIGPROF, sampler.handler)
    args = (a.start, a.seconds, a.out)
    threading.Thread(target=sampler.window, args=args, daemon=True).start()
    if target[0] == "-m":
        sys.argv = [target[1], *target[2:]]
        runpy.run_module(target[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = list(target)
        sys.path.insert(0, os.path.dirname(os.path.abspath(target[0])))
        runpy.run_path(target[0], run_name="__main__")


if __name__ == "__main__":
    main()
