"""Who may log in, with which home and which permissions.

``base`` holds the interface every user store implements (``Authenticator``: credentials and
peer in, an ``Account`` or a ``Refusal`` out); ``builtin`` the store the configuration describes
(the users file, the single user, anonymous logins); ``users`` reads the users file; ``hashing``
makes and checks password hashes.
"""

from __future__ import annotations

from ftpd.auth.base import (
    ALL_PERMS,
    READ_PERMS,
    Account,
    Authenticator,
    Credentials,
    LoginResult,
    Peer,
    Refusal,
)
from ftpd.auth.builtin import (
    ANONYMOUS_NAMES,
    NEED_CACHE_MISS,
    CachedAuthenticator,
    ConfigAuthenticator,
    Logins,
    authenticator_from_config,
    single_user_enabled,
)

__all__ = [
    "ALL_PERMS",
    "ANONYMOUS_NAMES",
    "NEED_CACHE_MISS",
    "READ_PERMS",
    "Account",
    "Authenticator",
    "CachedAuthenticator",
    "ConfigAuthenticator",
    "Credentials",
    "LoginResult",
    "Logins",
    "Peer",
    "Refusal",
    "authenticator_from_config",
    "single_user_enabled",
]
