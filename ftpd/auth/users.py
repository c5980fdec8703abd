"""Loading the users file: TOML ``[[users]]`` tables with hashed passwords.

::

    [[users]]
    name = "alice"
    password_hash = "$scrypt$ln=14,r=8,p=1$..."   # from `ftpd passwd`
    home = "alice"          # relative to this file's directory
    perms = "elr"           # optional, pyftpdlib letters, default "elradfmwMT"
    max_sessions = 2        # optional, simultaneous sessions of this user, 0 = unlimited

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

_KEYS = ("name", "password_hash", "home", "perms", "max_sessions")
_REQUIRED = ("name", "password_hash", "home")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


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
        entry = _entry(table, index, base, where)
        if entry.name in seen:
            raise UsersFileError(f"{where}: user {show(entry.name)}: duplicate name")
        seen.add(entry.name)
        entries.append(entry)
    return entries


def _entry(table: dict[str, Any], index: int, base: str, where: str) -> UserEntry:
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
    if not os.path.isdir(real_home):
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

    return UserEntry(name, password_hash, real_home, perms, max_sessions)
