"""The local backend's temporary upload files: names, O_TMPFILE, and the start-up cleanup.

An atomic upload is written to a file that clients cannot see or touch until it is complete. On
Linux that file is anonymous (``O_TMPFILE`` in the target's directory: no name at all, and
nothing left after a crash); ``commit`` links it under the target's name when no file has it
(``linkat`` through ``/proc/self/fd``: the complete file appears in one call), else gives it a
private ``.ftpd-upload-<random>.tmp`` name (``linkat`` cannot replace a name) and renames that over
the target. Elsewhere (filesystems without ``O_TMPFILE``, other platforms) the upload is written under
such a name from the start. Those names are the server's alone: ``LocalFS`` refuses them to
clients, listings hide them, and ``cleanup_stale_uploads`` removes what a crash left behind.
"""

from __future__ import annotations

import errno
import os
import secrets

__all__ = [
    "TEMP_PREFIX",
    "TEMP_SUFFIX",
    "cleanup_stale_uploads",
    "is_upload_temp",
    "link_anonymous",
    "link_new",
    "named_temp",
    "open_anonymous",
    "tmpfile_available",
]

TEMP_PREFIX = ".ftpd-upload-"
TEMP_SUFFIX = ".tmp"
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
# An upload without a name until commit links it through /proc/self/fd (see LocalWriter).
_O_TMPFILE: int = getattr(os, "O_TMPFILE", 0) if os.path.isdir("/proc/self/fd") else 0
_TMPFILE_FLAGS = _O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC
# What a filesystem (or an old kernel) without O_TMPFILE answers: use a named temp file then.
_NO_TMPFILE = frozenset({errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL})


def tmpfile_available() -> bool:
    """Whether uploads can be anonymous here (Linux with /proc mounted)."""
    return bool(_O_TMPFILE)


def open_anonymous(dfd: int) -> int:
    """An anonymous file for writing in directory ``dfd``, or -1 when its filesystem has no
    ``O_TMPFILE`` (other errors, e.g. EACCES or EROFS, are the upload's)."""
    try:
        return os.open(".", _TMPFILE_FLAGS, 0o666, dir_fd=dfd)  # umask applies
    except OSError as exc:
        if exc.errno in _NO_TMPFILE:
            return -1
        raise


def link_new(fd: int, dir_fd: int, name: str) -> bool:
    """Give the O_TMPFILE file ``fd`` the name ``name`` in ``dir_fd`` if nothing has it yet:
    True. False if the name exists (``linkat`` never replaces a name: then ``link_anonymous``
    and a rename over it)."""
    try:
        os.link(f"/proc/self/fd/{fd}", name, dst_dir_fd=dir_fd, follow_symlinks=True)
    except FileExistsError:
        return False
    return True


def link_anonymous(fd: int, dir_fd: int) -> str:
    """Give the O_TMPFILE file ``fd`` a private name in ``dir_fd``; returns the name."""
    for _ in range(16):
        name = f"{TEMP_PREFIX}{secrets.token_hex(8)}{TEMP_SUFFIX}"
        try:
            os.link(f"/proc/self/fd/{fd}", name, dst_dir_fd=dir_fd, follow_symlinks=True)
            return name
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "cannot name the upload")


def named_temp(dfd: int, vpath: str) -> tuple[int, str]:
    """A new ``.ftpd-upload-<random>.tmp`` in ``dfd``: (fd, name)."""
    for _ in range(16):
        temp = f"{TEMP_PREFIX}{secrets.token_hex(8)}{TEMP_SUFFIX}"
        try:
            return os.open(temp, _NEW_FILE_FLAGS, 0o666, dir_fd=dfd), temp  # umask applies
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "cannot create a temporary file", vpath)


def is_upload_temp(name: str) -> bool:
    """True for the names of in-progress atomic uploads (hidden from listings)."""
    return name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX)


def cleanup_stale_uploads(home: str) -> int:
    """Delete upload temp files anywhere under ``home``; return how many. Blocking.

    Meant for start-up, before any session runs (a temp file of a live upload would be deleted
    too). Symlinked directories are not descended into, so nothing outside the home is touched.
    """
    count = 0
    # An explicit stack, not os.walk: os.walk recurses once per level, and a client with MKD can
    # build a tree deeper than Python's recursion limit (1,100 levels: RecursionError at start-up
    # on 3.11). Symlinks are never followed (scandir's is_dir(follow_symlinks=False)).
    stack = [os.path.realpath(home)]
    while stack:
        top = stack.pop()
        try:
            with os.scandir(top) as it:
                for entry in it:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        elif is_upload_temp(entry.name) and entry.is_file(follow_symlinks=False):
                            os.unlink(entry.path)
                            count += 1
                    except FileNotFoundError:
                        pass
        except OSError:
            continue  # unreadable, vanished or too deep a path: nothing of ours can be there
    return count
