"""``ftpd quota rescan NAME`` and ``ftpd quota show NAME``: a user's recorded disk usage.

``rescan`` walks the user's home and records what it finds in ``<home>/.ftpquota`` (see
``ftpd/fs/quota.py``): after files were changed behind the server's back, or a restore. It is
safe while the server runs (the same lock as the sessions' updates). The user is looked up in
``--users-file`` / ``--users-db``, else in the configuration's users file or database, else it is
the single user (``user``/``root``).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence

from ftpd.config import ConfigError, show
from ftpd.config_load import StrictParser, load_config
from ftpd.fs.quota import current, rescan

__all__ = ["quota_command"]


def _parser() -> argparse.ArgumentParser:
    parser = StrictParser(prog="ftpd quota", description="Show or recompute a user's disk usage.")
    parser.add_argument("command", choices=("rescan", "show"))
    parser.add_argument("name", help="the user")
    parser.add_argument("--config", metavar="FILE", help="TOML configuration file")
    parser.add_argument("--users-file", metavar="FILE", help="the users file (TOML)")
    parser.add_argument("--users-db", metavar="URL", help="sqlite:///FILE or postgresql://...")
    return parser


def _home(args: argparse.Namespace, env: Mapping[str, str]) -> str:
    config = load_config(["--config", args.config] if args.config else [], env)
    users_file = args.users_file or ("" if args.users_db else config.users_file)
    users_db = args.users_db or ("" if args.users_file else config.users_db)
    if users_file:
        from ftpd.auth.users import load_users

        for entry in load_users(users_file):
            if entry.name == args.name:
                return entry.home
    elif users_db:
        from ftpd.auth.admin import open_target

        for row in open_target("", users_db).rows():
            if row["name"] == args.name:
                return os.path.abspath(str(row["home"]))
    elif args.name == config.user:
        return os.path.abspath(config.root)
    raise ConfigError(f"no user {show(args.name)}")


def quota_command(argv: Sequence[str], env: Mapping[str, str]) -> int:
    """Run one ``ftpd quota`` command; the exit code (ConfigError propagates: exit 2)."""
    args = _parser().parse_args(list(argv))
    home = _home(args, env)
    if not os.path.isdir(home):
        raise ConfigError(f"the home of {show(args.name)} is not a directory: {show(home)}")
    usage = rescan(home) if args.command == "rescan" else current(home)
    print(f"{args.name}: {usage.bytes} bytes in {usage.files} files ({home})")
    return 0
