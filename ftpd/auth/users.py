"""Loading the users file: TOML ``[[users]]`` tables with hashed passwords.

::

    [[users]]
    name = "alice"
    password_hash = "$scrypt$ln=14,r=8,p=1$..."   # from `ftpd passwd`
    home = "alice"          # relative to this file's directory
    perms = "elr"           # optional, pyftpdlib letters, default "elradfmwMT"
    max_sessions = 2        # optional, simultaneous sessions of this user, 0 = unlimited
    quota_bytes = "10G"     # optional, stored for the quota feature (not enforced yet)

The limit keys (``quota_bytes``, ``quota_files``, ``max_download_rate``, ``max_upload_rate``) are
validated and carried on the account, but nothing enforces them yet (issue 19, parts 1 and 2).

Everything is checked at load time and the first problem stops start-up with one line naming
the file, the user and the key (``UsersFileError``, a ``ConfigError``).
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from typing import Any

from ftpd.auth import hashing
from ftpd.auth.base import ALL_PERMS, READ_PERMS
from ftpd.config import ConfigError, show

__all__ = ["ALL_PERMS", "READ_PERMS", "UserEntry", "UsersFileError", "load_users", "normalise_perms"]

# Per-user limits that are validated and stored but not enforced yet (bandwidth and quotas come
# with their own issue): integers >= 0, 0 = none; the sizes also take K/M/G suffixes.
LIMIT_KEYS = ("quota_bytes", "quota_files", "max_download_rate", "max_upload_rate")
_SIZED = frozenset({"quota_bytes", "max_download_rate", "max_upload_rate"})
_KEYS = ("name", "password_hash", "home", "perms", "max_sessions", *LIMIT_KEYS)
_REQUIRED = ("name", "password_hash", "home")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_SIZE_RE = re.compile(r"\s*([0-9]+)\s*([KMGkmg]?)(?:i?[Bb])?\s*")
_SUFFIX = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


class UsersFileError(ConfigError):
    """The users file is unreadable or has an invalid entry."""


@dataclass(frozen=True, slots=True)
class UserEntry:
    """One validated ``[[users]]`` table."""

    name: str
    password_hash: str
    home: str  # absolute real path, an existing directory
    perms: str  # canonical order, no duplicates
    max_sessions: int = 0
    quota_bytes: int = 0
    quota_files: int = 0
    max_download_rate: int = 0  # bytes per second
    max_upload_rate: int = 0


def parse_size(value: object) -> int:
    """An integer >= 0, or a string like ``"512K"``, ``"2M"``, ``"1G"`` (powers of 1024).

    ValueError for anything else (booleans, negatives, other suffixes)."""
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int):
        if value < 0:
            raise ValueError(value)
        return value
    if isinstance(value, str):
        match = _SIZE_RE.fullmatch(value)
        if match:
            return int(match.group(1)) * _SUFFIX[match.group(2).lower()]
    raise ValueError(value)


def normalise_perms(perms: str) -> str:
    """Return ``perms`` in canonical order without duplicates; ValueError for unknown letters."""
    unknown = sorted(set(perms) - set(ALL_PERMS))
    if unknown:
        raise ValueError("".join(unknown))
    return "".join(letter for letter in ALL_PERMS if letter in perms)


def load_users(path: str) -> list[UserEntry]:
    """Read and validate the users file at ``path``."""
    where = f"users file {show(path)}"
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise UsersFileError(f"cannot read {where}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsersFileError(f"{where} is not valid TOML: {' '.join(str(exc).split())}") from None

    extra = sorted(set(data) - {"users"})
    if extra:
        raise UsersFileError(f"{where}: unknown key {show(extra[0])} (expected [[users]] tables)")
    tables = data.get("users", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise UsersFileError(f"{where}: 'users' must be an array of tables ([[users]])")

    base = os.path.dirname(os.path.abspath(path))
    entries: list[UserEntry] = []
    seen: set[str] = set()
    for index, table in enumerate(tables):
        entry = entry_from_table(table, index, base, where)
        if entry.name in seen:
            raise UsersFileError(f"{where}: user {show(entry.name)}: duplicate name")
        seen.add(entry.name)
        entries.append(entry)
    return entries


def entry_from_table(
    table: dict[str, Any], index: int, base: str, where: str, check_home: bool = True
) -> UserEntry:
    """Validate one account (a ``[[users]]`` table or a database row); UsersFileError on the
    first problem. ``home`` is resolved against ``base``; ``check_home=False`` skips the
    directory check (object storage, where the home is a key prefix)."""
    name = table.get("name")
    who = f"user {show(name)}" if isinstance(name, str) else f"users[{index}]"

    def fail(message: str) -> UsersFileError:
        return UsersFileError(f"{where}: {who}: {message}")

    def bad(key: str, expected: str) -> UsersFileError:
        return fail(f"invalid value for {key}: {show(table[key])} (expected {expected})")

    for key in table:
        if key not in _KEYS:
            raise fail(f"unknown key {show(key)} (allowed: {', '.join(_KEYS)})")
    for key in _REQUIRED:
        if key not in table:
            raise fail(f"missing key {show(key)}")

    if not isinstance(name, str) or not name or _CONTROL_RE.search(name):
        raise bad("name", "a non-empty string without control characters")

    password_hash = table["password_hash"]
    if not isinstance(password_hash, str):
        raise bad("password_hash", "a string from `ftpd passwd`")
    try:
        hashing.check_hash(password_hash)
    except ValueError as exc:
        # The hash itself is not secret, but it is long; the reason is what helps.
        raise fail(f"invalid value for password_hash: {exc}") from None

    home = table["home"]
    if not isinstance(home, str) or not home:
        raise bad("home", "a directory path")
    real_home = os.path.realpath(os.path.join(base, os.path.expanduser(home)))
    if check_home and not os.path.isdir(real_home):
        raise fail(f"invalid value for home: {show(home)} (not a directory: {show(real_home)})")

    perms = table.get("perms", ALL_PERMS)
    if not isinstance(perms, str):
        raise bad("perms", f"a string of letters from {ALL_PERMS!r}")
    try:
        perms = normalise_perms(perms)
    except ValueError as exc:
        raise bad("perms", f"letters from {ALL_PERMS!r}; unknown: {show(str(exc))}") from None

    max_sessions = table.get("max_sessions", 0)
    if isinstance(max_sessions, bool) or not isinstance(max_sessions, int) or max_sessions < 0:
        raise bad("max_sessions", "an integer >= 0 (0: unlimited)")

    limits: dict[str, int] = {}
    for key in LIMIT_KEYS:
        value = table.get(key)
        if value is None:
            continue  # absent (a NULL column counts as absent)
        try:
            limits[key] = parse_size(value) if key in _SIZED else _count(value)
        except ValueError:
            suffix = ' or a size like "10G"' if key in _SIZED else ""
            raise bad(key, f"an integer >= 0{suffix} (0: none)") from None
    return UserEntry(name, password_hash, real_home, perms, max_sessions, **limits)


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(value)
    return value
