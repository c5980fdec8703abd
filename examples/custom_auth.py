"""Log users in from an application's own user table (here SQLite; Django or SQLAlchemy look
the same): a short Authenticator class, each user jailed in a home of their own.

    python examples/custom_auth.py users.db /srv/ftp    # then: ftp -p localhost 2121
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import sqlite3
import sys
from pathlib import Path

from ftpd import ALL_PERMS, READ_PERMS, Account, Config, Credentials, LoginResult, Peer, Server


def hash_password(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)


def create_db(path: Path) -> None:
    """A demo table: alice may write, bob may only read."""
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE IF NOT EXISTS users "
            "(name TEXT PRIMARY KEY, salt BLOB, hash BLOB, can_write INTEGER)"
        )
        for name, password, can_write in (("alice", "wonderland", 1), ("bob", "builder", 0)):
            salt = os.urandom(16)
            db.execute(
                "INSERT OR REPLACE INTO users VALUES (?, ?, ?, ?)",
                (name, salt, hash_password(password, salt), can_write),
            )


class SqliteAuthenticator:
    """Checks USER/PASS against the table; homes are <root>/<name>."""

    def __init__(self, db_path: Path, root: Path) -> None:
        self.db_path = db_path
        self.root = root

    def _check(self, name: str, password: str) -> Account | None:
        # Blocking work (a query, a 50 ms hash): run in a thread, never on the event loop.
        with sqlite3.connect(self.db_path) as db:
            row = db.execute(
                "SELECT salt, hash, can_write FROM users WHERE name = ?", (name,)
            ).fetchone()
        if row is None:
            return None
        salt, stored, can_write = row
        if not hmac.compare_digest(hash_password(password, salt), stored):
            return None
        home = self.root / name
        home.mkdir(parents=True, exist_ok=True)
        return Account(name, home=str(home), perms=ALL_PERMS if can_write else READ_PERMS)

    async def authenticate(self, credentials: Credentials, peer: Peer) -> LoginResult:
        return await asyncio.to_thread(self._check, credentials.user, credentials.password)


def build(db_path: Path, root: Path, port: int = 2121) -> Server:
    config = Config(host="127.0.0.1", port=port, root=str(root))
    return Server(config, authenticator=SqliteAuthenticator(db_path, root))


async def main(db_path: Path, root: Path) -> None:
    create_db(db_path)
    async with build(db_path, root) as server:
        print(f"serving {root} on {server.url} (alice/wonderland, bob/builder)")
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2])))
