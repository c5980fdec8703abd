"""The local-disk backend: a user's home directory on this machine, jailed.

Theory of operation. A virtual path (``/a/b.txt``, already normalised by ``ftpd.proto.paths``) is
mapped in two steps:

1. *Locate*: join it under the home and ``os.path.realpath`` it (the whole path when the operation
   follows the entry, e.g. RETR; the parent only when it acts on the entry itself, e.g. DELE or
   RNFR of a symlink). The result must lie inside the home (``commonpath``), else
   ``PathEscapeError``. Symlinks that stay inside the home are therefore followed; anything else is
   refused.
2. *Walk*: the real directory is opened component by component from the home, each with
   ``O_NOFOLLOW | O_DIRECTORY`` (``O_PATH`` on Linux), and the final operation uses that directory
   fd (``dir_fd=``) and never follows the last component either. If somebody swaps a directory for
   a symlink between step 1 and step 2 (a local user racing us; FTP clients cannot create
   symlinks), the walk fails with ``ENOTDIR``/``ELOOP`` instead of leaving the home.

Opens for RETR and stats try ``openat2(RESOLVE_BENEATH | RESOLVE_CACHED)`` on the loop first
(``local_nowait.py``, ``io_inline``). Other blocking calls leave the loop, one hop per operation
(a listing; a small upload's last write, close and rename). The server hands in its
``IoPool`` (``iopool.py``: loop futures, batched wake-ups, ~3x cheaper per hop than
``run_in_executor``); any ``concurrent.futures`` executor works too, through aiofiles' executor
wrapper (``aiofiles.os.wrap``). Either way the calls are our own functions on raw fds rather than
aiofiles' file objects, because those cost one hop per method and cannot open with
``dir_fd``/``O_NOFOLLOW``; readers also need the real fd for ``os.sendfile``.

Uploads are atomic by default, and out of the client's namespace: on Linux STOR opens an
anonymous file in the target's directory (``O_TMPFILE``; opened in ``local_write.py``), which
has no name until ``commit`` links it under the target's name when that is free, else under a
private name renamed over the target (``local_io.LocalWriter``), so
readers see the old file until the upload completes, a failed upload leaves the old file intact,
and a crash leaves nothing behind. Where ``O_TMPFILE`` is not supported (other filesystems and
platforms) the upload is written to ``.ftpd-upload-<random>.tmp`` instead. Either way such names
are the server's: refused to clients for every command (``_parts``), hidden from listings, and
removed at start-up by ``cleanup_stale_uploads``. With ``fsync_uploads`` (the default) commit
also flushes the file's data before the link/rename and the directory after it, in the same hop,
so that a power loss after the 226 cannot leave an empty or old file.

Known limits: a hard link inside the home to a file outside cannot be told apart from a normal
file (only an administrator can create one); an atomic upload replaces the inode, so it breaks
hard links to the target and resets its owner to the server's user (the permission bits are kept).
"""

from __future__ import annotations

import errno
import math
import os
import secrets
import stat as st
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from typing import TypeVar

from ftpd.fs import local_nowait, local_write
from ftpd.fs.base import Capabilities, FileStat, PathEscapeError, make_file_stat, virtual_parts
from ftpd.fs.iomode import IoMode
from ftpd.fs.iopool import IoPool
from ftpd.fs.listing_stream import UNIQUE, Format, LocalDir, LocalListing
from ftpd.fs.local_io import Hops, LocalReader, LocalWriter, close_quietly
from ftpd.fs.nowait import WouldBlock, openat2_no_symlinks
from ftpd.fs.temps import (
    TEMP_PREFIX,
    TEMP_SUFFIX,
    cleanup_stale_uploads,
    is_upload_temp,
    tmpfile_available,
)

__all__ = [
    "TEMP_PREFIX",
    "TEMP_SUFFIX",
    "LocalFS",
    "LocalReader",
    "LocalWriter",
    "cleanup_stale_uploads",
    "is_upload_temp",
]

