"""Start-up warnings: settings that are valid but probably not what the operator meant.

Errors stop start-up (``ConfigError`` in ``ftpd.config``); these only print
``ftpd: warning: ...`` lines on standard error and the server starts anyway:

- an ``FTPD_*`` environment variable that is no setting (``FTPD_PORTT=2``), with a did-you-mean:
  unknown TOML keys are errors, but the environment holds variables for other programs too;
- ``pasv_ports`` overlapping the kernel's ephemeral range (``ip_local_port_range``): outgoing
  connections of any program may take a passive port, and PASV then fails now and then;
- a home that the server cannot write to, for an account allowed to write (uploads would fail
  with 550 while everything else works).
"""

from __future__ import annotations

import difflib
import os
import tempfile
from collections.abc import Mapping

from ftpd.auth import ConfigAuthenticator
from ftpd.config import CONFIG_ENV, ENV_PREFIX, FIELD_NAMES, Config, env_name, pasv_range, show

EPHEMERAL_RANGE_FILE = "/proc/sys/net/ipv4/ip_local_port_range"
WRITE_PERMS = frozenset("adfmwMT")  # any letter that changes the home
# FTPD_* variables that are not settings but belong to the project's own tools: the image's build
# arguments (Dockerfile) and switches of the test suite.
_OTHER_NAMES = frozenset({"FTPD_UID", "FTPD_GID", "FTPD_EXTRAS", "FTPD_REQUIRE_CLIENTS"})
_OTHER_PREFIXES = ("FTPD_TEST_", "FTPD_FUZZ_", "FTPD_HARDENING_", "FTPD_CONTAINER_")


def startup_warnings(
    config: Config, auth: ConfigAuthenticator, env: Mapping[str, str]
) -> list[str]:
    """Every warning for this configuration, one line each."""
    found = unknown_env(env)
    overlap = ephemeral_overlap(config)
    if overlap:
        found.append(overlap)
    found += unwritable_homes(config, auth)
    return found


def unknown_env(env: Mapping[str, str]) -> list[str]:
    """One line per ``FTPD_*`` variable that sets nothing."""
    known = {env_name(key) for key in FIELD_NAMES} | {CONFIG_ENV}
    found = []
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX) or name in known or name in _OTHER_NAMES:
            continue
        if name.startswith(_OTHER_PREFIXES):
            continue
        close = difflib.get_close_matches(name, sorted(known), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        found.append(f"unknown environment variable {name} is ignored{hint}")
    return found


def ephemeral_range(path: str = EPHEMERAL_RANGE_FILE) -> tuple[int, int] | None:
    """The kernel's range of ports for outgoing connections, if this system tells it."""
    try:
        with open(path) as fh:
            first, last = (int(word) for word in fh.read().split()[:2])
    except (OSError, ValueError):
        return None
    return first, last


def ephemeral_overlap(config: Config, path: str = EPHEMERAL_RANGE_FILE) -> str | None:
    """A warning if ``pasv_ports`` and the ephemeral range share ports, else None."""
    system = ephemeral_range(path)
    if system is None:
        return None
    first, last = pasv_range(config)
    low, high = max(first, system[0]), min(last, system[1])
    if low > high:
        return None
    return (
        f"pasv_ports {config.pasv_ports} overlaps the system's ephemeral port range "
        f"{system[0]}-{system[1]} ({path}) on {low}-{high}: outgoing connections may take "
        "passive ports and PASV fail now and then; choose a range outside it"
    )


def unwritable_homes(config: Config, auth: ConfigAuthenticator) -> list[str]:
    """Warnings for homes of accounts with write permissions that this process cannot write."""
    if config.storage != "local":
        return []
    homes: dict[str, str] = {}  # home -> who
    for account in auth.accounts:
        if WRITE_PERMS & set(account.perms):
            who = "anonymous users" if account.anonymous else f"user {show(account.name)}"
            homes.setdefault(account.home, who)
    return [
        f"the home of {who} ({home}) is not writable by this process (uid {os.geteuid()}), "
        "although the account may upload: uploads will fail"
        for home, who in homes.items()
        if os.path.isdir(home) and not writable(home)
    ]


def writable(directory: str) -> bool:
    """Whether a file can be created in ``directory`` (tried for real: ACLs, read-only mounts
    and root squashing all count, which ``os.access`` misses)."""
    try:
        with tempfile.TemporaryFile(dir=directory, prefix=".ftpd-check-"):
            return True
    except OSError:
        return False
