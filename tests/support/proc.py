"""A server's figures from ``/proc/<pid>``: open fds, proportional set size, CPU time, uploads."""

from __future__ import annotations

import os

from .waits import wait_until

CLK_TCK = os.sysconf("SC_CLK_TCK")


def fds(pid: int) -> int:
    """Open file descriptors of ``pid``."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def upload_bytes(pid: int, root: object) -> int:
    """Bytes written so far to the upload files ``pid`` holds open under ``root``: anonymous
    (``O_TMPFILE``, shown as ``<dir>/#<inode> (deleted)``) or named ``.ftpd-upload-*``."""
    total = 0
    top = os.path.realpath(str(root)) + os.sep
    for fd in os.listdir(f"/proc/{pid}/fd"):
        path = f"/proc/{pid}/fd/{fd}"
        try:
            target = os.readlink(path)
            if not target.startswith(top):
                continue
            name = os.path.basename(target)
            if name.startswith(".ftpd-upload-") or (name.startswith("#") and " (deleted)" in name):
                total += os.stat(path).st_size
        except OSError:  # closed meanwhile
            continue
    return total


def pss_kib(pid: int) -> int:
    """Proportional set size of ``pid`` in KiB (``/proc/<pid>/smaps_rollup``)."""
    with open(f"/proc/{pid}/smaps_rollup") as fh:
        for line in fh:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    raise AssertionError("no Pss line in smaps_rollup")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used by ``pid`` so far."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    # Fields after the command: state(0) ... utime(11) stime(12), see proc(5).
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def settle_fds(pid: int, baseline: int, timeout: float = 10.0) -> int:
    """Wait for the fd count of ``pid`` to come back to ``baseline``; return the final count."""
    wait_until(lambda: fds(pid) <= baseline, timeout)
    return fds(pid)