T = TypeVar("T")


# O_PATH (Linux) opens a directory for use as dir_fd without needing read permission on it.
_O_PATH = getattr(os, "O_PATH", os.O_RDONLY)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_WALK_FLAGS = _O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_LIST_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO would otherwise block an executor thread until a peer shows up.
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | _O_NONBLOCK
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
# How many "<prefix>.N" names unique_name tries before switching to random suffixes.
_UNIQUE_SEQUENTIAL = 99


def _file_stat(name: str, s: os.stat_result, is_link: bool = False) -> FileStat:
    mode = s.st_mode  # one per listed entry: make_file_stat, not the dataclass's __init__
    unique = UNIQUE % (s.st_dev, s.st_ino)  # f"{:x}"'s digits at half the cost
    return make_file_stat(name, st.S_ISDIR(mode), s.st_size, s.st_mtime, mode, s.st_nlink,
                          is_link, unique)


def _mkdir_op(path: str, dir_fd: int | None = None) -> None:
    os.mkdir(path, 0o777, dir_fd=dir_fd)


class _DirFd:
    """Context manager closing a directory fd from ``LocalFS._open_dir``."""

    __slots__ = ("fd",)

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __enter__(self) -> int:
        return self.fd

    def __exit__(self, *exc: object) -> None:
        close_quietly(self.fd)


