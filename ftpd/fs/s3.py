"""The S3 backend: each user's home is a key prefix in one bucket, reached with aiobotocore.

Theory of operation. A virtual path ``/a/b.txt`` of user ``alice`` is the key
``<s3_prefix>/alice/a/b.txt``. Directories are not objects: ``/a`` exists when some key starts with
``<home>a/``; MKD writes the zero-byte marker ``<home>a/`` (Content-Type
``application/x-directory``, as SFTPGo does) so that an empty directory exists too. Listings are
``ListObjectsV2`` with ``Delimiter="/"``, paged (``CommonPrefixes`` are the subdirectories, shown
with the epoch as their date since a prefix has none).

Uploads stream: bytes collect in one buffer; when it holds a part (8 MiB, growing by 8 MiB every
1,000 parts so that the 10,000-part limit allows ~430 GiB) the part is uploaded by a task, and
``write`` does not return while ``PARTS_IN_FLIGHT`` (2) parts are in flight. The data pump awaits
``write`` before it reads the socket again, so a fast client waits for S3 and an upload holds about
two parts in memory (one uploading and one filling, or two uploading). The multipart upload is
created with the first full part; a smaller file is one ``PutObject`` at commit. Nothing is visible
before ``CompleteMultipartUpload``; ``abort`` (failed, aborted or disconnected transfers) cancels the
parts in flight and aborts the multipart upload, even when the caller is cancelled, so no object and
no pending upload is left behind. A bucket lifecycle rule that aborts incomplete multipart uploads
covers a crashed process (docs/SCALING.md).

What object storage cannot do is refused with an ``OSError`` that the errno table maps:
REST+STOR and APPE (``EOPNOTSUPP``), MFMT and SITE CHMOD (``EOPNOTSUPP``), renaming a non-empty
directory (``ENOTEMPTY``: it would be one copy per object, and not atomic). A file rename is a
server-side copy (multipart ``UploadPartCopy`` above ``COPY_THRESHOLD``) followed by a delete of the
source. ``Capabilities`` says all this to FEAT and the command handlers.

The connection (one aiobotocore client per process) and the error mapping are in ``s3_client``;
the open files (``S3Reader``, ``S3Writer``) in ``s3_files``.
"""

from __future__ import annotations

import asyncio
import errno
import re
import secrets
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from ftpd.fs.base import Capabilities, FileStat, virtual_parts
from ftpd.fs.listing_stream import Format, PagedListing
from ftpd.fs.s3_client import (
    MAX_KEY_BYTES,
    MAX_PARTS,
    S3Storage,
    close_shared_storage,
    shared_storage,
    user_prefix,
)
from ftpd.fs.s3_files import S3Reader, S3Writer

if TYPE_CHECKING:
    from ftpd.config import Config

__all__ = [
    "S3FS",
    "S3Reader",
    "S3Storage",
    "S3Writer",
    "close_shared_storage",
    "shared_storage",
    "user_fs",
]

COPY_PARTS_IN_FLIGHT = 4
DIR_CONTENT_TYPE = "application/x-directory"
_UNIQUE_SEQUENTIAL = 99
_FILE_MODE = 0o644
_DIR_MODE = 0o755
_CONTENT_RANGE = re.compile(r"bytes \d+-\d+/(\d+)")


def _unsupported(what: str) -> OSError:
    return OSError(errno.EOPNOTSUPP, f"{what} is not supported by object storage")


def user_fs(config: Config, name: str) -> S3FS:
    """Account ``name``'s filesystem: the prefix ``<s3_prefix>/<name>/`` of the process's bucket."""
    storage = shared_storage(config)
    return S3FS(storage, user_prefix(storage.prefix, name))


