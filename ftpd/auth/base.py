"""The authentication interface: credentials and peer in, an account (or a refusal) out.

Every user store implements ``Authenticator``: the users file, the single user and anonymous
logins (``ftpd.auth.ConfigAuthenticator``), a database, or an application's own user table::

    class MyAuth:
        async def authenticate(self, credentials: Credentials, peer: Peer) -> LoginResult:
            row = await db.fetch_user(credentials.user)
            if row is None or not check_password(credentials.password, row.hash):
                return None  # 530, counted as a failed attempt (delay, ban_after)
            return Account(row.name, home=row.home, perms=ALL_PERMS)

The three answers:

- an ``Account``: logged in, with that home, those permissions and limits;
- ``None``: wrong user name or password, answered ``530 Login incorrect`` after the failed-login
  delay, and counted towards ``max_login_attempts`` and ``ban_after``;
- a ``Refusal``: the credentials may be right but the login is not allowed now (account disabled,
  too many sessions, maintenance): answered ``421 <reason>``, and the connection is closed.

``authenticate`` is called on the event loop for every PASS: it must not block (hash passwords in
an executor, use an async database driver). An exception it raises is logged and answered as a
wrong password (``None``), never shown to the client. Never put the password in a log line or an
exception message.

This module imports nothing from asyncio: the protocol core uses ``Account``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

__all__ = [
    "ALL_PERMS",
    "READ_PERMS",
    "Account",
    "Authenticator",
    "Credentials",
    "LoginResult",
    "Peer",
    "Refusal",
]

# pyftpdlib's letters (peers.md "Permission model"): e=CWD/CDUP, l=LIST/NLST/STAT/MLSx/SIZE/MDTM,
# r=RETR, a=APPE, d=DELE/RMD, f=RNFR/RNTO, m=MKD, w=STOR/STOU, M=SITE CHMOD, T=MFMT.
ALL_PERMS = "elradfmwMT"
READ_PERMS = "elr"


@dataclass(frozen=True, slots=True)
class Account:
    """A logged-in identity: what the session needs to build its filesystem and checks.

    ``home`` is the real path of the user's home for the local storage (the key prefix's account
    name is used with S3); a custom ``filesystem`` factory may ignore it. ``perms`` defaults to
    read-only, as pyftpdlib's does: grant write letters explicitly.
    """

    name: str
    home: str = ""  # absolute real path of the user's home (local storage)
    perms: str = READ_PERMS  # permission letters, e.g. "elr" or "elradfmwMT"
    anonymous: bool = False
    max_sessions: int = 0  # simultaneous sessions of this account, 0 = unlimited
    # Limits carried with the account (users file, users_db) but not enforced yet: bandwidth and
    # quotas come with their own issue. Bytes, files, bytes per second; 0 = none.
    quota_bytes: int = 0
    quota_files: int = 0
    max_download_rate: int = 0
    max_upload_rate: int = 0


@dataclass(frozen=True, slots=True)
class Credentials:
    """What the client sent with USER and PASS."""

    user: str
    password: str = field(repr=False)  # never in a repr, a log line or a traceback


@dataclass(frozen=True, slots=True)
class Peer:
    """Who is logging in: the client's address (the real client's behind a PROXY balancer)."""

    ip: str
    port: int
    secure: bool = False  # the control connection is under TLS (AUTH TLS or implicit FTPS)


@dataclass(frozen=True, slots=True)
class Refusal:
    """A login refused for a reason other than wrong credentials: ``421 <reason>``, then close."""

    reason: str


LoginResult = Account | Refusal | None


@runtime_checkable
class Authenticator(Protocol):
    """Checks a login. One object serves every session of a server: keep it safe to share."""

    async def authenticate(self, credentials: Credentials, peer: Peer) -> LoginResult:
        """The account for these credentials, ``None`` for wrong ones, or a ``Refusal``."""
        ...
