"""Does a run fit this machine? File descriptors per process and in all, and ``--procs auto``.

A session holds one fd (its control connection) and, in the transfer scenarios, a second one
while a data connection is open. A worker process may open at most its hard ``RLIMIT_NOFILE``
(``ulimit -Hn``; the tool raises the soft limit to it); the whole machine at most
``fs.file-max`` minus what is already open (``/proc/sys/fs/file-nr``). Loopback sessions toward
one server address and port also share one ephemeral port range per source address.
"""

from __future__ import annotations

import os
import resource

from ftpd.load.options import Options

PROCS_AUTO = 0  # the value ``--procs auto`` parses to
RESERVED_FDS = 64  # per process: the event loop, pipes, the queue, stdio, /proc reads


def raise_nofile_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft


def cores() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def fds_per_session(scenario: str) -> int:
    """Control connection, plus a data connection in the transfer scenarios."""
    return 1 if scenario in ("hold", "logins") else 2


def _per_process_limit() -> int:
    return raise_nofile_limit() - RESERVED_FDS


def resolve_procs(opts: Options) -> None:
    """``--procs auto``: one worker per core, or more when one process cannot hold its share."""
    if opts.procs != PROCS_AUTO:
        return
    need = opts.sessions * fds_per_session(opts.scenario)
    per_process = max(1, _per_process_limit())
    opts.procs = max(1, min(opts.sessions, max(cores(), -(-need // per_process))))


def _system_fds_free() -> int | None:
    try:
        with open("/proc/sys/fs/file-nr") as f:
            used, _, maximum = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        return None
    return maximum - used


def _ephemeral_ports() -> int | None:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        return None
    return high - low + 1


def check_fd_budget(opts: Options) -> None:
    """Refuse a run that cannot fit the machine's limits, saying which one and what to do."""
    per_session = fds_per_session(opts.scenario)
    limit = _per_process_limit()
    procs = max(1, min(opts.procs, opts.sessions))
    need = -(-opts.sessions // procs) * per_session
    if need > limit:
        enough = -(-opts.sessions * per_session // max(1, limit))
        raise ValueError(
            f"{opts.sessions} sessions need about {need + RESERVED_FDS} fds per process with "
            f"--procs {procs}, but a process may open {limit + RESERVED_FDS} (ulimit -Hn): use "
            f"--procs {enough} or more (or --procs auto), or raise the hard limit "
            "(ulimit -Hn, LimitNOFILE= in systemd)"
        )
    free = _system_fds_free()
    total = opts.sessions * per_session + procs * RESERVED_FDS
    if opts.server_pid is not None or opts.host.startswith(("127.", "::1", "localhost")):
        total += opts.sessions * per_session  # the server's ends are on this machine too
    if free is not None and total > free:
        raise ValueError(
            f"{opts.sessions} sessions need about {total} fds on this machine (both ends on "
            f"loopback), but only {free} are free under fs.file-max: raise it "
            "(sysctl fs.file-max) or run fewer sessions"
        )
    ports = _ephemeral_ports()
    sources = max(1, len(opts.source_addresses))
    if ports is not None and opts.sessions > ports * sources:
        raise ValueError(
            f"{opts.sessions} sessions toward one server port need more than the {ports} "
            f"ephemeral ports of {sources} source address(es): spread them with "
            "--source-addresses 127.0.0.1-127.0.0.8"
        )
