"""File, directory, listing and transfer commands (a mixin of ``Session``).

Every handler here gets the argument and the path already resolved and permission-checked by the
generic check; handlers that touch the filesystem are generators yielding ``FsCall`` requests.
"""

from __future__ import annotations

import errno
import time
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from .errors import (
    ArgumentError,
    FileUnavailable,
    FtpError,
    NameNotAllowed,
    NotImplementedErr,
    ParamNotImplemented,
)
from .listing import (
    LineFormat,
    ListingKind,
    list_line,
    mdtm_time,
    mlsx_facts,
    nlst_line,
    parse_time_val,
)
from .paths import basename, parent, quote_path, resolve, strip_ls_flags
from .replies import Reply
from .requests import FsCall, ReadListing, StartTransfer, Transfer

if TYPE_CHECKING:
    from .session import Session

__all__ = ["FileOps"]

Gen = Generator[Any, Any, Any]


class FileOps:
    """Handlers for CWD … STOU. Mixed into ``Session``; uses its state attributes."""

    __slots__ = ()

    @staticmethod
    def fs(method: str, *args: Any) -> FsCall:
        return FsCall(method, *args)

    # ------------------------------------------------------------------ directories
    def ftp_CWD(self: Session, arg: str, path: str) -> Gen:
        if not arg.strip():
            path = "/"  # no argument: the home directory (pyftpdlib, wu-ftpd, Pure-FTPd)
        st = yield self.fs("stat", path)
        if not st.is_dir:
            raise FileUnavailable("Not a directory.")
        self.cwd = path
        return Reply(250, f"Directory successfully changed to {quote_path(path)}.")

    def ftp_CDUP(self: Session, arg: str) -> Gen:
        target = parent(self.cwd)
        yield self.fs("stat", target)  # the parent may have been removed meanwhile: 550
        self.cwd = target
        # RFC 959 lists 200, but clients (jlaffaye/ftp for rclone) require 250, as vsftpd sends.
        return Reply(250, f"Directory successfully changed to {quote_path(target)}.")

    def ftp_PWD(self: Session, arg: str) -> Reply:
        return self.pwd_reply()

    def ftp_MKD(self: Session, arg: str, path: str) -> Gen:
        if path == "/":
            raise FileUnavailable("File exists.")
        yield self.fs("mkdir", path)
        return Reply(257, f"{quote_path(path)} directory created.")

    def ftp_RMD(self: Session, arg: str, path: str) -> Gen:
        if path == "/":
            raise FileUnavailable("Can't remove root directory.")
        yield self.fs("rmdir", path)
        if self.cwd == path or self.cwd.startswith(path + "/"):
            self.cwd = parent(path)
        return Reply(250, "Directory removed.")

    def ftp_DELE(self: Session, arg: str, path: str) -> Gen:
        if path == "/":
            raise FileUnavailable("Is a directory.")
        yield self.fs("delete", path)
        return Reply(250, "File removed.")

    def ftp_RNFR(self: Session, arg: str, path: str) -> Gen:
        if path == "/":
            raise FileUnavailable("Can't rename home directory.")
        yield self.fs("stat", path)
        self.rename_from = path
        return Reply(350, "Ready for destination name.")

    def ftp_RNTO(self: Session, arg: str, path: str) -> Gen:
        src = self.rename_from
        self.rename_from = None
        if path == "/":
            raise NameNotAllowed("Can't overwrite home directory.")
        yield self.fs("rename", src, path)
        return Reply(250, "Rename successful.")

    # ------------------------------------------------------------------ file facts (RFC 3659)
    def ftp_SIZE(self: Session, arg: str, path: str) -> Gen:
        if self.ascii:
            # The size in TYPE A depends on the content (RFC 3659 §4); computing it costs a full read.
            raise FileUnavailable("SIZE not allowed in ASCII mode.")
        st = yield self.fs("stat", path)
        if st.is_dir:
            raise FileUnavailable("Not a regular file.")
        return Reply(213, str(st.size))

    def ftp_MDTM(self: Session, arg: str, path: str) -> Gen:
        st = yield self.fs("stat", path)
        if st.is_dir:
            raise FileUnavailable("Not a regular file.")
        return Reply(213, mdtm_time(st.mtime))

    def ftp_MFMT(self: Session, arg: str) -> Gen:
        if not self.caps.set_mtime:
            raise NotImplementedErr("MFMT not supported by this storage.")
        value, _, name = arg.strip().partition(" ")
        if not name:
            raise ArgumentError("Syntax: MFMT <YYYYMMDDHHMMSS> <path>.")
        mtime = parse_time_val(value)
        if mtime is None:
            # draft-somers-ftp-mfxx §3.1: an invalid time value MUST be 501.
            raise ArgumentError("Invalid time value.")
        path = resolve(self.cwd, name)
        yield self.fs("set_mtime", path, mtime)
        return Reply(213, f"Modify={mdtm_time(mtime)}; {path}")

    def ftp_MLST(self: Session, arg: str, path: str) -> Gen:
        st = yield self.fs("stat", path)
        facts = mlsx_facts(st, self.mlst_facts, self.fact_perms())
        # RFC 3659 §7.2: the entry line starts with one space; TVFS: the full virtual path.
        return Reply(250, f"Listing {path}", f"{facts} {path}", "End.")

    def fact_perms(self: Session) -> str:
        """Permission letters for the MLSx perm fact: the user's, less what the storage cannot."""
        return self.perms if self.caps.resume_write else self.perms.replace("a", "")

    # ------------------------------------------------------------------ listings
    # A directory's listing is a stream (ftpd.fs.listing_stream): opened here without reading
    # anything, read and formatted in batches by the IO layer once the data connection exists.
    def ftp_LIST(self: Session, arg: str, path: str) -> Gen:
        self.require_data_setup()
        st = yield self.fs("stat", path)
        fmt = LineFormat(ListingKind.LIST, time.time())
        if not st.is_dir:
            return (yield from self._send_listing("LIST", path, payload=fmt([st])))
        return (yield from self._send_listing("LIST", path, fmt))

    def ftp_NLST(self: Session, arg: str, path: str) -> Gen:
        self.require_data_setup()
        st = yield self.fs("stat", path)
        if not st.is_dir:
            # A file: its name as the client gave it (vsftpd), without ls flags.
            name = nlst_line(strip_ls_flags(arg).strip() or st.name) + "\r\n"
            payload = name.encode("utf-8", "surrogateescape")
            return (yield from self._send_listing("NLST", path, payload=payload))
        return (yield from self._send_listing("NLST", path, LineFormat(ListingKind.NLST)))

    def ftp_MLSD(self: Session, arg: str, path: str) -> Gen:
        self.require_data_setup()
        st = yield self.fs("stat", path)
        if not st.is_dir:
            raise ArgumentError("Not a directory.")  # RFC 3659 §7.2.1: 501, no data connection
        fmt = LineFormat(ListingKind.MLSD, facts=self.mlst_facts, perms=self.fact_perms())
        return (yield from self._send_listing("MLSD", path, fmt))

    def _send_listing(self: Session, kind: str, path: str, fmt: LineFormat | None = None,
                      payload: bytes | None = None) -> Gen:
        name = basename(path) or "/"
        if payload is not None:
            t = Transfer(kind, path, payload=payload, name=name)
        else:
            stream = yield self.fs("open_listing", path, fmt)
            t = Transfer(kind, path, reader=stream, name=name)
        self.begin_transfer(t)
        yield StartTransfer(t)
        return None

    def _stat_listing(self: Session, arg: str) -> Gen:
        raw = strip_ls_flags(arg)
        if any(c in raw for c in "*?["):
            raise FileUnavailable("Globbing not supported.")
        path = resolve(self.cwd, raw)
        st = yield self.fs("stat", path)
        now = time.time()
        title = f"Status of {quote_path(path)}:"
        if not st.is_dir:
            return Reply(213, title, list_line(st, now), "End of status.")
        stream = yield self.fs("open_listing", path, LineFormat(ListingKind.LIST, now, prefix=" "))
        yield Reply.opening(213, title)
        # Inner lines in batches, each once the previous ones have drained (ReadListing).
        try:
            while True:
                chunk = yield ReadListing(stream)
                if not chunk:
                    break
                yield Reply.part(213, chunk)
        except OSError:
            # The 213- line is out: the reply must still end with its 213 line.
            return Reply(213, "End of status (the directory could not be read to its end).")
        return Reply(213, "End of status.")

    # ------------------------------------------------------------------ transfers
    def _take_rest(self: Session) -> int:
        offset, self.rest = self.rest, 0
        return offset

    def _open_at(self: Session, call: Any, offset: int) -> Gen:
        try:
            return (yield call)
        except OSError as exc:
            if offset and exc.errno == errno.EINVAL:
                # RFC 1123 §4.1.3.4 / RFC 3659 §5.3: a bad marker is reported on the transfer.
                raise FtpError("Invalid REST parameter: beyond the end of the file.", 554) from None
            raise

    def ftp_RETR(self: Session, arg: str, path: str) -> Gen:
        self.require_data_setup()
        offset = self._take_rest()
        reader = yield from self._open_at(self.fs("open_read", path, offset), offset)
        t = Transfer(
            "RETR", path, offset=offset, ascii=self.ascii, reader=reader, name=basename(path)
        )
        self.begin_transfer(t)
        yield StartTransfer(t)
        return None

    def ftp_STOR(self: Session, arg: str, path: str) -> Gen:
        return (yield from self._upload("STOR", path, append=False))

    def ftp_APPE(self: Session, arg: str, path: str) -> Gen:
        return (yield from self._upload("APPE", path, append=True))

    def _upload(self: Session, kind: str, path: str, append: bool) -> Gen:
        if (self.rest or append) and not self.caps.resume_write:
            # Object storage cannot write into the middle or the end of an existing object:
            # refused before any data connection is used.
            self.rest = 0
            raise ParamNotImplemented(
                "Resuming or appending uploads is not supported by this storage."
            )
        self.require_data_setup()
        if path == "/":
            raise NameNotAllowed("Not a file name.")
        offset = self._take_rest()
        # REST then APPE resumes at the offset like REST+STOR (RFC 3659 §5.5 allows either).
        writer = yield from self._open_at(
            self.fs("open_write", path, offset, append and offset == 0), offset
        )
        t = Transfer(
            kind, path, offset=offset, ascii=self.ascii, writer=writer, name=basename(path)
        )
        self.begin_transfer(t)
        yield StartTransfer(t)
        return None

    def ftp_STOU(self: Session, arg: str, path: str) -> Gen:
        self.require_data_setup()
        if self.rest:
            self.rest = 0
            raise FileUnavailable("Can't STOU while REST request is pending.")
        if arg.strip():
            vdir, prefix = parent(path), basename(path)
        else:
            vdir, prefix = self.cwd, "ftpd"
        target = yield self.fs("unique_name", vdir, prefix)
        writer = yield self.fs("open_write", target, 0, False)
        name = basename(target)
        t = Transfer("STOU", target, ascii=self.ascii, writer=writer, name=name)
        self.begin_transfer(t)
        yield StartTransfer(t)
        return None