class S3FS:
    """A user's home as a key prefix in a bucket (see the module docstring)."""

    capabilities = Capabilities(
        resume_write=False,
        set_mtime=False,
        chmod=False,
        atomic_rename_dir=False,
    )

    def __init__(self, storage: S3Storage, root: str) -> None:
        if not root.endswith("/"):
            raise ValueError("the key prefix of a home ends with '/'")
        self.storage = storage
        self.root = root

    # -- keys ----------------------------------------------------------------------------------

    @staticmethod
    def _parts(vpath: str) -> list[str]:
        parts = virtual_parts(vpath)
        try:
            vpath.encode("utf-8")
        except UnicodeEncodeError:
            # S3 keys are UTF-8; a name the client sent in another encoding cannot be stored.
            raise OSError(errno.EINVAL, "file name is not valid UTF-8") from None
        return parts

    def _key(self, parts: list[str]) -> str:
        key = self.root + "/".join(parts)
        if len(key.encode("utf-8")) >= MAX_KEY_BYTES:  # >= : its directory marker adds a "/"
            raise OSError(errno.ENAMETOOLONG, "File name too long")
        return key

    def _prefix(self, parts: list[str]) -> str:
        return self._key(parts) + "/" if parts else self.root

    async def _call(self, op: str, key: str, **params: Any) -> Any:
        return await self.storage.call(op, key, **params)

    async def _head(self, key: str) -> dict[str, Any] | None:
        try:
            resp: dict[str, Any] = await self._call("head_object", key, Key=key)
        except FileNotFoundError:
            return None
        return resp

    async def _probe_dir(self, prefix: str) -> tuple[bool, float, bool]:
        """(exists, mtime of its marker or 0, has entries other than the marker)."""
        resp = await self._call("list_objects_v2", prefix, Prefix=prefix, MaxKeys=2)
        keys = [(o["Key"], o["LastModified"]) for o in resp.get("Contents") or ()]
        if not keys:
            return False, 0.0, False
        mtime = keys[0][1].timestamp() if keys[0][0] == prefix else 0.0
        return True, mtime, any(k != prefix for k, _ in keys)

    async def _require_dir(self, parts: list[str], vpath: str) -> None:
        """``parts`` names an existing directory (ENOENT, or ENOTDIR for a file)."""
        if not parts:
            return
        if (await self._probe_dir(self._prefix(parts)))[0]:
            return
        if await self._head(self._key(parts)) is not None:
            raise NotADirectoryError(errno.ENOTDIR, "Not a directory", vpath)
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", vpath)

    async def _missing(self, parts: list[str], vpath: str) -> OSError:
        """The error for "no object here": EISDIR when it is a directory, else ENOENT."""
        if not parts or (await self._probe_dir(self._prefix(parts)))[0]:
            return IsADirectoryError(errno.EISDIR, "Is a directory", vpath)
        return FileNotFoundError(errno.ENOENT, "No such file or directory", vpath)

    @staticmethod
    def _file_stat(name: str, size: int, modified: Any) -> FileStat:
        return FileStat(
            name=name, is_dir=False, size=size, mtime=modified.timestamp(), mode=_FILE_MODE
        )

    @staticmethod
    def _dir_stat(name: str, mtime: float = 0.0) -> FileStat:
        return FileStat(name=name, is_dir=True, size=0, mtime=mtime, mode=_DIR_MODE, nlink=2)

    # -- the interface ----------------------------------------------------------------------------

    async def stat(self, vpath: str) -> FileStat:
        """An object (``HeadObject``), else a directory (a key under ``<path>/``)."""
        parts = self._parts(vpath)
        if not parts:
            return self._dir_stat("/")
        head = await self._head(self._key(parts))
        if head is not None:
            return self._file_stat(parts[-1], int(head["ContentLength"]), head["LastModified"])
        exists, mtime, _ = await self._probe_dir(self._prefix(parts))
        if exists:
            return self._dir_stat(parts[-1], mtime)
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", vpath)

    async def list_pages(self, vpath: str) -> AsyncIterator[list[FileStat]]:
        """The entries of a directory, one ``ListObjectsV2`` page (up to 1,000 keys) at a time."""
        parts = self._parts(vpath)
        prefix = self._prefix(parts)
        start = len(prefix)
        found = not parts  # the home always exists
        token: str | None = None
        while True:
            params: dict[str, Any] = {
                "Prefix": prefix,
                "Delimiter": "/",
                "MaxKeys": self.storage.list_page,
            }
            if token:
                params["ContinuationToken"] = token
            resp = await self._call("list_objects_v2", prefix, **params)
            page: list[FileStat] = []
            for cp in resp.get("CommonPrefixes") or ():
                found = True
                name = cp["Prefix"][start:-1]
                if name and name not in (".", ".."):  # "a//b" or "../" keys: not addressable
                    page.append(self._dir_stat(name))
            for obj in resp.get("Contents") or ():
                found = True
                name = obj["Key"][start:]
                if name and name not in (".", ".."):  # "" is the directory's own marker
                    page.append(self._file_stat(name, int(obj["Size"]), obj["LastModified"]))
            if page:
                yield page
            token = resp.get("NextContinuationToken")
            if not resp.get("IsTruncated") or not token:
                break
        if not found:
            if await self._head(self._key(parts)) is not None:
                raise NotADirectoryError(errno.ENOTDIR, "Not a directory", vpath)
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", vpath)

    async def list(self, vpath: str) -> list[FileStat]:
        """All entries of a directory sorted by name (every page of the listing)."""
        out: list[FileStat] = []
        async for page in self.list_pages(vpath):
            out.extend(page)
        out.sort(key=lambda f: f.name)
        return out

    async def open_listing(self, vpath: str, format: Format) -> PagedListing:
        """A streamed listing: ``list_objects_v2`` pages fetched as the data connection takes
        them (continuation tokens), nothing before the first ``read``."""
        return PagedListing(self.list_pages(vpath), format)

    async def open_read(self, vpath: str, offset: int = 0) -> S3Reader:
        """A GET from ``offset`` (a ``Range`` request for REST); ``EINVAL`` beyond the end."""
        if offset < 0:
            raise OSError(errno.EINVAL, "negative offset")
        parts = self._parts(vpath)
        if not parts:
            raise IsADirectoryError(errno.EISDIR, "Is a directory", vpath)
        key = self._key(parts)
        params: dict[str, Any] = {"Key": key}
        if offset:
            params["Range"] = f"bytes={offset}-"
        try:
            resp = await self._call("get_object", key, **params)
        except FileNotFoundError:
            raise await self._missing(parts, vpath) from None
        except OSError as exc:
            if not (offset and exc.errno == errno.EINVAL):
                raise
            # 416: the offset is at or past the end. At the end is a valid, empty transfer.
            head = await self._head(key)
            if head is None:
                raise await self._missing(parts, vpath) from None
            size = int(head["ContentLength"])
            if offset != size:
                raise OSError(errno.EINVAL, "Restart offset beyond end of file", vpath) from None
            return S3Reader(None, size, offset, key)
        match = _CONTENT_RANGE.match(resp.get("ContentRange") or "")
        size = int(match.group(1)) if match else offset + int(resp["ContentLength"])
        return S3Reader(resp["Body"], size, offset, key)

    async def open_write(self, vpath: str, offset: int = 0, append: bool = False) -> S3Writer:
        """Start an upload; nothing is visible until ``commit``. No resume, no append."""
        if offset < 0:
            raise OSError(errno.EINVAL, "invalid offset for upload")
        if offset or append:
            raise _unsupported("Resuming or appending to a file")
        parts = self._parts(vpath)
        if not parts:
            raise IsADirectoryError(errno.EISDIR, "Is a directory", vpath)
        key = self._key(parts)
        await self._require_dir(parts[:-1], vpath)
        if (await self._probe_dir(key + "/"))[0]:
            raise IsADirectoryError(errno.EISDIR, "Is a directory", vpath)
        return S3Writer(self.storage, key)

    async def mkdir(self, vpath: str) -> None:
        """Write the directory marker ``<path>/``."""
        parts = self._parts(vpath)
        if not parts:
            raise FileExistsError(errno.EEXIST, "File exists", vpath)
        await self._require_dir(parts[:-1], vpath)
        key = self._key(parts)
        if await self._head(key) is not None or (await self._probe_dir(key + "/"))[0]:
            raise FileExistsError(errno.EEXIST, "File exists", vpath)
        await self._call("put_object", key, Key=key + "/", Body=b"", ContentType=DIR_CONTENT_TYPE)

    async def rmdir(self, vpath: str) -> None:
        """Remove an empty directory's marker."""
        parts = self._parts(vpath)
        if not parts:
            raise PermissionError(errno.EPERM, "Cannot remove the home directory", vpath)
        prefix = self._prefix(parts)
        exists, _, children = await self._probe_dir(prefix)
        if not exists:
            if await self._head(self._key(parts)) is not None:
                raise NotADirectoryError(errno.ENOTDIR, "Not a directory", vpath)
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", vpath)
        if children:
            raise OSError(errno.ENOTEMPTY, "Directory not empty", vpath)
        await self._call("delete_object", prefix, Key=prefix)

    async def delete(self, vpath: str) -> None:
        """Delete a file; a directory gives ``EISDIR``."""
        parts = self._parts(vpath)
        if not parts:
            raise IsADirectoryError(errno.EISDIR, "Is a directory", vpath)
        key = self._key(parts)
        if await self._head(key) is None:  # DeleteObject succeeds for missing keys: ask first
            raise await self._missing(parts, vpath)
        await self._call("delete_object", key, Key=key)

    async def rename(self, src: str, dst: str) -> None:
        """Copy then delete (not atomic). A directory is renamed only when empty."""
        sparts, dparts = self._parts(src), self._parts(dst)
        if not sparts or not dparts:
            raise PermissionError(errno.EPERM, "Cannot rename the home directory", src)
        sstat = await self.stat(src)
        if sparts == dparts:
            return
        await self._require_dir(dparts[:-1], dst)
        skey, dkey = self._key(sparts), self._key(dparts)
        dhead = await self._head(dkey)
        dexists, _, dchildren = await self._probe_dir(dkey + "/")
        if not sstat.is_dir:
            if dexists:
                raise IsADirectoryError(errno.EISDIR, "Is a directory", dst)
            await self._copy(skey, dkey, sstat.size)
            await self._call("delete_object", skey, Key=skey)
            return
        if dparts[: len(sparts)] == sparts:
            raise OSError(errno.EINVAL, "Cannot move a directory into itself", dst)
        if (await self._probe_dir(skey + "/"))[2]:
            # One copy and one delete per object, not atomic, and slow for big trees (SFTPGo and
            # goofys refuse it too): only empty directories are renamed.
            raise OSError(errno.ENOTEMPTY, "Renaming a non-empty directory is not supported", src)
        if dhead is not None:
            raise NotADirectoryError(errno.ENOTDIR, "Not a directory", dst)
        if dchildren:
            raise OSError(errno.ENOTEMPTY, "Directory not empty", dst)
        await self._call("put_object", dkey, Key=dkey + "/", Body=b"", ContentType=DIR_CONTENT_TYPE)
        await self._call("delete_object", skey, Key=skey + "/")

    async def _copy(self, skey: str, dkey: str, size: int) -> None:
        source = {"Bucket": self.storage.bucket, "Key": skey}
        if size <= self.storage.copy_threshold:
            await self._call("copy_object", skey, Key=dkey, CopySource=source)
            return
        resp = await self._call("create_multipart_upload", dkey, Key=dkey)
        upload_id = str(resp["UploadId"])
        step = max(self.storage.copy_part_size, -(-size // MAX_PARTS))
        ranges = [
            (n + 1, start, min(start + step, size) - 1)
            for n, start in enumerate(range(0, size, step))
        ]
        etags: dict[int, str] = {}
        gate = asyncio.Semaphore(COPY_PARTS_IN_FLIGHT)

        async def copy_part(number: int, first: int, last: int) -> None:
            async with gate:
                r = await self._call(
                    "upload_part_copy",
                    dkey,
                    Key=dkey,
                    UploadId=upload_id,
                    PartNumber=number,
                    CopySource=source,
                    CopySourceRange=f"bytes={first}-{last}",
                )
                etags[number] = str(r["CopyPartResult"]["ETag"])

        try:
            async with asyncio.TaskGroup() as tg:
                for number, first, last in ranges:
                    tg.create_task(copy_part(number, first, last))
            await self._call(
                "complete_multipart_upload",
                dkey,
                Key=dkey,
                UploadId=upload_id,
                MultipartUpload={
                    "Parts": [{"PartNumber": n, "ETag": etags[n]} for n in sorted(etags)]
                },
            )
        except BaseException as exc:
            abort = asyncio.create_task(
                self._call("abort_multipart_upload", dkey, Key=dkey, UploadId=upload_id)
            )
            self.storage.keep(abort)
            try:
                await asyncio.shield(abort)
            except OSError:
                pass
            if isinstance(exc, BaseExceptionGroup):
                first_error = exc.exceptions[0]
                if isinstance(first_error, OSError):
                    raise first_error from None
            raise

    async def set_mtime(self, vpath: str, mtime: float) -> None:
        """Unsupported: an object's time is when it was written (MFMT)."""
        raise _unsupported("Setting the modification time")

    async def chmod(self, vpath: str, mode: int) -> None:
        """Unsupported: objects have no permission bits (SITE CHMOD)."""
        raise _unsupported("Changing permissions")

    async def unique_name(self, vdir: str, prefix: str) -> str:
        """Create an empty ``<prefix>.N`` in ``vdir`` and return its virtual path (STOU)."""
        if not prefix or "/" in prefix or "\0" in prefix or prefix in (".", ".."):
            raise OSError(errno.EINVAL, "invalid file name prefix", prefix)
        parts = self._parts(vdir)
        await self._require_dir(parts, vdir)
        base = self._prefix(parts)
        taken: set[str] = set()
        lookup = base + prefix + "."
        token: str | None = None
        while True:  # one listing instead of a HEAD per candidate
            params: dict[str, Any] = {"Prefix": lookup, "Delimiter": "/"}
            if token:
                params["ContinuationToken"] = token
            resp = await self._call("list_objects_v2", lookup, **params)
            taken.update(o["Key"][len(base) :] for o in resp.get("Contents") or ())
            taken.update(p["Prefix"][len(base) : -1] for p in resp.get("CommonPrefixes") or ())
            token = resp.get("NextContinuationToken")
            if not resp.get("IsTruncated") or not token:
                break
        # Sequential names only with an atomic create (two sessions could both find ".3" free);
        # without conditional writes, 128-bit random names, which cannot collide in practice.
        for i in range(1, _UNIQUE_SEQUENTIAL + 1):
            name = f"{prefix}.{i}"
            if name in taken:
                continue
            created = await self._put_new(self._key([*parts, name]), random_name=False)
            if created:
                return "/" + "/".join([*parts, name])
            if created is None:
                break
        for _ in range(16):
            name = f"{prefix}.{secrets.token_hex(6 if self.storage.conditional_put else 16)}"
            if await self._put_new(self._key([*parts, name]), random_name=True):
                return "/" + "/".join([*parts, name])
        raise FileExistsError(errno.EEXIST, "no unique name available", vdir)

    async def _put_new(self, key: str, *, random_name: bool) -> bool | None:
        """Create an empty object unless ``key`` exists: atomically (PutObject If-None-Match: *)
        where the server has conditional writes. Without them only a random name is created
        (HEAD, then PUT); for any other name None says "use random names"."""
        if self.storage.conditional_put:
            try:
                await self._call("put_object", key, Key=key, Body=b"", IfNoneMatch="*")
                return True
            except OSError as exc:
                if exc.errno == errno.EEXIST:
                    return False
                if exc.errno != errno.EOPNOTSUPP:
                    raise
                self.storage.conditional_put = False
        if not random_name:
            return None
        if await self._head(key) is not None:
            return False
        await self._call("put_object", key, Key=key, Body=b"")
        return True
