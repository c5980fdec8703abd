"""``ftpd user add|passwd|del|list``: manage accounts in the users file or the users database.

::

    ftpd user add NAME --home DIR [--perms LETTERS] [--max-sessions N] [--quota-bytes SIZE]
                  [--quota-files N] [--max-download-rate RATE] [--max-upload-rate RATE]
    ftpd user passwd NAME
    ftpd user del NAME
    ftpd user list

The target is ``--users-file FILE`` or ``--users-db URL``, else ``users_file`` / ``users_db`` of
the configuration (``--config FILE``, ``FTPD_CONFIG``, ``FTPD_USERS_FILE``, ``FTPD_USERS_DB``),
so the commands act on what the server reads. Passwords come from a prompt (twice) on a
terminal, else from the first line of standard input; they are hashed with scrypt
(``ftpd.auth.hashing``) and never printed. A refused change prints one ``ftpd: error:`` line and
exits 1; a usage error exits 2. The server picks the change up without a restart (within
``users_cache_seconds``).
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from ftpd.auth.admin import AdminError, NewUser, Target, open_target, validate
from ftpd.auth.hashing import hash_password
from ftpd.auth.users import ALL_PERMS, LIMIT_KEYS, normalise_perms, parse_size
from ftpd.config import CONFIG_ENV, ConfigError, show
from ftpd.config_load import StrictParser, load_config

# Stands in for the hash while the other values are checked, before the password is asked for.
_PLACEHOLDER_HASH = "$scrypt$ln=1,r=1,p=1$" + "A" * 22 + "$" + "A" * 43
_LIMITS_HELP = (
    "Per-user quota and bandwidth (README: Quotas, Bandwidth limits); 0 or absent: the "
    "server's user_quota_* / max_*_rate."
)


def build_parser() -> argparse.ArgumentParser:
    """The ``ftpd user`` parser with its four subcommands."""
    parser = StrictParser(
        prog="ftpd user",
        description="Manage the accounts of the users file or the users database. The target "
        "is --users-file or --users-db, else users_file / users_db from the configuration "
        "(--config, FTPD_CONFIG, FTPD_USERS_FILE, FTPD_USERS_DB). A running server sees a "
        "change within users_cache_seconds, without a restart.",
    )
    sub = parser.add_subparsers(dest="command", metavar="{add,passwd,del,list}", required=True)

    def command(name: str, text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument("--users-file", metavar="FILE", help="TOML users file to edit")
        p.add_argument("--users-db", metavar="URL",
                       help="sqlite:///FILE or postgresql://USER:PASSWORD@HOST/DB")  # fmt: skip
        p.add_argument("--config", metavar="FILE", help=f"ftpd config file (env {CONFIG_ENV})")
        return p

    add = command(
        "add",
        "Add an account. The password is read from a prompt (twice) or from the first line of "
        "standard input. The home is created if missing (local storage).",
    )
    add.add_argument("name", metavar="NAME", help="login name (case-sensitive)")
    add.add_argument("--home", required=True, metavar="DIR",
                     help="the user's root directory (stored as an absolute path)")  # fmt: skip
    add.add_argument("--perms", default=ALL_PERMS, metavar="LETTERS",
                     help=f"permission letters from {ALL_PERMS!r} (default: all; 'elr' is "
                          "read-only); see config/users.example.toml")  # fmt: skip
    add.add_argument("--max-sessions", default="0", metavar="N",
                     help="simultaneous sessions of this user (default: 0, unlimited)")  # fmt: skip
    limits = add.add_argument_group("limits", _LIMITS_HELP)
    limits.add_argument("--quota-bytes", metavar="SIZE",
                        help="bytes the user may store, suffixes K/M/G (0: the server's)")  # fmt: skip
    limits.add_argument("--quota-files", metavar="N", help="files the user may store (0: the server's)")
    limits.add_argument(
        "--max-download-rate",
        metavar="RATE",
        help="bytes per second per session, suffixes K/M/G (0: the server's)",
    )
    limits.add_argument(
        "--max-upload-rate",
        metavar="RATE",
        help="bytes per second per session, suffixes K/M/G (0: the server's)",
    )

    passwd = command("passwd", "Set a new password (prompt twice, or the first line of stdin).")
    passwd.add_argument("name", metavar="NAME")
    delete = command("del", "Delete an account (its home and files are left alone).")
    delete.add_argument("name", metavar="NAME")
    command("list", "List the accounts: name, home, permissions and limits (no hashes).")
    return parser


def user_command(argv: Sequence[str], env: Mapping[str, str]) -> int:
    """Run one ``ftpd user`` command; returns the exit code (ConfigError propagates: exit 2)."""
    args = build_parser().parse_args(list(argv))
    target, storage = _target(args, env)
    try:
        if args.command == "add":
            return _add(args, target, storage)
        if args.command == "passwd":
            target.set_password(args.name, _hash_from_input())
            print(f"password of {show(args.name)} changed in the {target.description}")
        elif args.command == "del":
            target.delete(args.name)
            print(f"user {show(args.name)} deleted from the {target.description}")
        else:
            _list(target)
    except AdminError as exc:
        _error(str(exc))
        return 1
    return 0


def _target(args: argparse.Namespace, env: Mapping[str, str]) -> tuple[Target, str]:
    argv = ["--config", args.config] if args.config else []
    config = load_config(argv, env)
    users_file, users_db = args.users_file or "", args.users_db or ""
    if users_file and users_db:
        raise ConfigError("give --users-file or --users-db, not both")
    if not users_file and not users_db:
        users_file, users_db = config.users_file, config.users_db
    return open_target(users_file, users_db), config.storage


def _add(args: argparse.Namespace, target: Target, storage: str) -> int:
    try:
        perms = normalise_perms(args.perms)
    except ValueError as exc:
        raise AdminError(f"invalid value for --perms: {show(args.perms)} (unknown letters "
                         f"{show(str(exc))}; allowed: {ALL_PERMS})") from None  # fmt: skip
    max_sessions = _number("--max-sessions", args.max_sessions, sized=False)
    limits = {}
    for key in LIMIT_KEYS:
        text = getattr(args, key)
        if text is not None:
            limits[key] = _number("--" + key.replace("_", "-"), text, sized=key != "quota_files")
    home = os.path.abspath(os.path.expanduser(args.home))
    user = NewUser(args.name, _PLACEHOLDER_HASH, home, perms, max_sessions, limits)
    validate(user, target.description, check_home=False)  # name, perms... before the prompt
    if any(row.get("name") == args.name for row in _existing(target)):
        raise AdminError(f"user {show(args.name)} already exists in the {target.description}")
    user.password_hash = _hash_from_input()
    if storage == "local" and not os.path.isdir(home):
        try:
            os.makedirs(home, exist_ok=True)
        except OSError as exc:
            raise AdminError(f"cannot create the home {show(home)}: {exc.strerror}") from None
        print(f"created the home {home}")
    target.add(user)
    print(f"user {show(args.name)} added to the {target.description} (home {home}, perms {perms})")
    return 0


def _existing(target: Target) -> list[dict[str, Any]]:
    try:
        return target.rows()
    except AdminError:
        return []  # a database or file that does not exist yet: add creates it


def _number(flag: str, text: str, sized: bool) -> int:
    try:
        if sized:
            return parse_size(text)
        value = int(text)
        if value < 0 or not text.strip().isdigit():
            raise ValueError(text)
        return value
    except ValueError:
        expected = "an integer >= 0, or with a suffix K, M or G" if sized else "an integer >= 0"
        raise AdminError(f"invalid value for {flag}: {show(text)} (expected {expected})") from None


def _list(target: Target) -> None:
    rows = target.rows()
    if not rows:
        print(f"no users in the {target.description}", file=sys.stderr)
        return
    width = max(len(str(row["name"])) for row in rows)
    for row in rows:
        extras = [f"{key}={row[key]}" for key in ("max_sessions", *LIMIT_KEYS) if row.get(key)]
        perms = row.get("perms", ALL_PERMS)
        print(f"{row['name']:<{width}}  {perms:<10}  {row['home']}  {' '.join(extras)}".rstrip())


def _hash_from_input() -> str:
    password = read_password()
    if password is None:
        raise AdminError("passwords do not match")
    if not password:
        raise AdminError("empty password")
    return hash_password(password)


def read_password() -> str | None:
    """A password from a prompt (twice; None if they differ) on a terminal, else the first line
    of standard input (spaces kept, the line end removed)."""
    if sys.stdin is not None and sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat password: ") != password:
            return None
        return password
    line = sys.stdin.readline() if sys.stdin is not None else ""
    return line.removesuffix("\n").removesuffix("\r")


def _error(message: str) -> None:
    print(f"ftpd: error: {' '.join(message.split())}", file=sys.stderr, flush=True)


__all__ = ["build_parser", "user_command"]
