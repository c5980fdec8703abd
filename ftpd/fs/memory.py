"""An in-memory ``FileSystem``: for tests, and for applications that never touch the disk.

A tree of directory and file nodes held by the ``MemoryFS`` object; every operation runs on the
event loop without a thread (nothing blocks). It behaves as the local backend does, down to the
errno of each failure (``ENOENT``, ``ENOTDIR``, ``EISDIR``, ``EEXIST``, ``ENOTEMPTY``, ``EINVAL``)
and the conformance scenarios of tests/conformance run against it (tests/unit/test_fs_memory.py,
tests/conformance/test_memory_conformance.py). Like the local backend:

- uploads from offset 0 are atomic: the data collects aside and ``commit`` puts it in place, so
  readers see the old content until the upload completes and an aborted upload leaves it intact;
  a resumed (REST) or appended (APPE) upload writes in place, as on disk;
- a rename replaces an existing file, or an empty directory with a directory; a directory cannot
  move into itself;
- listings are sorted by name; the home's own name is ``/``.

What differs from a disk: there are no symbolic links, no owners, and no limit but memory (set
``max_bytes`` to get ``ENOSPC``, answered ``452``, past a total size). ``subtree(vpath)`` gives a
view rooted at a directory (a user's home) sharing the same nodes.

Synchronous helpers for code around the server (``write_bytes``, ``read_bytes``, ``makedirs``,
``exists``, ``files``) work on the same tree; call them from the loop's thread (or while the
server is not running).
"""

from __future__ import annotations

import errno
import itertools
import os
import time
from dataclasses import dataclass, field

from ftpd.fs.base import Capabilities, FileStat, virtual_parts

__all__ = ["MemoryFS"]

FILE_MODE = 0o100644  # what a umask of 022 gives the local backend's uploads
DIR_MODE = 0o040755
_ids = itertools.count(1)


@dataclass(eq=False, slots=True)
class _File:
    data: bytearray = field(default_factory=bytearray)
    mtime: float = field(default_factory=time.time)
    mode: int = FILE_MODE
    ino: int = field(default_factory=lambda: next(_ids))


@dataclass(eq=False, slots=True)
class _Dir:
    entries: dict[str, _File | _Dir] = field(default_factory=dict)
    mtime: float = field(default_factory=time.time)
    mode: int = DIR_MODE
    ino: int = field(default_factory=lambda: next(_ids))


def _err(code: int, vpath: str) -> OSError:
    return OSError(code, os.strerror(code), vpath)


def _stat(name: str, node: _File | _Dir) -> FileStat:
    if isinstance(node, _Dir):
        nlink = 2 + sum(isinstance(n, _Dir) for n in node.entries.values())
        # 4096: what a directory on ext4 or xfs reports, so listings read as the disk backend's.
        return FileStat(name, True, 4096, node.mtime, node.mode, nlink, unique=f"m{node.ino:x}")
    return FileStat(name, False, len(node.data), node.mtime, node.mode, unique=f"m{node.ino:x}")


class _Budget:
    """The total size all views of one tree may hold (``max_bytes``; 0 = no limit)."""

    __slots__ = ("limit", "used")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, n: int, vpath: str) -> None:
        if self.limit and self.used + n > self.limit:
            raise _err(errno.ENOSPC, vpath)
        self.used += n

    def give(self, n: int) -> None:
        self.used = max(0, self.used - n)


class MemoryReader:
    """RETR from a file node: reads slices of its content (no file descriptor, no sendfile)."""

    __slots__ = ("size", "_node", "_pos")

    def __init__(self, node: _File, offset: int) -> None:
        self.size = len(node.data)
        self._node = node
        self._pos = offset

    async def read(self, n: int) -> bytes:
        data = bytes(self._node.data[self._pos : self._pos + n])
        self._pos += len(data)
        return data

    def fileno(self) -> int | None:
        return None

    def position(self) -> int:
        return self._pos

    def advance(self, n: int) -> None:
        self._pos += n

    def close_now(self) -> bool:
        return True  # nothing to release

    async def close(self) -> None:
        return None


class MemoryWriter:
    """An upload into the tree: aside until ``commit`` (atomic), or in place (REST, APPE)."""

    __slots__ = ("_fs", "_parent", "_name", "_vpath", "_node", "_atomic", "_done", "_pos")

    def __init__(
        self,
        fs: MemoryFS,
        parent: _Dir,
        name: str,
        vpath: str,
        node: _File,
        atomic: bool,
        pos: int | None = None,
    ) -> None:
        self._fs = fs
        self._parent = parent  # held as the local backend holds the directory's fd
        self._name = name
        self._vpath = vpath
        self._node = node
        self._atomic = atomic
        self._done = False
        # REST: where the next write goes; what lies after it stays (as on disk). None: the end.
        self._pos = pos

    async def write(self, data: bytes | memoryview) -> None:
        if self._done:
            raise ValueError("write to a finished upload")
        buf = self._node.data
        pos = len(buf) if self._pos is None else self._pos
        end = pos + len(data)
        self._fs.budget.take(max(0, end - len(buf)), self._vpath)
        buf[pos:end] = data
        if self._pos is not None:
            self._pos = end
        self._node.mtime = time.time()

    def blocking_write(self) -> None:
        return None  # the tree belongs to the loop's thread: no writes from a worker thread

    async def commit(self, tail: bytes | memoryview = b"") -> None:
        if self._done:
            return
        if tail:
            await self.write(tail)
        self._done = True
        if not self._atomic:
            return
        old = self._parent.entries.get(self._name)
        if isinstance(old, _Dir):
            self._fs.budget.give(len(self._node.data))
            raise _err(errno.EISDIR, self._vpath)
        if old is not None:
            self._node.mode = old.mode  # the replaced file's permission bits, as on disk
            self._fs.budget.give(len(old.data))
        self._node.mtime = time.time()
        self._parent.entries[self._name] = self._node
        self._parent.mtime = self._node.mtime

    async def abort(self) -> None:
        if self._done:
            return
        self._done = True
        if self._atomic:
            self._fs.budget.give(len(self._node.data))


