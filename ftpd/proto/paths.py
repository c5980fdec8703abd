"""Virtual path normalisation: the first half of the jail.

A *virtual path* is what the client sees: absolute, POSIX, ``/`` being the user's home. Every path
argument is joined to the current directory and normalised lexically here, so ``..`` can never climb
above ``/`` (``/..`` is ``/``, as in a chroot). The filesystem backend then does the second half: a
realpath containment check before any access, so that symlinks cannot escape either.
"""

from __future__ import annotations

from .errors import FileUnavailable, NameNotAllowed
from .names import from_wire

__all__ = ["MAX_PATH", "MAX_NAME", "resolve", "parent", "basename", "quote_path"]

MAX_PATH = 4096  # vsftpd VSFTP_PATH_MAX
MAX_NAME = 255  # NAME_MAX on Linux


# Recent answers of ``resolve``, a pure function of its two strings: every session of a busy
# server resolves the same few (cwd, argument) pairs, and the split-and-join costs more than the
# lookup. Only short pairs are kept, and the whole table is dropped when full, so that a client
# sending endless distinct names holds at most ``_RESOLVED_MAX`` small entries.
_RESOLVED: dict[tuple[str, str], str] = {}
_RESOLVED_MAX = 4096
_RESOLVED_LEN = 256  # characters of cwd + argument


def resolve(cwd: str, arg: str) -> str:
    """Join ``arg`` (a path as the client sent it: names in their wire form, see names.py) to
    ``cwd`` and normalise. Raises 550/553 for NUL bytes or over-long names."""
    key = (cwd, arg)
    path = _RESOLVED.get(key)
    if path is not None:
        return path
    path = _resolve(cwd, arg)
    if len(cwd) + len(arg) <= _RESOLVED_LEN:
        if len(_RESOLVED) >= _RESOLVED_MAX:
            _RESOLVED.clear()
        _RESOLVED[key] = path
    return path


def _resolve(cwd: str, arg: str) -> str:
    arg = from_wire(arg)
    if "\0" in arg:
        raise FileUnavailable("Invalid file name.")
    if len(arg) > MAX_PATH:
        raise NameNotAllowed("File name too long.")
    base = "" if arg.startswith("/") else cwd
    parts: list[str] = []
    for seg in (base + "/" + arg).split("/"):
        if seg == "" or seg == ".":
            continue
        if seg == "..":
            if parts:
                parts.pop()
            continue
        if len(seg.encode("utf-8", "surrogateescape")) > MAX_NAME:
            raise NameNotAllowed("File name too long.")
        parts.append(seg)
    path = "/" + "/".join(parts)
    # The resolved path is bounded too, not only the argument: relative names from a deep cwd
    # would otherwise build trees of any depth (and paths the OS cannot open).
    if len(path) > MAX_PATH // 4 and len(path.encode("utf-8", "surrogateescape")) > MAX_PATH:
        raise NameNotAllowed("File name too long.")
    return path


def parent(vpath: str) -> str:
    """The directory containing ``vpath`` (``/`` for ``/``)."""
    i = vpath.rfind("/")
    return vpath[:i] or "/"


def basename(vpath: str) -> str:
    return vpath[vpath.rfind("/") + 1 :]


def quote_path(vpath: str) -> str:
    """A path inside a 257 reply: quoted, embedded quotes doubled (RFC 959 Appendix II)."""
    return '"' + vpath.replace('"', '""') + '"'


def strip_ls_flags(arg: str) -> str:
    """``LIST -la /dir`` → ``/dir``: leading ``-flags`` are ls options (vsftpd, ProFTPD, WinSCP)."""
    a = arg.lstrip(" ")
    while a.startswith("-"):
        sp = a.find(" ")
        if sp < 0:
            return ""
        a = a[sp + 1 :].lstrip(" ")
    return a
