"""A typed application against ftpd's public API; CI runs ``mypy --strict`` on it (and on the
other examples) as a user's type checker would see the installed package.

It puts a read-only layer over the storage (a ``FileSystem`` of its own), logs users in from a
dict, and counts events. ``assert_type`` pins the public types, and each ``type: ignore`` marks
a misuse that mypy must keep rejecting (``--strict`` reports an ignore that is no longer needed).
"""

from __future__ import annotations

import asyncio
import errno
from collections import Counter
from collections.abc import Awaitable
from typing import assert_type

from ftpd import (
    READ_PERMS,
    Account,
    Capabilities,
    Config,
    Credentials,
    Event,
    EventKind,
    FileStat,
    FileSystem,
    LocalFS,
    LoginResult,
    MemoryFS,
    Peer,
    Reader,
    Refusal,
    Server,
    StorageError,
    Writer,
)


class ReadOnly:
    """Any storage, with every change refused as ``550`` (a FileSystem implemented by hand)."""

    def __init__(self, inner: FileSystem) -> None:
        self.inner = inner
        self.capabilities = Capabilities(resume_write=False, set_mtime=False, chmod=False)

    @staticmethod
    def _refuse(vpath: str) -> OSError:
        return OSError(errno.EROFS, "read-only", vpath)

    def stat(self, vpath: str) -> Awaitable[FileStat]:
        return self.inner.stat(vpath)

    def list(self, vpath: str) -> Awaitable[list[FileStat]]:
        return self.inner.list(vpath)

    def open_read(self, vpath: str, offset: int = 0) -> Awaitable[Reader]:
        return self.inner.open_read(vpath, offset)

    async def open_write(self, vpath: str, offset: int = 0, append: bool = False) -> Writer:
        raise StorageError(553, "This server is read-only.")

    async def mkdir(self, vpath: str) -> None:
        raise self._refuse(vpath)

    async def rmdir(self, vpath: str) -> None:
        raise self._refuse(vpath)

    async def delete(self, vpath: str) -> None:
        raise self._refuse(vpath)

    async def rename(self, src: str, dst: str) -> None:
        raise self._refuse(src)

    async def set_mtime(self, vpath: str, mtime: float) -> None:
        raise self._refuse(vpath)

    async def chmod(self, vpath: str, mode: int) -> None:
        raise self._refuse(vpath)

    async def unique_name(self, vdir: str, prefix: str) -> str:
        raise self._refuse(vdir)


class DictAuthenticator:
    def __init__(self, users: dict[str, str], blocked: frozenset[str] = frozenset()) -> None:
        self.users = users
        self.blocked = blocked

    async def authenticate(self, credentials: Credentials, peer: Peer) -> LoginResult:
        if credentials.user in self.blocked:
            return Refusal(f"{credentials.user} is blocked.")
        if self.users.get(credentials.user) == credentials.password:
            return Account(credentials.user, perms=READ_PERMS)
        return None


def build(store: MemoryFS) -> tuple[Server, Counter[EventKind]]:
    counts: Counter[EventKind] = Counter()

    async def count(event: Event) -> None:
        assert_type(event.kind, EventKind)
        assert_type(event.real_path, str | None)
        counts[event.kind] += 1

    local: FileSystem = LocalFS(".", None)  # both backends are FileSystems
    memory: FileSystem = store
    assert local.capabilities.resume_write and memory.capabilities.resume_write
    server = Server(
        Config(host="127.0.0.1", port=0),
        authenticator=DictAuthenticator({"a": "b"}),
        filesystem=lambda account: ReadOnly(store.subtree("/" + account.name)),
    )
    server.subscribe(count, EventKind.LOGIN, EventKind.DOWNLOAD)
    return server, counts


async def main() -> None:
    store = MemoryFS()
    store.write_bytes("/a/readme.txt", b"read me")
    server, counts = build(store)
    async with server:
        assert_type(server.port, int)
        assert_type(server.url, str)
        print("serving", server.url)
    print(dict(counts))


def misuse() -> None:
    """Never called: what mypy must reject."""
    Account(name=1)  # type: ignore[arg-type]
    Server(Config(), filesystem=lambda account: "not storage")  # type: ignore[arg-type,return-value]
    Server(Config()).subscribe(lambda event: event.colour)  # type: ignore[attr-defined]


if __name__ == "__main__":
    asyncio.run(main())