class MemoryFS:
    """A tree of files in memory behind the ``FileSystem`` interface (see the module docstring).

    ``MemoryFS()`` is an empty tree; ``max_bytes`` caps the total size of its files.
    """

    capabilities = Capabilities()

    def __init__(
        self, max_bytes: int = 0, *, _root: _Dir | None = None, _budget: _Budget | None = None
    ) -> None:
        self.root = _root if _root is not None else _Dir()
        self.budget = _budget if _budget is not None else _Budget(max_bytes)

    # -- navigation ------------------------------------------------------------------------
    def _dir(self, parts: list[str], vpath: str) -> _Dir:
        node: _File | _Dir = self.root
        for part in parts:
            if not isinstance(node, _Dir):
                raise _err(errno.ENOTDIR, vpath)
            found = node.entries.get(part)
            if found is None:
                raise _err(errno.ENOENT, vpath)
            node = found
        if not isinstance(node, _Dir):
            raise _err(errno.ENOTDIR, vpath)
        return node

    def _node(self, vpath: str) -> tuple[str, _File | _Dir]:
        parts = virtual_parts(vpath)
        if not parts:
            return "/", self.root
        parent = self._dir(parts[:-1], vpath)
        node = parent.entries.get(parts[-1])
        if node is None:
            raise _err(errno.ENOENT, vpath)
        return parts[-1], node

    def _parent(self, vpath: str) -> tuple[_Dir, str]:
        """(the parent directory, the entry's name); the name is "" for the home itself."""
        parts = virtual_parts(vpath)
        if not parts:
            return self.root, ""
        return self._dir(parts[:-1], vpath), parts[-1]

    # -- the FileSystem interface --------------------------------------------------------
    async def stat(self, vpath: str) -> FileStat:
        name, node = self._node(vpath)
        return _stat(name, node)

    async def list(self, vpath: str) -> list[FileStat]:
        directory = self._dir(virtual_parts(vpath), vpath)
        return [_stat(name, node) for name, node in sorted(directory.entries.items())]

    async def open_read(self, vpath: str, offset: int = 0) -> MemoryReader:
        if offset < 0:
            raise _err(errno.EINVAL, vpath)
        _, node = self._node(vpath)
        if isinstance(node, _Dir):
            raise _err(errno.EISDIR, vpath)
        if offset > len(node.data):
            raise _err(errno.EINVAL, vpath)
        return MemoryReader(node, offset)

    async def open_write(self, vpath: str, offset: int = 0, append: bool = False) -> MemoryWriter:
        if offset < 0 or (append and offset):
            raise _err(errno.EINVAL, vpath)
        parent, name = self._parent(vpath)
        if not name:
            raise _err(errno.EISDIR, vpath)
        old = parent.entries.get(name)
        if isinstance(old, _Dir):
            raise _err(errno.EISDIR, vpath)
        if offset == 0 and not append:
            return MemoryWriter(self, parent, name, vpath, _File(), atomic=True)
        if old is None:
            if offset:
                raise _err(errno.ENOENT, vpath)  # REST+STOR of a missing file, as on disk
            old = parent.entries[name] = _File()
            parent.mtime = old.mtime
        elif offset > len(old.data):
            raise _err(errno.EINVAL, vpath)
        # REST + STOR writes from the offset and keeps the rest of the file (README "Uploads").
        return MemoryWriter(self, parent, name, vpath, old, atomic=False, pos=offset or None)

    async def mkdir(self, vpath: str) -> None:
        parent, name = self._parent(vpath)
        if not name or name in parent.entries:
            raise _err(errno.EEXIST, vpath)
        node = parent.entries[name] = _Dir()
        parent.mtime = node.mtime

    async def rmdir(self, vpath: str) -> None:
        parent, name = self._parent(vpath)
        if not name:
            raise _err(errno.EPERM, vpath)
        node = parent.entries.get(name)
        if node is None:
            raise _err(errno.ENOENT, vpath)
        if not isinstance(node, _Dir):
            raise _err(errno.ENOTDIR, vpath)
        if node.entries:
            raise _err(errno.ENOTEMPTY, vpath)
        del parent.entries[name]
        parent.mtime = time.time()

    async def delete(self, vpath: str) -> None:
        parent, name = self._parent(vpath)
        node = parent.entries.get(name) if name else self.root
        if node is None:
            raise _err(errno.ENOENT, vpath)
        if isinstance(node, _Dir):
            raise _err(errno.EISDIR, vpath)
        del parent.entries[name]
        parent.mtime = time.time()
        self.budget.give(len(node.data))

    async def rename(self, src: str, dst: str) -> None:
        sparent, sname = self._parent(src)
        dparent, dname = self._parent(dst)
        if not sname or not dname:
            raise _err(errno.EPERM, src)
        node = sparent.entries.get(sname)
        if node is None:
            raise _err(errno.ENOENT, src)
        old = dparent.entries.get(dname)
        if old is node:
            return  # rename(2): same entry, nothing to do
        if isinstance(node, _Dir):
            if self._inside(dparent, node):
                raise _err(errno.EINVAL, dst)  # into itself
            if isinstance(old, _File):
                raise _err(errno.ENOTDIR, dst)
            if isinstance(old, _Dir) and old.entries:
                raise _err(errno.ENOTEMPTY, dst)
        elif isinstance(old, _Dir):
            raise _err(errno.EISDIR, dst)
        if isinstance(old, _File):
            self.budget.give(len(old.data))
        del sparent.entries[sname]
        dparent.entries[dname] = node
        sparent.mtime = dparent.mtime = time.time()

    @staticmethod
    def _inside(directory: _Dir, node: _Dir) -> bool:
        """Whether ``directory`` is ``node`` or lies below it."""
        if directory is node:
            return True
        return any(
            isinstance(child, _Dir) and MemoryFS._inside(directory, child)
            for child in node.entries.values()
        )

    async def set_mtime(self, vpath: str, mtime: float) -> None:
        _, node = self._node(vpath)
        node.mtime = mtime

    async def chmod(self, vpath: str, mode: int) -> None:
        _, node = self._node(vpath)
        node.mode = (node.mode & ~0o7777) | (mode & 0o777)

    async def unique_name(self, vdir: str, prefix: str) -> str:
        if not prefix or "/" in prefix or "\0" in prefix or prefix in (".", ".."):
            raise _err(errno.EINVAL, prefix)
        parts = virtual_parts(vdir)
        directory = self._dir(parts, vdir)
        for i in itertools.count(1):
            cand = f"{prefix}.{i}"
            if cand not in directory.entries:
                node = directory.entries[cand] = _File()
                directory.mtime = node.mtime
                return "/" + "/".join([*parts, cand])
        raise AssertionError("unreachable")

    def real_path(self, vpath: str) -> str | None:
        return None  # nothing on disk

    # -- views and synchronous helpers ------------------------------------------------------
    def subtree(self, vpath: str) -> MemoryFS:
        """A view rooted at directory ``vpath`` (created if missing), sharing this tree."""
        return MemoryFS(_root=self.makedirs(vpath), _budget=self.budget)

    def makedirs(self, vpath: str, mtime: float | None = None) -> _Dir:
        """Create directory ``vpath`` and its missing parents (``mkdir -p``)."""
        node = self.root
        for part in virtual_parts(vpath):
            child = node.entries.get(part)
            if child is None:
                child = node.entries[part] = _Dir()
            elif not isinstance(child, _Dir):
                raise _err(errno.ENOTDIR, vpath)
            node = child
        if mtime is not None:
            node.mtime = mtime
        return node

    def write_bytes(self, vpath: str, data: bytes, mtime: float | None = None) -> None:
        """Create or replace file ``vpath``; its parent directories are created."""
        parts = virtual_parts(vpath)
        if not parts:
            raise _err(errno.EISDIR, vpath)
        parent = self.makedirs("/" + "/".join(parts[:-1]))
        old = parent.entries.get(parts[-1])
        if isinstance(old, _Dir):
            raise _err(errno.EISDIR, vpath)
        self.budget.take(len(data) - (len(old.data) if old is not None else 0), vpath)
        node = _File(bytearray(data))
        if mtime is not None:
            node.mtime = mtime
        parent.entries[parts[-1]] = node

    def read_bytes(self, vpath: str) -> bytes:
        """The content of file ``vpath``."""
        _, node = self._node(vpath)
        if isinstance(node, _Dir):
            raise _err(errno.EISDIR, vpath)
        return bytes(node.data)

    def exists(self, vpath: str) -> bool:
        try:
            self._node(vpath)
        except OSError:
            return False
        return True

    def files(self, vpath: str = "/") -> dict[str, bytes | None]:
        """Every entry below ``vpath``: its path relative to ``vpath`` → content (None: a
        directory), in walking order."""
        out: dict[str, bytes | None] = {}

        def walk(directory: _Dir, prefix: str) -> None:
            for name, node in sorted(directory.entries.items()):
                if isinstance(node, _Dir):
                    out[prefix + name] = None
                    walk(node, prefix + name + "/")
                else:
                    out[prefix + name] = bytes(node.data)

        walk(self._dir(virtual_parts(vpath), vpath), "")
        return out
