"""``workers = auto``: how many worker processes this machine and ``max_sessions`` need.

One worker per core (the CPUs this process may run on), and more when one process could not
hold its share of ``max_sessions``: a session may hold up to ``FDS_PER_SESSION`` descriptors at
once (its control connection, a data connection, the open file; passive listening ports are
shared by sessions, see ``passive.py``), and a process may open at most its ``RLIMIT_NOFILE``,
less ``RESERVED_FDS`` for the loop, listeners, log files and the IO pool.
"""

from __future__ import annotations

import os

__all__ = ["FDS_PER_SESSION", "RESERVED_FDS", "MAX_WORKERS", "cores", "plan_workers"]

FDS_PER_SESSION = 3
RESERVED_FDS = 256
MAX_WORKERS = 64  # as Config's validation allows


def cores() -> int:
    """CPUs this process may run on (its affinity mask, as a container's cpuset sets it)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def plan_workers(workers: int, max_sessions: int, nofile: int, ncores: int) -> tuple[int, str]:
    """The number of workers to run for the ``workers`` setting (0: auto), and the one log line
    that explains it (``nofile``: the per-process descriptor limit once raised)."""
    per_process = max(1, nofile - RESERVED_FDS) // FDS_PER_SESSION  # sessions one process holds
    if workers:
        line = f"workers: {workers} (as configured)"
        if max_sessions and workers * per_process < max_sessions:
            line += (
                f"; warning: {workers} x {per_process} sessions per process (descriptor limit "
                f"{nofile}, {FDS_PER_SESSION} per session) is below max_sessions {max_sessions}"
            )
        return workers, line
    if not max_sessions:
        return min(ncores, MAX_WORKERS), (
            f"workers auto: {min(ncores, MAX_WORKERS)} (one per core; max_sessions unlimited)"
        )
    need = -(-max_sessions // per_process)
    n = min(MAX_WORKERS, max(ncores, need))
    line = (
        f"workers auto: {n} ({ncores} core{'s' if ncores != 1 else ''}; max_sessions "
        f"{max_sessions} x {FDS_PER_SESSION} descriptors need {need} process"
        f"{'es' if need != 1 else ''} at a descriptor limit of {nofile} each)"
    )
    if need > MAX_WORKERS:
        line += f"; capped at {MAX_WORKERS}: raise the descriptor limit (ulimit -n) to hold them"
    return n, line
