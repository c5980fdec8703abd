"""Samples a server's memory, CPU time and open fds from /proc (Linux), over its process tree.

Memory is PSS (proportional set size) from ``/proc/<pid>/smaps_rollup``: unlike RSS it does not
count pages shared between a pre-forked server's workers once per worker, so summing it over the
tree gives the tree's real footprint. CPU is ``utime + stime`` of every live process in the tree
(fields 14 and 15 of ``/proc/<pid>/stat``, in clock ticks), so a worker that exits during the run
loses its share; the resolution is one tick (usually 10 ms), fine over thousands of operations.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True, slots=True)
class ServerSample:
    """One reading of a server process tree."""

    pids: tuple[int, ...]
    pss_kib: int
    rss_kib: int
    cpu_seconds: float
    fds: int


def _ppid_and_cpu(pid: int) -> tuple[int, int] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    rest = data[data.rfind(b")") + 2 :].split()
    # rest[0] is field 3 (state); ppid is field 4, utime/stime fields 14/15.
    return int(rest[1]), int(rest[11]) + int(rest[12])


def process_tree(root: int) -> list[int]:
    """``root`` and all its live descendants."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        info = _ppid_and_cpu(int(name))
        if info is not None:
            children.setdefault(info[0], []).append(int(name))
    tree = [root]
    i = 0
    while i < len(tree):
        tree.extend(children.get(tree[i], ()))
        i += 1
    return tree


def _memory_kib(pid: int) -> tuple[int, int]:
    pss = rss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    pss = int(line.split()[1])
                elif line.startswith(b"Rss:"):
                    rss = int(line.split()[1])
    except OSError:
        pass
    return pss, rss


def _fd_count(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def sample(root: int) -> ServerSample:
    """Read PSS, RSS, CPU seconds and fds summed over ``root``'s process tree.

    Raises ProcessLookupError if ``root`` does not exist.
    """
    if not os.path.exists(f"/proc/{root}/stat"):
        raise ProcessLookupError(f"no process {root}")
    pids = process_tree(root)
    pss = rss = ticks = fds = 0
    for pid in pids:
        p, r = _memory_kib(pid)
        pss += p
        rss += r
        info = _ppid_and_cpu(pid)
        if info is not None:
            ticks += info[1]
        fds += _fd_count(pid)
    return ServerSample(tuple(pids), pss, rss, ticks / _CLK_TCK, fds)
