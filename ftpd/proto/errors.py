"""FTP errors and the one errno → reply table.

Handlers raise ``FtpError`` subclasses; exactly one place (``Session``) turns them into replies. An
``OSError`` from the filesystem is mapped by ``reply_for_oserror``; its text never shows a real path.
"""

from __future__ import annotations

import errno

from .replies import Reply


class FtpError(Exception):
    """An error answered with ``code text``."""

    code = 451

    def __init__(self, text: str, code: int | None = None) -> None:
        super().__init__(text)
        self.text = text
        if code is not None:
            self.code = code

    def reply(self) -> Reply:
        return Reply(self.code, self.text)


class ArgumentError(FtpError):
    """501: the arguments are invalid."""

    code = 501


class NotImplementedErr(FtpError):
    """502: the command is known but not implemented."""

    code = 502


class BadSequence(FtpError):
    """503: the command is not allowed in this state."""

    code = 503


class ParamNotImplemented(FtpError):
    """504: the command is implemented but not with this parameter."""

    code = 504


class NotLoggedIn(FtpError):
    """530: a login is needed."""

    code = 530


class FileUnavailable(FtpError):
    """550: no such file, no access, or not allowed."""

    code = 550


class NameNotAllowed(FtpError):
    """553: the file name is not allowed."""

    code = 553


class CannotOpenData(FtpError):
    """425: the data connection could not be opened."""

    code = 425


class StorageError(OSError):
    """Raised by a storage backend (or an authenticator's filesystem) that wants a reply of its
    own choosing, e.g. ``StorageError(452, "Bucket full.")``: any 4xx/5xx code, one line of text.
    It is an ``OSError`` (errno ``EIO``), so it travels where filesystem errors do."""

    def __init__(self, code: int, text: str) -> None:
        if not 400 <= code <= 599:
            raise ValueError(f"StorageError needs a 4xx or 5xx reply code, not {code}")
        text = " ".join(text.split()) or "Requested action not taken."  # one line, no CR/LF
        super().__init__(errno.EIO, text)
        self.code = code
        self.text = text


# One table: errno -> (code, text). RFC 959 §4.2 codes; 452 is "insufficient storage" (temporary),
# 552 "exceeded storage allocation" (quota).
_ERRNO_REPLIES: dict[int, tuple[int, str]] = {
    errno.ENOENT: (550, "No such file or directory."),
    errno.ENOTDIR: (550, "Not a directory."),
    errno.EISDIR: (550, "Is a directory."),
    errno.EACCES: (550, "Permission denied."),
    errno.EPERM: (550, "Operation not permitted."),
    errno.ELOOP: (550, "Too many levels of symbolic links."),
    errno.EEXIST: (550, "File exists."),
    errno.ENOTEMPTY: (550, "Directory not empty."),
    errno.ENAMETOOLONG: (553, "File name too long."),
    errno.EINVAL: (550, "Invalid argument."),
    errno.EXDEV: (550, "Cannot move across devices."),
    errno.EROFS: (550, "Read-only file system."),
    errno.EBUSY: (450, "Resource busy."),
    errno.ENOSPC: (452, "Insufficient storage space."),
    errno.EDQUOT: (552, "Disk quota exceeded."),
    errno.EFBIG: (552, "File too large."),
    # A storage backend that cannot do this (object storage: MFMT, APPE, REST+STOR).
    errno.EOPNOTSUPP: (504, "Not supported by this storage."),
}


def reply_for_oserror(exc: OSError) -> Reply:
    """The reply for a filesystem error; never reveals a real path."""
    if isinstance(exc, StorageError):
        return Reply(exc.code, exc.text)
    code, text = _ERRNO_REPLIES.get(exc.errno or 0, (451, "Local error in processing."))
    return Reply(code, text)
