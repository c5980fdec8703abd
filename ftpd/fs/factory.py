"""Which storage backs the users' files: the one place that reads ``storage``.

``Storage`` gives a user's filesystem (one object per home, shared by that home's sessions), the
capabilities the protocol core may announce before login (FEAT may come before USER: lftp), the
start-up check and the shutdown of shared resources. The S3 backend is an optional extra: it is
imported only when configured.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .base import Capabilities, FileSystem
from .iomode import IoMode

if TYPE_CHECKING:
    from ..config import Config
    from .iopool import IoPool

__all__ = ["Storage"]


class Storage:
    """The configured storage of one server process."""

    __slots__ = ("config", "io", "s3", "_cache", "mode")

    def __init__(self, config: Config, io: IoPool | None) -> None:
        self.config = config
        self.io = io
        self.s3 = config.storage == "s3"
        self._cache: dict[str, FileSystem] = {}
        # Which local file calls may be answered on the loop from the caches (io_inline), and
        # the count of every decision (the metrics' ftpd_file_ops_total).
        self.mode = IoMode(inline=config.io_inline)

    @property
    def capabilities(self) -> Capabilities:
        """What the configured storage can do (FEAT before login must not promise more)."""
        if self.s3:
            from .s3 import S3FS

            return S3FS.capabilities
        from .local import LocalFS

        return LocalFS.capabilities

    def for_user(self, name: str, home: str) -> FileSystem:
        """One filesystem object per home, shared by that home's sessions (lean sessions). With
        S3 the home is the key prefix ``<s3_prefix>/<account name>/``."""
        key = f"s3:{name}" if self.s3 else home
        fs = self._cache.get(key)
        if fs is None:
            if self.s3:
                from .s3 import user_fs

                fs = user_fs(self.config, name)
            else:
                from .local import LocalFS

                fs = LocalFS(
                    home,
                    self.io,
                    atomic_uploads=self.config.atomic_uploads,
                    fsync_uploads=self.config.fsync_uploads,
                    mode=self.mode,
                )
            self._cache[key] = fs
        return fs

    async def check(self) -> None:
        """Fail at start-up, not at the first login: a wrong bucket raises ``OSError`` now."""
        if self.s3:
            from .s3 import shared_storage

            await shared_storage(self.config).check()

    async def close(self) -> None:
        """Release shared resources (the homes kept open for the inline forms; S3: finish
        aborting unfinished multipart uploads)."""
        self.mode.homes.close()
        if self.s3:
            from .s3 import close_shared_storage

            await close_shared_storage()

    def cleanup_stale_uploads(self, homes: Iterable[str]) -> int:
        """Remove temp files of uploads a crash interrupted; the count removed. Object storage
        needs none (an unfinished multipart upload is never visible)."""
        if self.s3:
            return 0
        from .local import cleanup_stale_uploads

        return sum(cleanup_stale_uploads(home) for home in homes if os.path.isdir(home))
