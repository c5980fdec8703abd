"""ftpd: an asyncio FTP server, and a library to embed one.

The public surface is what ``ftpd.__all__`` lists; docs/LIBRARY.md documents it and its stability
promise. Everything else (``ftpd.proto``, ``ftpd.server``, ...) is internal and may change in any
release. Names are imported on first use, so ``import ftpd`` stays cheap and pulls in no asyncio
(the sans-IO protocol core imports this package too).

The package is split into a sans-IO protocol core (``ftpd.proto``), the IO layer
(``ftpd.server``), storage backends (``ftpd.fs``), authentication (``ftpd.auth``), the library
facade (``ftpd.api``, ``ftpd.events``), the pytest plugin (``ftpd.testing``) and the command line
(``ftpd.cli``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ftpd.api import FileSystemFactory, Server, serve
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
    from ftpd.config import Config, ConfigError
    from ftpd.events import Event, EventCallback, EventKind
    from ftpd.fs.base import Capabilities, FileStat, FileSystem, PathEscapeError, Reader, Writer
    from ftpd.fs.local import LocalFS
    from ftpd.fs.memory import MemoryFS
    from ftpd.proto.errors import StorageError

from ftpd.version import __version__

# public name -> the module that defines it
_WHERE = {
    "Server": "ftpd.api",
    "serve": "ftpd.api",
    "FileSystemFactory": "ftpd.api",
    "Config": "ftpd.config",
    "ConfigError": "ftpd.config",
    "ALL_PERMS": "ftpd.auth.base",
    "READ_PERMS": "ftpd.auth.base",
    "Account": "ftpd.auth.base",
    "Authenticator": "ftpd.auth.base",
    "Credentials": "ftpd.auth.base",
    "LoginResult": "ftpd.auth.base",
    "Peer": "ftpd.auth.base",
    "Refusal": "ftpd.auth.base",
    "Event": "ftpd.events",
    "EventCallback": "ftpd.events",
    "EventKind": "ftpd.events",
    "Capabilities": "ftpd.fs.base",
    "FileStat": "ftpd.fs.base",
    "FileSystem": "ftpd.fs.base",
    "PathEscapeError": "ftpd.fs.base",
    "Reader": "ftpd.fs.base",
    "Writer": "ftpd.fs.base",
    "LocalFS": "ftpd.fs.local",
    "MemoryFS": "ftpd.fs.memory",
    "StorageError": "ftpd.proto.errors",
}

__all__ = [
    "ALL_PERMS",
    "Account",
    "Authenticator",
    "Capabilities",
    "Config",
    "ConfigError",
    "Credentials",
    "Event",
    "EventCallback",
    "EventKind",
    "FileStat",
    "FileSystem",
    "FileSystemFactory",
    "LocalFS",
    "LoginResult",
    "MemoryFS",
    "PathEscapeError",
    "Peer",
    "READ_PERMS",
    "Reader",
    "Refusal",
    "Server",
    "StorageError",
    "Writer",
    "serve",
    "__version__",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'ftpd' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
