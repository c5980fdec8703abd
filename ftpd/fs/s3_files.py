"""The S3 backend's open files: ``S3Reader`` (a streaming ranged GET for RETR) and ``S3Writer``
(``PutObject`` or a multipart upload with bounded parts in flight); see ``ftpd.fs.s3``.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import hashlib
import io
from typing import Any

from ftpd.fs.s3_client import MAX_PARTS, PARTS_GROWTH_EVERY, S3_ERRORS, S3Storage, to_oserror

__all__ = ["S3Reader", "S3Writer"]

_MD5_INLINE = 256 * 1024  # smaller bodies are hashed on the loop: a thread hop costs more


async def _content_md5(body: io.BytesIO) -> str:
    """Content-MD5 of a part, hashed in the default executor (hashlib releases the GIL).

    S3 checks it, and over https botocore then skips its own SHA-256 of the payload, which it
    would otherwise compute on the event loop (about 15 ms per 8 MiB part).
    """

    def digest() -> str:
        with body.getbuffer() as view:
            return base64.b64encode(hashlib.md5(view, usedforsecurity=False).digest()).decode()

    if body.getbuffer().nbytes < _MD5_INLINE:
        return digest()
    return await asyncio.get_running_loop().run_in_executor(None, digest)


class S3Reader:
    """A streaming ranged GET for RETR; no file descriptor, so no sendfile."""

    __slots__ = ("size", "_body", "_pos", "_skip", "_key")

    def __init__(self, body: Any, size: int, offset: int, key: str) -> None:
        self.size = size
        self._body = body
        self._pos = offset
        self._skip = 0
        self._key = key

    def fileno(self) -> int | None:
        return None

    def position(self) -> int:
        return self._pos

    def advance(self, n: int) -> None:
        """Skip ``n`` bytes (they are read and dropped by the next ``read``)."""
        if n < 0:
            raise ValueError("advance by a negative count")
        self._skip += n
        self._pos += n

    async def _raw(self, n: int) -> bytes:
        try:
            return bytes(await self._body.read(n))
        except S3_ERRORS as exc:
            raise to_oserror(exc, "get_object", self._key) from None

    async def read(self, n: int) -> bytes:
        """Up to ``n`` bytes from the current position; ``b""`` at the end."""
        if self._body is None:
            return b""
        while self._skip:
            dropped = await self._raw(min(self._skip, 256 * 1024))
            if not dropped:
                break
            self._skip -= len(dropped)
        data = await self._raw(n)
        if not data:
            self._release()
        self._pos += len(data)
        return data

    def _release(self) -> None:
        body, self._body = self._body, None
        if body is not None:
            body.close()  # an unfinished body closes its connection rather than draining it

    def close_now(self) -> bool:
        return False  # closing a body may wait on its connection: always ``await close()``

    async def close(self) -> None:
        self._release()


class S3Writer:
    """A streaming upload: ``PutObject`` for a file under one part, else a multipart upload."""

    def __init__(self, storage: S3Storage, key: str) -> None:
        self._storage = storage
        self._key = key
        # BytesIO rather than bytearray: aiohttp sends a BytesIO in 64 KiB reads without copying
        # it, where bytes or a bytearray body costs a whole extra copy of the part per request.
        self._buf = io.BytesIO()
        self._buffered = 0
        self._next_part = 1
        self._etags: dict[int, str] = {}
        self._inflight: list[asyncio.Task[None]] = []
        self._create: asyncio.Task[str] | None = None
        self._upload_id: str | None = None
        self._done = False  # committed or aborted
        self.size = 0
        self.parts_in_flight_max = 0  # the most parts ever in flight at once (for tests, metrics)

    @property
    def parts_in_flight(self) -> int:
        """Parts uploading right now."""
        return len(self._inflight)

    def _target(self) -> int:
        """The size at which the buffer becomes the next part."""
        return self._storage.part_size * (1 + (self._next_part - 1) // PARTS_GROWTH_EVERY)

    async def write(self, data: bytes | memoryview) -> None:
        """Buffer ``data`` (copied: the caller reuses its buffer); ship full parts. Returns only
        when fewer than ``parts_in_flight`` parts are in flight: that is the back-pressure."""
        if self._done:
            raise ValueError("write to a finished upload")
        n = self._buf.write(data)
        self._buffered += n
        self.size += n
        if self._buffered >= self._target():
            await self._ship(self._take())
            await self._drain(self._storage.parts_in_flight - 1)

    def _take(self) -> io.BytesIO:
        body, self._buf, self._buffered = self._buf, io.BytesIO(), 0
        body.seek(0)
        return body

    async def _ship(self, body: io.BytesIO) -> None:
        number = self._next_part
        if number > MAX_PARTS:
            raise OSError(errno.EFBIG, "File too large for a multipart upload", self._key)
        self._next_part += 1
        upload_id = await self._ensure_upload()
        task = asyncio.create_task(self._upload_part(upload_id, number, body))
        self._inflight.append(task)
        self.parts_in_flight_max = max(self.parts_in_flight_max, len(self._inflight))

    async def _ensure_upload(self) -> str:
        if self._upload_id is None:
            if self._create is None:
                # A task, so that a cancelled write cannot lose the id of an upload S3 created:
                # abort waits for this task and aborts what it made.
                self._create = asyncio.create_task(self._create_upload())
            await asyncio.wait([self._create])
            self._upload_id = self._create.result()
        return self._upload_id

    async def _create_upload(self) -> str:
        resp = await self._storage.call("create_multipart_upload", self._key, Key=self._key)
        return str(resp["UploadId"])

    async def _upload_part(self, upload_id: str, number: int, body: io.BytesIO) -> None:
        resp = await self._storage.call(
            "upload_part",
            self._key,
            Key=self._key,
            UploadId=upload_id,
            PartNumber=number,
            Body=body,
            ContentMD5=await _content_md5(body),
        )
        self._etags[number] = str(resp["ETag"])
        body.close()  # free the part now, not when the cyclic GC finds the request objects

    async def _drain(self, keep: int) -> None:
        """Wait until at most ``keep`` parts are in flight; raise the first part's error."""
        while len(self._inflight) > keep:
            task = self._inflight[0]
            # asyncio.wait, not await: cancelling this write must not cancel the part (abort does).
            await asyncio.wait([task])
            self._inflight.pop(0)
            task.result()

    def blocking_write(self) -> None:
        return None  # parts are uploaded on the loop: no blocking form

    async def commit(self, tail: bytes | memoryview = b"") -> None:
        """Write ``tail``, then make the object visible: ``PutObject`` or
        ``CompleteMultipartUpload``."""
        if self._done:
            return
        if tail:
            await self.write(tail)
        if self._create is None:
            body = self._take()
            md5 = await _content_md5(body)
            await self._storage.call(
                "put_object", self._key, Key=self._key, Body=body, ContentMD5=md5
            )
            body.close()
        else:
            if self._buffered:
                await self._ship(self._take())
            await self._drain(0)
            parts = [{"PartNumber": n, "ETag": self._etags[n]} for n in sorted(self._etags)]
            await self._storage.call(
                "complete_multipart_upload",
                self._key,
                Key=self._key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": parts},
            )
        self._done = True

    async def abort(self) -> None:
        """Discard the upload: cancel the parts in flight, abort the multipart upload. Runs to
        the end even if the caller is cancelled. Does nothing after a successful commit."""
        if self._done:
            return
        self._done = True
        self._take().close()
        task = asyncio.create_task(self._abort_remote())
        self._storage.keep(task)
        await asyncio.shield(task)

    async def _abort_remote(self) -> None:
        for t in self._inflight:
            t.cancel()
        pending: list[asyncio.Task[Any]] = [*self._inflight]
        if self._create is not None:
            pending.append(self._create)
        if pending:
            await asyncio.wait(pending)
        for t in pending:  # retrieve every outcome so asyncio logs nothing
            if not t.cancelled():
                t.exception()
        self._inflight.clear()
        upload_id = self._upload_id
        create = self._create
        if upload_id is None and create is not None and not create.cancelled():
            upload_id = create.result() if create.exception() is None else None
        if upload_id is None:
            return
        try:
            await self._storage.call(
                "abort_multipart_upload", self._key, Key=self._key, UploadId=upload_id
            )
        except FileNotFoundError:
            pass  # already aborted (or completed) on the server
