"""Live reload: SIGHUP (or ``ftpd reload``) re-reads the configuration, the users and TLS files.

``prepare(current, load)`` builds everything a reload needs *before* anything changes: the new
``Config`` (the same command line and environment as at start-up, so only the file's edits
count), its TLS context (the certificate and key are read again, even when their paths did not
change: a renewed certificate is the common case) and its authenticator (the users file is read
again). Any error refuses the whole reload with one log line and the running configuration stays
in force. The server then swaps the prepared objects in (``Server.reload``): new sessions get
them; running sessions keep the TLS context and account they started with, and transfers go on.

Keys that shape the process itself (listeners, workers, thread pools, storage, logging set-up)
cannot change without a restart: a reload that changes one logs a warning naming them and keeps
their running values, and applies the rest.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any

from ..config import Config, ConfigError, show

if TYPE_CHECKING:
    import ssl

__all__ = [
    "RESTART_KEYS",
    "Prepared",
    "prepare",
    "read_pid_file",
    "remove_pid_file",
    "write_pid_file",
]

log = logging.getLogger("ftpd")

# Keys a running process cannot take up: they are kept at their start-up values.
RESTART_KEYS = frozenset({
    "host", "port", "workers", "pasv_ports", "implicit_tls_port", "backlog", "io_threads",
    "loop", "storage", "s3_endpoint", "s3_bucket", "s3_prefix", "s3_region", "metrics_port",
    "metrics_host", "xferlog_file", "log_level", "log_format", "proxy_protocol",
    "proxy_trusted", "proxy_timeout", "pid_file", "atomic_uploads",
})  # fmt: skip


@dataclass(frozen=True, slots=True)
class Prepared:
    """A reload that passed every check, ready to swap in."""

    config: Config
    tls_context: ssl.SSLContext | None
    authenticator: Any
    changed: tuple[str, ...]  # keys that take effect
    kept: tuple[str, ...]  # keys that changed but need a restart


def prepare(
    current: Config,
    load: Callable[[], Config],
    make_tls: Callable[[Config], Any],
    make_auth: Callable[[Config], Any],
) -> Prepared:
    """The new configuration and what it needs, or ``ConfigError`` (nothing has changed then)."""
    new = load()
    kept = tuple(
        f.name
        for f in fields(Config)
        if f.name in RESTART_KEYS and getattr(new, f.name) != getattr(current, f.name)
    )
    if kept:
        new = replace(new, **{key: getattr(current, key) for key in kept})
    changed = tuple(
        f.name for f in fields(Config) if getattr(new, f.name) != getattr(current, f.name)
    )
    tls_wanted = new.tls != "off" or new.implicit_tls_port
    tls_context = make_tls(new) if tls_wanted else None
    authenticator = make_auth(new)
    return Prepared(new, tls_context, authenticator, changed, kept)


# --- the pid file (ftpd reload finds the server through it) ---------------------------------


def write_pid_file(path: str) -> None:
    """Write this process's pid, atomically (a reader never sees a half-written file)."""
    temp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(temp, "w", encoding="ascii") as fh:
            fh.write(f"{os.getpid()}\n")
        os.replace(temp, path)
    except OSError as exc:
        raise ConfigError(
            f"invalid value for pid_file: {show(path)} (cannot write it: {exc.strerror or exc})"
        ) from None


def remove_pid_file(path: str) -> None:
    """Remove the pid file if it is still ours (a newer server may have replaced it)."""
    try:
        if read_pid_file(path) == os.getpid():
            os.unlink(path)
    except (OSError, ConfigError):
        pass


def read_pid_file(path: str) -> int:
    try:
        with open(path, encoding="ascii") as fh:
            text = fh.read().strip()
    except OSError as exc:
        raise ConfigError(
            f"cannot read pid_file {show(path)}: {exc.strerror or exc} "
            "(is the server running with this pid_file?)"
        ) from None
    if not text.isdigit() or int(text) <= 1:
        raise ConfigError(f"pid_file {show(path)} holds no pid: {show(text[:40])}")
    return int(text)


def signal_reload(path: str) -> int:
    """``ftpd reload``: send SIGHUP to the pid in ``path``; the pid."""
    pid = read_pid_file(path)
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        raise ConfigError(
            f"no process {pid} (from pid_file {show(path)}): the server is not running"
        ) from None
    except PermissionError:
        raise ConfigError(
            f"not allowed to signal process {pid} (from pid_file {show(path)})"
        ) from None
    return pid
