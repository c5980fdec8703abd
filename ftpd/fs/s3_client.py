"""The S3 connection of the S3 backend: one aiobotocore client per process, and error mapping.

``S3Storage`` is one bucket plus the client, created lazily inside the running loop on first use
(after a worker's fork) and closed at shutdown (``close_shared_storage``). Every request goes through
``S3Storage.call``, which turns what botocore and aiohttp raise into an ``OSError`` with the errno
the FTP reply table expects: a missing key is ``ENOENT``, a refused credential ``EACCES``, anything
else ``EIO`` (logged with its S3 error code). Credentials and, when ``s3_region`` is empty, the
region come from the standard AWS chain (``AWS_*`` variables, ``~/.aws`` files, instance roles).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import re
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

try:
    import aiohttp
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError("storage = \"s3\" needs the s3 extra: pip install 'ftpd[s3]'") from exc

if TYPE_CHECKING:
    from ftpd.config import Config

__all__ = [
    "PART_SIZE",
    "PARTS_IN_FLIGHT",
    "S3Storage",
    "close_shared_storage",
    "shared_storage",
    "to_oserror",
    "user_prefix",
]

log = logging.getLogger("ftpd.s3")

MiB = 1 << 20
PART_SIZE = 8 * MiB  # S3's minimum for all parts but the last is 5 MiB
MIN_PART_SIZE = 5 * MiB
MAX_PARTS = 10_000
PARTS_GROWTH_EVERY = 1_000  # the part size grows by PART_SIZE every this many parts
PARTS_IN_FLIGHT = 2
LIST_PAGE = 1000  # ListObjectsV2 MaxKeys (S3's own maximum)
COPY_THRESHOLD = 512 * MiB  # above this, rename copies in parts (CopyObject of GBs times out)
COPY_PART_SIZE = 64 * MiB
MAX_KEY_BYTES = 1024
MAX_CONNECTIONS = 128  # HTTP connections of the process-wide client

_NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchUpload"})
_ERRNO_BY_CODE: dict[str, int] = {
    "403": errno.EACCES,
    "AccessDenied": errno.EACCES,
    "AllAccessDisabled": errno.EACCES,
    "InvalidAccessKeyId": errno.EACCES,
    "SignatureDoesNotMatch": errno.EACCES,
    "416": errno.EINVAL,
    "InvalidRange": errno.EINVAL,
    "412": errno.EEXIST,
    "PreconditionFailed": errno.EEXIST,
    "KeyTooLongError": errno.ENAMETOOLONG,
    "EntityTooLarge": errno.EFBIG,
    "501": errno.EOPNOTSUPP,
    "NotImplemented": errno.EOPNOTSUPP,
}
# Everything the client can raise for a failed request (TimeoutError is an OSError already).
S3_ERRORS = (ClientError, BotoCoreError, aiohttp.ClientError, TimeoutError)
_ESCAPE = re.compile(r"[%/\x00-\x1f\x7f]")


def to_oserror(exc: BaseException, op: str, key: str) -> OSError:
    """The ``OSError`` for a failed S3 call; unexpected failures are logged with their S3 code."""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code", ""))
        if code in _NOT_FOUND:
            return FileNotFoundError(errno.ENOENT, "No such file or directory", key)
        num = _ERRNO_BY_CODE.get(code, errno.EIO)
        if num in (errno.EIO, errno.EACCES):
            log.warning("S3 %s %r failed: %s %s", op, key, code, err.get("Message", ""))
        return OSError(num, f"S3 {op}: {code}", key)
    if isinstance(exc, TimeoutError):
        log.warning("S3 %s %r timed out", op, key)
        return OSError(errno.ETIMEDOUT, f"S3 {op}: timed out", key)
    log.warning("S3 %s %r failed: %r", op, key, exc)
    return OSError(errno.EIO, f"S3 {op}: {type(exc).__name__}", key)


def user_prefix(s3_prefix: str, name: str) -> str:
    """The key prefix of a user's home: ``<s3_prefix>/<name>/``.

    ``%``, ``/`` and control characters of the name are percent-encoded and ``.``/``..`` spelt
    ``%2E``/``%2E%2E``, so that every account gets one prefix of its own and never another's.
    """
    escaped = _ESCAPE.sub(lambda m: f"%{ord(m.group()):02X}", name)
    if escaped in (".", ".."):
        escaped = escaped.replace(".", "%2E")
    base = "/".join(p for p in s3_prefix.split("/") if p)
    return f"{base}/{escaped}/" if base else f"{escaped}/"


class S3Storage:
    """One bucket and the process's aiobotocore client, shared by every user's ``S3FS``."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        endpoint: str = "",
        region: str = "",
        *,
        part_size: int = PART_SIZE,
        parts_in_flight: int = PARTS_IN_FLIGHT,
        list_page: int = LIST_PAGE,
        copy_threshold: int = COPY_THRESHOLD,
        copy_part_size: int = COPY_PART_SIZE,
        max_connections: int = MAX_CONNECTIONS,
        max_attempts: int = 5,
    ) -> None:
        if part_size < MIN_PART_SIZE or copy_part_size < MIN_PART_SIZE:
            raise ValueError(f"S3 parts must be at least {MIN_PART_SIZE} bytes")
        if parts_in_flight < 1 or not 1 <= list_page <= 1000:
            raise ValueError("parts_in_flight >= 1 and 1 <= list_page <= 1000")
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint = endpoint
        self.region = region
        self.part_size = part_size
        self.parts_in_flight = parts_in_flight
        self.list_page = list_page
        self.copy_threshold = copy_threshold
        self.copy_part_size = copy_part_size
        self.max_connections = max_connections
        self.max_attempts = max_attempts  # per request, retries of throttling and 5xx included
        self.conditional_put = True  # PutObject If-None-Match; off once the server says 501
        self._client: Any = None
        self._stack: AsyncExitStack | None = None
        self._lock = asyncio.Lock()
        # Aborts finishing in the background after their caller was cancelled (strong refs).
        self._background: set[asyncio.Task[Any]] = set()

    @classmethod
    def from_config(cls, config: Config) -> S3Storage:
        return cls(config.s3_bucket, config.s3_prefix, config.s3_endpoint, config.s3_region)

    async def client(self) -> Any:
        """The aiobotocore S3 client, created on first use in the running loop."""
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                config = AioConfig(
                    max_pool_connections=self.max_connections,
                    connect_timeout=10,
                    read_timeout=60,
                    retries={"max_attempts": self.max_attempts, "mode": "standard"},
                    # botocore >= 1.36 adds CRC checksums (and aws-chunked bodies) to every upload
                    # by default, which many S3-compatible servers reject; send them only when an
                    # operation requires one.
                    request_checksum_calculation="when_required",
                    response_checksum_validation="when_required",
                    # MinIO, Ceph and moto behind a custom endpoint want path-style URLs.
                    s3={"addressing_style": "path" if self.endpoint else "auto"},
                )
                stack = AsyncExitStack()
                self._client = await stack.enter_async_context(
                    get_session().create_client(
                        "s3",
                        endpoint_url=self.endpoint or None,
                        region_name=self.region or None,
                        config=config,
                    )
                )
                self._stack = stack
        return self._client

    async def call(self, op: str, key: str, **params: Any) -> Any:
        """One S3 request on this bucket; failures become ``OSError`` (see ``to_oserror``)."""
        client = await self.client()
        try:
            return await getattr(client, op)(Bucket=self.bucket, **params)
        except S3_ERRORS as exc:
            raise to_oserror(exc, op, key) from None

    def keep(self, task: asyncio.Task[Any]) -> None:
        """Hold a reference to a background task (an abort whose caller was cancelled) until it
        ends. Its failure is retrieved here: ``to_oserror`` has logged it already."""
        self._background.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("S3 background task failed: %r", task.exception())

    async def check(self) -> None:
        """``HeadBucket``: raise ``OSError`` when the bucket cannot be reached (for start-up)."""
        client = await self.client()
        try:
            await client.head_bucket(Bucket=self.bucket)
        except S3_ERRORS as exc:
            raise to_oserror(exc, "head_bucket", self.bucket) from None

    async def close(self) -> None:
        """Let background aborts finish (up to 10 s), then close the client's connections."""
        if self._background:
            await asyncio.wait(set(self._background), timeout=10.0)
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()


_shared: S3Storage | None = None


def shared_storage(config: Config) -> S3Storage:
    """The process's one ``S3Storage`` (a forked worker makes its own on first use)."""
    global _shared
    if _shared is None:
        _shared = S3Storage.from_config(config)
    return _shared


async def close_shared_storage() -> None:
    """Close the process's client, if one was made (the shutdown hook)."""
    global _shared
    storage, _shared = _shared, None
    if storage is not None:
        await storage.close()
