"""The local backend's uploads, opened: atomic into a temp file, or in place (blocking; the
caller runs it in a hop, ``LocalFS.open_write``).

An atomic upload (``atomic_uploads``, a plain STOR) is written to an anonymous ``O_TMPFILE`` in
the target's directory, or to a named temp file where the filesystem has none (``temps.py``), and
``LocalWriter.commit`` gives it the target's name. The target's directory is reached without
``realpath`` when no symlink is on the way (``LocalFS._walk_fast``), else by the general path
with the jail check (``LocalFS._locate``). REST + STOR, APPE and ``atomic_uploads = false`` write
in place. Either way only a regular file is written to: a directory, a symlink as the entry
itself, a FIFO or a device is refused before anything is created.
"""

from __future__ import annotations

import errno
import os
import stat as st
from typing import Protocol

from ftpd.fs.local_io import Hops, LocalWriter, close_quietly
from ftpd.fs.temps import named_temp, open_anonymous

__all__ = ["open_write", "not_regular"]

_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_WRITE_FLAGS = os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC | _O_NONBLOCK


class LocalFS(Protocol):
    """What opening an upload needs of ``ftpd.fs.local.LocalFS`` (a Protocol: no import cycle)."""

    atomic_uploads: bool
    anonymous_temps: bool
    fsync_uploads: bool
    _hops: Hops

    def _parts(self, vpath: str) -> list[str]: ...

    def _walk_fast(self, comps: list[str]) -> int | None: ...

    def _locate(self, vpath: str, *, follow: bool) -> tuple[str, str]: ...

    def _open_dir(self, real_dir: str) -> _HasFd: ...


class _HasFd(Protocol):
    fd: int


def not_regular(name: str) -> OSError:
    # FIFOs, sockets and devices are refused like a permission problem: 550, nothing opened.
    return PermissionError(errno.EACCES, "Not a regular file", name)


def open_write(fs: LocalFS, vpath: str, offset: int, append: bool) -> LocalWriter:
    """``LocalFS._open_write`` (blocking): atomic uploads into a temp file (``O_TMPFILE``, else a
    named one), REST/APPE and ``atomic_uploads = false`` in place."""
    if offset < 0 or (append and offset):
        raise OSError(errno.EINVAL, "invalid offset for upload")
    if fs.atomic_uploads and offset == 0 and not append:
        writer = _open_temp_fast(fs, vpath)
        if writer is not None:
            return writer
    parent, name = fs._locate(vpath, follow=True)
    if not name:
        raise IsADirectoryError(errno.EISDIR, "Is a directory", vpath)
    dfd = fs._open_dir(parent).fd  # handed to the writer (atomic) or closed below
    try:
        if fs.atomic_uploads and offset == 0 and not append:
            return _open_temp(fs, dfd, name, vpath)
        return _open_in_place(fs, dfd, name, vpath, offset, append)
    except BaseException:
        close_quietly(dfd)
        raise


def _open_temp_fast(fs: LocalFS, vpath: str) -> LocalWriter | None:
    """``_open_temp`` without ``realpath`` when no symlink is involved
    (see ``LocalFS._walk_fast``)."""
    parts = fs._parts(vpath)
    dfd = fs._walk_fast(parts[:-1]) if parts else None
    if dfd is None:
        return None
    try:
        old = os.stat(parts[-1], dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        old = None
    except OSError:
        old = None
        parts = []  # let the general path produce the error
    if not parts or (old is not None and st.S_ISLNK(old.st_mode)):
        close_quietly(dfd)
        return None  # e.g. STOR onto a symlink: the general path follows it if it may
    try:
        return _open_temp_over(fs, dfd, parts[-1], vpath, old)  # the writer owns dfd
    except BaseException:
        close_quietly(dfd)
        raise


def _open_temp(fs: LocalFS, dfd: int, name: str, vpath: str) -> LocalWriter:
    try:
        old: os.stat_result | None = os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        old = None
    return _open_temp_over(fs, dfd, name, vpath, old)


def _open_temp_over(
    fs: LocalFS, dfd: int, name: str, vpath: str, old: os.stat_result | None
) -> LocalWriter:
    """``_open_temp`` given the target's ``lstat`` (None: no such file), as the caller just
    took it (``_open_temp_fast``: one ``stat`` per upload, not two)."""
    if old is not None:
        if st.S_ISDIR(old.st_mode):
            raise IsADirectoryError(errno.EISDIR, "Is a directory", vpath)
        if st.S_ISLNK(old.st_mode):
            raise OSError(errno.ELOOP, "Too many levels of symbolic links", vpath)
        if not st.S_ISREG(old.st_mode):
            raise not_regular(vpath)
    fd = -1
    temp: str | None = None
    if fs.anonymous_temps:
        fd = open_anonymous(dfd)  # -1: this filesystem has no O_TMPFILE
    if fd < 0:
        fd, temp = named_temp(dfd, vpath)
    if old is not None:
        try:  # keep the replaced file's permission bits
            os.fchmod(fd, st.S_IMODE(old.st_mode))
        except OSError:
            pass
    # The writer owns both fds from here on (the directory fd is closed by commit/abort).
    return LocalWriter(fd, fs._hops, dir_fd=dfd, temp=temp, target=name,
                       anonymous=temp is None, sync=fs.fsync_uploads)


def _open_in_place(
    fs: LocalFS, dfd: int, name: str, vpath: str, offset: int, append: bool
) -> LocalWriter:
    flags = _WRITE_FLAGS
    if append:
        flags |= os.O_APPEND | os.O_CREAT
    elif offset == 0:
        flags |= os.O_CREAT  # truncated below, once we know it is a regular file
    fd = os.open(name, flags, 0o666, dir_fd=dfd)
    try:
        s = os.fstat(fd)
        if not st.S_ISREG(s.st_mode):
            raise not_regular(vpath)
        os.set_blocking(fd, True)
        if not append:
            if offset > s.st_size:
                raise OSError(errno.EINVAL, "Restart offset beyond end of file", vpath)
            if offset == 0:
                os.ftruncate(fd, 0)  # a plain STOR (atomic uploads off) replaces the file
            else:
                # REST n + STOR writes from n and keeps the rest of the file, before and
                # after what it writes (vsftpd, ProFTPD, pyftpdlib; see README "REST").
                os.lseek(fd, offset, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    if fs.fsync_uploads and flags & os.O_CREAT:
        # The entry may be new: the writer syncs the directory too on commit.
        return LocalWriter(fd, fs._hops, dir_fd=dfd, sync=True)
    os.close(dfd)
    return LocalWriter(fd, fs._hops, sync=fs.fsync_uploads)