class LocalFS:
    """A user's home directory on the local disk (see the module docstring for the jail)."""

    capabilities = Capabilities()

    def __init__(self, home: str, executor: IoPool | Executor | None,
                 atomic_uploads: bool = True, fsync_uploads: bool = True,
                 mode: IoMode | None = None, anonymous_temps: bool = True) -> None:
        real = os.path.realpath(os.path.abspath(home))
        if not os.path.isdir(real):
            raise NotADirectoryError(errno.ENOTDIR, "home is not a directory", home)
        self.home = real
        # ``home/parts`` as a plain concatenation: ``os.path.join`` is Python code, and the parts
        # (``_parts``) are never empty, absolute or with a slash in them.
        self._home_slash = real if real.endswith("/") else real + "/"
        self.atomic_uploads = atomic_uploads
        # O_TMPFILE uploads (see the module docstring); False forces the named temp files.
        self.anonymous_temps = anonymous_temps and tmpfile_available()
        self.fsync_uploads = fsync_uploads  # commit = data and directory entry on disk
        self._hops = Hops(executor, mode, memory=mode is not None and mode.all_inline(real))
        self._dir = LocalDir(self._open_listing_fd, self._stat_target, _file_stat, self._hops)

    # -- path mapping (blocking; always called inside an executor job) ----------------------

    @staticmethod
    def _parts(vpath: str) -> list[str]:
        """``virtual_parts``, refusing the server's temporary upload names (550) for every
        command: a client must not store, read, rename or make a directory under one."""
        parts = virtual_parts(vpath)
        for part in parts:
            if part.startswith(TEMP_PREFIX) and part.endswith(TEMP_SUFFIX):
                raise PermissionError(errno.EACCES, "Permission denied", vpath)
        return parts

    def _inside(self, real: str) -> bool:
        return real == self.home or os.path.commonpath([self.home, real]) == self.home

    def _check(self, real: str, vpath: str) -> str:
        if not self._inside(real):
            raise PathEscapeError(vpath)
        return real

    def _locate(self, vpath: str, *, follow: bool) -> tuple[str, str]:
        """Map ``vpath`` to (real directory inside the home, name in it).

        ``follow``: resolve the entry itself too (symlinks inside the home are followed); else
        only its parent, so that the operation acts on a symlink rather than on its target.
        The name is ``""`` for the home itself.
        """
        parts = self._parts(vpath)
        if not parts:
            return self.home, ""
        if not follow:
            parent = os.path.realpath(os.path.join(self.home, *parts[:-1]))
            return self._check(parent, vpath), parts[-1]
        real = self._check(os.path.realpath(os.path.join(self.home, *parts)), vpath)
        if real == self.home:
            return self.home, ""
        parent, name = os.path.split(real)
        return parent, name

    def _walk_fast(self, comps: list[str], final_flags: int = _WALK_FLAGS) -> int | None:
        """The directory ``home/comps`` opened by walking down with O_NOFOLLOW, or None if that
        fails for any reason (a symlink on the way, a missing entry...).

        The fast path of every operation: when no symlink is involved, the lexical path *is*
        the real path, so ``realpath`` (an ``lstat`` per component, in Python) and the jail
        check can be skipped. On None the caller takes the general path (``_locate``), which
        follows symlinks inside the home and produces the right error.

        Each system call here costs far more than itself: it releases the GIL, and taking it back
        from a busy event loop is a futex wait and a context switch (perf: ~70% of the IO
        thread's CPU). So an entry directly in the home is opened by its full path in one call:
        ``home`` is the real path (resolved at start-up, not under the client's control) and
        O_NOFOLLOW covers the one component below it."""
        if len(comps) <= 1:
            try:
                return os.open(self._home_slash + comps[0] if comps else self.home, final_flags)
            except OSError:
                return None
        if self._hops.memory:
            # A home with no disk runs every call on the loop (memfs.py), where the server keeps
            # the home open (homefds.py): one openat2 that allows no symlink anywhere beneath it
            # is the whole walk (two levels down are five calls otherwise).
            try:
                hfd = self._hops.mode.homes.get(self.home, time.monotonic())
            except (OSError, WouldBlock):
                hfd = -1  # the walk below opens it itself
            if hfd >= 0:
                try:
                    return openat2_no_symlinks(hfd, "/".join(comps), final_flags)
                except WouldBlock:
                    pass  # no openat2 here: walk
                except OSError:
                    return None  # a symlink on the way, a missing entry: as the walk says
        try:
            fd = os.open(self.home, _WALK_FLAGS)
        except OSError:
            return None
        last = len(comps) - 1
        for i, comp in enumerate(comps):
            try:
                nfd = os.open(comp, final_flags if i == last else _WALK_FLAGS, dir_fd=fd)
            except OSError:
                return None
            finally:
                os.close(fd)
            fd = nfd
        return fd

    def _open_dir(self, real_dir: str, final_flags: int = _WALK_FLAGS) -> _DirFd:
        """Open ``real_dir`` (inside the home) by walking down from the home with O_NOFOLLOW."""
        rel = os.path.relpath(real_dir, self.home)
        comps = [] if rel == "." else rel.split(os.sep)
        if ".." in comps:  # cannot happen after _check; never walk upwards whatever happens
            raise PathEscapeError(real_dir)
        fd = os.open(self.home, final_flags if not comps else _WALK_FLAGS)
        for i, comp in enumerate(comps):
            flags = final_flags if i == len(comps) - 1 else _WALK_FLAGS
            try:
                nfd = os.open(comp, flags, dir_fd=fd)
            finally:
                os.close(fd)
            fd = nfd
        return _DirFd(fd)

    def _stat_at(self, real_dir: str, name: str) -> os.stat_result:
        """lstat of ``name`` in ``real_dir`` (the home itself when name is "")."""
        if not name:
            return os.stat(self.home)
        with self._open_dir(real_dir) as dfd:
            return os.stat(name, dir_fd=dfd, follow_symlinks=False)

    def _stat_target(self, real_dir: str, name: str, vpath: str) -> os.stat_result:
        """stat of what the symlink ``real_dir/name`` points to, if that is inside the home."""
        real = self._check(os.path.realpath(os.path.join(real_dir, name)), vpath)
        parent, tname = (self.home, "") if real == self.home else os.path.split(real)
        s = self._stat_at(parent, tname)
        if st.S_ISLNK(s.st_mode):  # realpath stopped at a loop
            raise OSError(errno.ELOOP, "Too many levels of symbolic links", vpath)
        return s

    # -- blocking operations ------------------------------------------------------------------

    def _stat(self, vpath: str) -> FileStat:
        parts = self._parts(vpath)
        if len(parts) == 1:
            try:  # one call for an entry directly in the home (see _walk_fast)
                s = os.stat(self._home_slash + parts[0], follow_symlinks=False)
                if not st.S_ISLNK(s.st_mode):
                    return _file_stat(parts[0], s)
            except OSError:
                pass
        dfd = self._walk_fast(parts[:-1]) if len(parts) > 1 else None
        if dfd is not None:
            try:
                s = os.stat(parts[-1], dir_fd=dfd, follow_symlinks=False)
                if not st.S_ISLNK(s.st_mode):
                    return _file_stat(parts[-1], s)
            except OSError:
                pass  # the general path gives the right error
            finally:
                os.close(dfd)
        parent, name = self._locate(vpath, follow=False)
        if not name:
            return _file_stat("/", os.stat(self.home))
        s = self._stat_at(parent, name)
        if not st.S_ISLNK(s.st_mode):
            return _file_stat(name, s)
        return _file_stat(name, self._stat_target(parent, name, vpath), is_link=True)

    entry_stat = staticmethod(_file_stat)

    def _open_listing_fd(self, vpath: str) -> tuple[int, str]:
        """The directory ``vpath`` opened for ``scandir`` (jailed): (fd, its real path)."""
        parts = self._parts(vpath)
        fast = self._walk_fast(parts, _LIST_FLAGS)
        if fast is not None:
            return fast, self._home_slash + "/".join(parts) if parts else self.home
        parent, name = self._locate(vpath, follow=True)
        real = os.path.join(parent, name) if name else self.home
        return self._open_dir(real, _LIST_FLAGS).fd, real

    def _list(self, vpath: str) -> list[FileStat]:
        listing = LocalListing(self._dir, vpath, None)
        try:
            out = listing.entries_sync(1 << 62)
        finally:
            listing.close_sync()
        out.sort(key=lambda f: f.name)
        return out

    def _open_read(self, vpath: str, offset: int) -> LocalReader:
        if offset < 0:
            raise OSError(errno.EINVAL, "negative offset")
        parts = self._parts(vpath)
        fd = -1
        if len(parts) == 1:
            try:
                fd = os.open(self._home_slash + parts[0], _READ_FLAGS)  # see _walk_fast
            except OSError:
                pass  # e.g. ELOOP for a symlink: the general path follows it if it may
        elif parts:
            dfd = self._walk_fast(parts[:-1])
            if dfd is not None:
                try:
                    fd = os.open(parts[-1], _READ_FLAGS, dir_fd=dfd)
                except OSError:
                    pass
                finally:
                    os.close(dfd)
        if fd < 0:
            parent, name = self._locate(vpath, follow=True)
            if not name:
                raise IsADirectoryError(errno.EISDIR, "Is a directory", vpath)
            with self._open_dir(parent) as dfd:
                fd = os.open(name, _READ_FLAGS, dir_fd=dfd)
        try:
            s = os.fstat(fd)
            if st.S_ISDIR(s.st_mode):
                raise IsADirectoryError(errno.EISDIR, "Is a directory", vpath)
            if not st.S_ISREG(s.st_mode):
                raise local_write.not_regular(vpath)
            if offset > s.st_size:
                raise OSError(errno.EINVAL, "Restart offset beyond end of file", vpath)
            if offset:
                os.lseek(fd, offset, os.SEEK_SET)  # a fresh fd is at 0 already: no call then
            # O_NONBLOCK stays: it means nothing for a regular file, and clearing it would cost
            # two more calls.
        except BaseException:
            os.close(fd)
            raise
        return LocalReader(fd, s.st_size, offset, self._hops)

    def _open_write(self, vpath: str, offset: int, append: bool) -> LocalWriter:
        return local_write.open_write(self, vpath, offset, append)  # blocking; see local_write

    def _entry_op_fast(self, parts: list[str], op: Callable[..., None]) -> bool:
        """Run ``op(name, dir_fd=...)`` on an entry whose parent is reached without a symlink
        (see ``_walk_fast``); False when the general path must do it. ``op`` never follows the
        entry itself (mkdir, rmdir, unlink), so its errors are the right answer as they are."""
        if len(parts) == 1:
            op(self._home_slash + parts[0])
            return True
        dfd = self._walk_fast(parts[:-1]) if parts else None
        if dfd is None:
            return False
        try:
            op(parts[-1], dir_fd=dfd)
        finally:
            os.close(dfd)
        return True

    def _mkdir(self, vpath: str) -> None:
        if self._entry_op_fast(self._parts(vpath), _mkdir_op):
            return
        parent, name = self._locate(vpath, follow=False)
        if not name:
            raise FileExistsError(errno.EEXIST, "File exists", vpath)
        with self._open_dir(parent) as dfd:
            os.mkdir(name, 0o777, dir_fd=dfd)

    def _rmdir(self, vpath: str) -> None:
        if self._entry_op_fast(self._parts(vpath), os.rmdir):
            return
        parent, name = self._locate(vpath, follow=False)
        if not name:
            raise PermissionError(errno.EPERM, "Cannot remove the home directory", vpath)
        with self._open_dir(parent) as dfd:
            os.rmdir(name, dir_fd=dfd)

    def _delete(self, vpath: str) -> None:
        # Acts on the entry itself: deleting a symlink removes the link, never its target.
        if self._entry_op_fast(self._parts(vpath), os.unlink):
            return
        parent, name = self._locate(vpath, follow=False)
        if not name:
            raise IsADirectoryError(errno.EISDIR, "Is a directory", vpath)
        with self._open_dir(parent) as dfd:
            os.unlink(name, dir_fd=dfd)  # a directory gives EISDIR on Linux

    def _rename(self, src: str, dst: str) -> None:
        sparent, sname = self._locate(src, follow=False)
        dparent, dname = self._locate(dst, follow=False)
        if not sname or not dname:
            raise PermissionError(errno.EPERM, "Cannot rename the home directory", src)
        with self._open_dir(sparent) as sfd, self._open_dir(dparent) as dfd:
            os.rename(sname, dname, src_dir_fd=sfd, dst_dir_fd=dfd)

    def _set_mtime(self, vpath: str, mtime: float) -> None:
        parent, name = self._locate(vpath, follow=True)
        # Whole seconds and fraction apart: ``mtime * 1e9`` would lose ~100 ns to float rounding.
        seconds = math.floor(mtime)
        mtime_ns = seconds * 1_000_000_000 + round((mtime - seconds) * 1_000_000_000)
        if not name:
            s = os.stat(self.home)
            os.utime(self.home, ns=(s.st_atime_ns, mtime_ns))
            return
        with self._open_dir(parent) as dfd:
            s = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            if st.S_ISLNK(s.st_mode):
                raise OSError(errno.ELOOP, "Too many levels of symbolic links", vpath)
            os.utime(name, ns=(s.st_atime_ns, mtime_ns), dir_fd=dfd, follow_symlinks=False)

    def _chmod(self, vpath: str, mode: int) -> None:
        parent, name = self._locate(vpath, follow=True)
        mode &= 0o777
        if not name:
            os.chmod(self.home, mode)
            return
        with self._open_dir(parent) as dfd:
            try:
                # glibc emulates AT_SYMLINK_NOFOLLOW via O_PATH; CPython raises ValueError or
                # NotImplementedError when it cannot (e.g. the entry became a symlink).
                os.chmod(name, mode, dir_fd=dfd, follow_symlinks=False)
            except (NotImplementedError, ValueError):
                s = os.stat(name, dir_fd=dfd, follow_symlinks=False)
                if st.S_ISLNK(s.st_mode):
                    raise OSError(errno.ELOOP, "Too many levels of symbolic links", vpath) from None
                os.chmod(name, mode, dir_fd=dfd)

    def _unique_name(self, vdir: str, prefix: str) -> str:
        if not prefix or "/" in prefix or "\0" in prefix or prefix in (".", ".."):
            raise OSError(errno.EINVAL, "invalid file name prefix", prefix)
        parts = self._parts(vdir)
        parent, name = self._locate(vdir, follow=True)
        real = os.path.join(parent, name) if name else self.home
        candidates = [f"{prefix}.{i}" for i in range(1, _UNIQUE_SEQUENTIAL + 1)]
        candidates += [f"{prefix}.{secrets.token_hex(6)}" for _ in range(16)]
        with self._open_dir(real) as dfd:
            for cand in candidates:
                try:
                    fd = os.open(cand, _NEW_FILE_FLAGS, 0o666, dir_fd=dfd)
                except FileExistsError:
                    continue
                os.close(fd)
                return "/" + "/".join([*parts, cand])
        raise FileExistsError(errno.EEXIST, "no unique name available", vdir)

    def real_path(self, vpath: str) -> str | None:  # events: lexical, no symlink resolved
        return os.path.join(self.home, *self._parts(vpath))
    # -- the async interface --------------------------------------------------------------

    def stat(self, vpath: str) -> Awaitable[FileStat]:
        """Facts about one entry; symlinks inside the home are followed (``is_link`` set)."""
        return local_nowait.stat(self, vpath)  # inline from the caches, else self._stat in a hop

    def list(self, vpath: str) -> Awaitable[list[FileStat]]:
        """All entries of a directory sorted by name, in one hop."""
        return self._hops.once(self._list, vpath)

    def open_listing(self, vpath: str, format: Format) -> Awaitable[LocalListing]:
        """A streamed listing of the directory ``vpath``: nothing is read until its first
        ``read`` (see ``listing_stream``)."""
        return self._hops.done(LocalListing(self._dir, vpath, format))

    def open_read(self, vpath: str, offset: int = 0) -> Awaitable[LocalReader]:
        """Open a regular file for RETR at ``offset`` (``EINVAL`` beyond the end)."""
        return local_nowait.open_read(self, vpath, offset)  # else self._open_read in a hop

    def open_write(self, vpath: str, offset: int = 0, append: bool = False
                   ) -> Awaitable[LocalWriter]:
        """Start an upload; see ``LocalWriter`` for atomic versus in-place."""
        return self._hops.run_open(
            self._open_write, lambda w: w.finish_sync(False), vpath, offset, append
        )

    def mkdir(self, vpath: str) -> Awaitable[None]:
        return self._hops.once(self._mkdir, vpath)

    def rmdir(self, vpath: str) -> Awaitable[None]:
        return self._hops.once(self._rmdir, vpath)

    def delete(self, vpath: str) -> Awaitable[None]:
        """Delete a file or a symlink (the link itself); a directory gives ``EISDIR``."""
        return self._hops.once(self._delete, vpath)

    def rename(self, src: str, dst: str) -> Awaitable[None]:
        """Rename an entry (a symlink is moved as a link); an existing file ``dst`` is replaced."""
        return self._hops.once(self._rename, src, dst)

    def set_mtime(self, vpath: str, mtime: float) -> Awaitable[None]:
        return self._hops.once(self._set_mtime, vpath, mtime)

    def chmod(self, vpath: str, mode: int) -> Awaitable[None]:
        return self._hops.once(self._chmod, vpath, mode)

    def unique_name(self, vdir: str, prefix: str) -> Awaitable[str]:
        """Create an empty ``<prefix>.N`` in ``vdir`` and return its virtual path (STOU)."""
        return self._hops.once(self._unique_name, vdir, prefix)
