"""Storage backends behind the ``FileSystem`` interface.

Only the interface types are imported eagerly: the sans-IO protocol core imports this package and
must not pull in asyncio. ``LocalFS`` and ``cleanup_stale_uploads`` load ``ftpd.fs.local`` on
first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ftpd.fs.base import Capabilities, FileStat, FileSystem, PathEscapeError, Reader, Writer

if TYPE_CHECKING:
    from ftpd.fs.local import LocalFS, cleanup_stale_uploads

__all__ = [
    "Capabilities",
    "FileStat",
    "FileSystem",
    "LocalFS",
    "PathEscapeError",
    "Reader",
    "Writer",
    "cleanup_stale_uploads",
]

_LAZY = {"LocalFS", "cleanup_stale_uploads"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from ftpd.fs import local

        return getattr(local, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
