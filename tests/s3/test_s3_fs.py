"""The S3 backend (ftpd.fs.s3) against a moto S3 server on 127.0.0.1: every filesystem operation,
streaming multipart uploads with bounded memory, ranged reads, paged listings, and aborts that leave
nothing behind. The bucket is looked at from outside with a plain boto3 client (``inspect``)."""

from __future__ import annotations

import asyncio
import base64
import errno
import hashlib
import os
import re
import time
import tracemalloc
from typing import Any

import pytest
from botocore.exceptions import ClientError

from ftpd.fs.base import FileSystem, PathEscapeError
from ftpd.fs.s3 import S3FS, S3Storage, close_shared_storage, shared_storage, user_fs
from ftpd.fs.s3_client import PART_SIZE, PARTS_IN_FLIGHT, to_oserror, user_prefix

from .conftest import BUCKET, PREFIX, REGION, keys, pending_uploads, seed

MiB = 1 << 20
HOME = f"{PREFIX}/alice/"


async def put(fs: S3FS, vpath: str, data: bytes) -> None:
    w = await fs.open_write(vpath)
    await w.write(data)
    await w.commit()


async def get(fs: S3FS, vpath: str, offset: int = 0) -> bytes:
    r = await fs.open_read(vpath, offset)
    chunks = []
    while chunk := await r.read(256 * 1024):
        chunks.append(chunk)
    await r.close()
    return b"".join(chunks)


async def raises_errno(num: int, coro: Any) -> OSError:
    with pytest.raises(OSError) as info:
        await coro
    assert info.value.errno == num, info.value
    return info.value


class CallCounter:
    """Counts S3 operations (and the most at once) through botocore's event hooks."""

    def __init__(self, client: Any, operation: str) -> None:
        self.calls = 0
        self.finished = 0
        self.active = 0
        self.most = 0
        self.delay = 0.0
        self.part_delays: dict[int, float] = {}  # UploadPart: a delay per part number
        client.meta.events.register(f"before-call.s3.{operation}", self._before)
        client.meta.events.register(f"after-call.s3.{operation}", self._after)

    async def _before(self, params: dict[str, Any], **_: Any) -> None:
        self.calls += 1
        self.active += 1
        self.most = max(self.most, self.active)
        part = int(params.get("query_string", {}).get("partNumber", 0))
        delay = self.part_delays.get(part, self.delay)
        if delay:
            await asyncio.sleep(delay)

    def _after(self, **_: Any) -> None:
        self.active -= 1
        self.finished += 1


# -- mapping, config -----------------------------------------------------------------------------


def test_user_prefix_gives_each_account_its_own_prefix() -> None:
    assert user_prefix("", "alice") == "alice/"
    assert user_prefix("/ftp//homes/", "alice") == "ftp/homes/alice/"
    assert user_prefix("p", "a/b") == "p/a%2Fb/"  # never a prefix of another account
    assert user_prefix("p", "a%2Fb") == "p/a%252Fb/"
    assert user_prefix("p", "..") == "p/%2E%2E/"
    assert user_prefix("p", ".") == "p/%2E/"
    assert user_prefix("p", "x\ny") == "p/x%0Ay/"


def test_client_errors_map_to_errno() -> None:
    def err(code: str) -> ClientError:
        return ClientError({"Error": {"Code": code, "Message": "m"}}, "GetObject")

    assert to_oserror(err("NoSuchKey"), "get_object", "k").errno == errno.ENOENT
    assert to_oserror(err("404"), "head_object", "k").errno == errno.ENOENT
    assert to_oserror(err("AccessDenied"), "get_object", "k").errno == errno.EACCES
    assert to_oserror(err("InvalidRange"), "get_object", "k").errno == errno.EINVAL
    assert to_oserror(err("NotImplemented"), "put_object", "k").errno == errno.EOPNOTSUPP
    assert to_oserror(err("SlowDown"), "put_object", "k").errno == errno.EIO
    assert to_oserror(TimeoutError(), "put_object", "k").errno == errno.ETIMEDOUT


def test_capabilities_say_what_object_storage_cannot_do(fs: S3FS) -> None:
    caps = fs.capabilities
    assert not caps.resume_write and not caps.set_mtime and not caps.chmod
    assert not caps.atomic_rename_dir
    assert isinstance(fs, FileSystem)


async def test_shared_storage_is_one_per_process(moto_endpoint: str, bucket: str) -> None:
    from ftpd.config import Config

    config = Config(storage="s3", s3_bucket=bucket, s3_endpoint=moto_endpoint, s3_prefix="x")
    a, b = user_fs(config, "alice"), user_fs(config, "bob")
    try:
        assert a.storage is b.storage is shared_storage(config)
        assert (a.root, b.root) == ("x/alice/", "x/bob/")
        await a.mkdir("/d")
        assert await a.storage.client() is await b.storage.client()
    finally:
        await close_shared_storage()
    assert shared_storage(config) is not a.storage  # closed: the next use makes a new one
    await close_shared_storage()


async def test_check_reaches_the_bucket(storage: S3Storage, moto_endpoint: str) -> None:
    await storage.check()
    other = S3Storage("no-such-bucket", "", moto_endpoint, REGION)
    try:
        with pytest.raises(OSError):
            await other.check()
    finally:
        await other.close()


# -- stat, list ----------------------------------------------------------------------------------


async def test_stat_file_directory_and_missing(fs: S3FS, inspect: Any) -> None:
    root = await fs.stat("/")
    assert root.is_dir and root.name == "/"
    await put(fs, "/a.txt", b"hello")
    before = time.time()
    st = await fs.stat("/a.txt")
    assert (st.name, st.is_dir, st.size) == ("a.txt", False, 5)
    assert abs(st.mtime - before) < 60  # MDTM is the object's upload time
    await fs.mkdir("/d")
    d = await fs.stat("/d")
    assert d.is_dir and d.name == "d" and d.mtime > 0  # the marker's time
    # A directory without a marker exists through the keys under it (uploaded by other tools).
    inspect.put_object(Bucket=BUCKET, Key=HOME + "v/w/x.bin", Body=b"12")
    assert (await fs.stat("/v")).is_dir
    assert (await fs.stat("/v/w")).is_dir
    assert (await fs.stat("/v/w/x.bin")).size == 2
    await raises_errno(errno.ENOENT, fs.stat("/nope"))
    await raises_errno(errno.ENOENT, fs.stat("/d/nope"))


async def test_list_directories_files_and_errors(fs: S3FS, inspect: Any) -> None:
    assert await fs.list("/") == []
    await fs.mkdir("/sub")
    await put(fs, "/b.txt", b"bb")
    await put(fs, "/a.txt", b"a")
    await put(fs, "/sub/in.txt", b"inside")
    inspect.put_object(Bucket=BUCKET, Key=HOME + "virtual/deep/f", Body=b"x")
    entries = await fs.list("/")
    assert [(e.name, e.is_dir, e.size) for e in entries] == [
        ("a.txt", False, 1),
        ("b.txt", False, 2),
        ("sub", True, 0),
        ("virtual", True, 0),
    ]
    assert [e.name for e in await fs.list("/sub")] == ["in.txt"]  # the marker is not listed
    await fs.mkdir("/empty")
    assert await fs.list("/empty") == []
    await raises_errno(errno.ENOENT, fs.list("/missing"))
    await raises_errno(errno.ENOTDIR, fs.list("/a.txt"))
    # Keys that no path can name are left out of listings.
    inspect.put_object(Bucket=BUCKET, Key=HOME + "odd//x", Body=b"x")
    assert "" not in [e.name for e in await fs.list("/odd")]


async def test_listing_of_5000_keys_is_paged(
    fs: S3FS, storage: S3Storage, moto_endpoint: str
) -> None:
    client = await storage.client()
    await fs.mkdir("/big")
    seed(moto_endpoint, [(f"{HOME}big/f{i:05d}", i % 7) for i in range(5000)])
    await fs.mkdir("/big/zdir")
    lists = CallCounter(client, "ListObjectsV2")
    pages = [page async for page in fs.list_pages("/big")]  # list() is these pages, sorted
    assert lists.calls == 6  # 5,002 keys (with two markers) at 1,000 a page
    assert max(len(p) for p in pages) <= 1000
    entries = sorted((e for p in pages for e in p), key=lambda e: e.name)
    names = [e.name for e in entries]
    assert names == [f"f{i:05d}" for i in range(5000)] + ["zdir"]
    assert [e.size for e in entries[:8]] == [0, 1, 2, 3, 4, 5, 6, 0]
    assert entries[-1].is_dir


async def test_streamed_listing_pages_as_it_is_read(
    fs: S3FS, storage: S3Storage, moto_endpoint: str
) -> None:
    """``open_listing`` (issue 16 item 5): nothing listed until the first read, then one page
    ahead at most; every entry once; a single-page listing comes sorted."""
    from ftpd.proto.listing import LineFormat, ListingKind

    client = await storage.client()
    await fs.mkdir("/big2")
    seed(moto_endpoint, [(f"{HOME}big2/f{i:05d}", 1) for i in range(2500)])
    lists = CallCounter(client, "ListObjectsV2")
    stream = await fs.open_listing("/big2", LineFormat(ListingKind.NLST))
    assert lists.calls == 0  # nothing before the data connection
    first = await stream.read()
    assert lists.calls == 2  # the first page, and the next one to know it is not the last
    chunks = [first]
    while chunk := await stream.read():
        chunks.append(chunk)
    await stream.close()
    names = b"".join(chunks).decode().split("\r\n")[:-1]
    assert sorted(names) == [f"f{i:05d}" for i in range(2500)]
    assert len(chunks) == 3 and lists.calls == 3
    await fs.mkdir("/small2")
    seed(moto_endpoint, [(f"{HOME}small2/{n}", 1) for n in ("c", "a", "b")])
    stream = await fs.open_listing("/small2", LineFormat(ListingKind.NLST))
    assert await stream.read() == b"a\r\nb\r\nc\r\n"
    assert await stream.read() == b""


# -- reads ---------------------------------------------------------------------------------------


async def test_read_whole_and_ranges(fs: S3FS) -> None:
    data = os.urandom(3 * MiB + 17)
    await put(fs, "/r.bin", data)
    assert await get(fs, "/r.bin") == data
    for offset in (1, 1000, MiB, len(data) - 1, len(data)):
        r = await fs.open_read("/r.bin", offset)
        assert r.size == len(data) and r.position() == offset and r.fileno() is None
        await r.close()
        assert await get(fs, "/r.bin", offset) == data[offset:]
    err = await raises_errno(errno.EINVAL, fs.open_read("/r.bin", len(data) + 1))
    assert "beyond" in str(err)
    await raises_errno(errno.EINVAL, fs.open_read("/r.bin", -1))
    # advance() skips bytes like a seek (what a sendfile caller would do).
    r = await fs.open_read("/r.bin", 10)
    r.advance(90)
    assert r.position() == 100
    assert await r.read(50) == data[100:150]
    assert r.position() == 150
    await r.close()
    assert await r.read(10) == b""  # closed


async def test_read_empty_file_and_errors(fs: S3FS) -> None:
    await put(fs, "/empty", b"")
    assert await get(fs, "/empty") == b""
    assert await get(fs, "/empty", 0) == b""
    await raises_errno(errno.ENOENT, fs.open_read("/missing"))
    await fs.mkdir("/d")
    await raises_errno(errno.EISDIR, fs.open_read("/d"))
    await raises_errno(errno.EISDIR, fs.open_read("/"))


async def test_reader_closed_early_frees_its_connection(fs: S3FS) -> None:
    await put(fs, "/big", os.urandom(2 * MiB))
    for _ in range(3 * 8):  # more than a small pool would hold if early closes leaked
        r = await fs.open_read("/big")
        assert len(await r.read(1000)) <= 1000
        await r.close()
    assert len(await get(fs, "/big")) == 2 * MiB


# -- writes --------------------------------------------------------------------------------------


async def test_small_upload_is_invisible_until_commit(fs: S3FS, inspect: Any) -> None:
    w = await fs.open_write("/f.txt")
    await w.write(b"hello ")
    await w.write(memoryview(bytearray(b"world")))
    assert keys(inspect, HOME) == []
    await w.commit()
    assert keys(inspect, HOME) == [HOME + "f.txt"]
    assert await get(fs, "/f.txt") == b"hello world"
    await w.abort()  # after commit: nothing happens
    assert await get(fs, "/f.txt") == b"hello world"
    assert pending_uploads(inspect) == []


async def test_upload_replaces_and_abort_keeps_the_old_version(fs: S3FS, inspect: Any) -> None:
    await put(fs, "/f", b"old")
    w = await fs.open_write("/f")
    await w.write(os.urandom(PART_SIZE + 5))  # a part is in S3 already
    assert pending_uploads(inspect) == [HOME + "f"]
    await w.abort()
    await w.abort()  # idempotent
    assert await get(fs, "/f") == b"old"
    assert pending_uploads(inspect) == []
    with pytest.raises(ValueError):
        await w.write(b"more")
    await put(fs, "/f", b"new")
    assert await get(fs, "/f") == b"new"


async def test_multipart_upload_of_50_mib_streams_with_bounded_memory(
    fs: S3FS, storage: S3Storage, inspect: Any
) -> None:
    client = await storage.client()
    parts = CallCounter(client, "UploadPart")
    block = os.urandom(256 * 1024)
    total = 50 * MiB
    digest = hashlib.sha256()
    w = await fs.open_write("/big.bin")
    tracemalloc.start()
    try:
        sent = 0
        while sent < total:
            chunk = bytes([sent // len(block) % 251]) + block[1:]
            await w.write(memoryview(chunk))
            digest.update(chunk)
            sent += len(chunk)
            # Back-pressure: write returns with at most one part still uploading.
            assert w.parts_in_flight <= PARTS_IN_FLIGHT - 1
        await w.commit()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert parts.calls == 7  # six 8 MiB parts and the 2 MiB rest
    assert parts.most <= PARTS_IN_FLIGHT and w.parts_in_flight_max <= PARTS_IN_FLIGHT
    # Two parts in flight plus the one filling: far below the 50 MiB a buffered upload would hold.
    assert peak < 3 * PART_SIZE + 4 * MiB, peak
    head = inspect.head_object(Bucket=BUCKET, Key=HOME + "big.bin")
    assert head["ContentLength"] == total
    assert pending_uploads(inspect) == []
    r = await fs.open_read("/big.bin")
    got = hashlib.sha256()
    while chunk := await r.read(1 << 20):
        got.update(chunk)
    await r.close()
    assert got.hexdigest() == digest.hexdigest()


async def test_write_waits_while_two_parts_are_in_flight(fs: S3FS, storage: S3Storage) -> None:
    client = await storage.client()
    parts = CallCounter(client, "UploadPart")
    parts.part_delays = {1: 0.3, 2: 1.5}  # a slow S3; part 2 slower, so waiting for it would show
    md5s: list[bytes] = []
    client.meta.events.register(
        "before-send.s3.UploadPart",
        lambda request, **_: md5s.append(bytes(request.headers["Content-MD5"])),
    )
    w = await fs.open_write("/slow.bin")
    chunk = b"s" * PART_SIZE
    await w.write(chunk)  # part 1 starts: the write returns without waiting for it
    assert w.parts_in_flight == 1 and parts.finished == 0
    await w.write(chunk)  # part 2 starts: the write waits until part 1 is done
    assert parts.finished == 1 and w.parts_in_flight == 1
    assert parts.most == 2
    await w.commit()
    assert (await fs.stat("/slow.bin")).size == 2 * PART_SIZE
    # Each part carried its Content-MD5 (hashed off the loop; S3 verifies it).
    assert md5s == [base64.b64encode(hashlib.md5(chunk).digest())] * 2


async def test_cancelled_write_then_abort_leaves_nothing(
    fs: S3FS, storage: S3Storage, inspect: Any
) -> None:
    client = await storage.client()
    parts = CallCounter(client, "UploadPart")
    parts.delay = 0.5
    w = await fs.open_write("/c.bin")
    await w.write(b"a" * PART_SIZE)
    task = asyncio.create_task(w.write(b"b" * PART_SIZE))  # waits for part 1
    await asyncio.sleep(0.1)  # a chance to finish early (it must not): a negative check
    assert not task.done()
    task.cancel()  # what the data pump does on ABOR or a lost connection
    with pytest.raises(asyncio.CancelledError):
        await task
    await w.abort()
    assert pending_uploads(inspect) == []
    assert keys(inspect, HOME) == []


async def test_abort_finishes_even_when_its_caller_is_cancelled(
    fs: S3FS, storage: S3Storage, inspect: Any
) -> None:
    w = await fs.open_write("/x.bin")
    await w.write(b"a" * PART_SIZE)
    task = asyncio.create_task(w.abort())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await storage.close()  # waits for the background abort
    assert pending_uploads(inspect) == []


async def test_failed_part_fails_the_upload_and_abort_cleans_up(
    moto_endpoint: str, bucket: str, inspect: Any
) -> None:
    # No retries: moto answers 500 for a part of an unknown upload, which botocore would retry.
    storage = S3Storage(bucket, PREFIX, moto_endpoint, REGION, max_attempts=1)
    try:
        await _fail_and_abort(S3FS(storage, HOME), inspect)
    finally:
        await storage.close()


async def _fail_and_abort(fs: S3FS, inspect: Any) -> None:
    w = await fs.open_write("/fail.bin")
    await w.write(b"a" * PART_SIZE)
    (upload,) = inspect.list_multipart_uploads(Bucket=BUCKET)["Uploads"]
    # The upload vanishes under the writer (a lifecycle rule, another process): parts now fail.
    inspect.abort_multipart_upload(Bucket=BUCKET, Key=upload["Key"], UploadId=upload["UploadId"])
    with pytest.raises(OSError):
        for _ in range(3):
            await w.write(b"b" * PART_SIZE)
        await w.commit()
    await w.abort()
    assert pending_uploads(inspect) == []
    assert keys(inspect, HOME) == []


async def test_upload_checks_its_directory(fs: S3FS) -> None:
    await raises_errno(errno.ENOENT, fs.open_write("/no/such/dir/f"))
    await put(fs, "/file", b"x")
    await raises_errno(errno.ENOTDIR, fs.open_write("/file/f"))
    await fs.mkdir("/d")
    await raises_errno(errno.EISDIR, fs.open_write("/d"))
    await raises_errno(errno.EISDIR, fs.open_write("/"))
    await put(fs, "/d/f", b"in d")
    assert await get(fs, "/d/f") == b"in d"


async def test_resume_append_mtime_and_chmod_are_refused(fs: S3FS, inspect: Any) -> None:
    await put(fs, "/f", b"data")
    for call in (
        fs.open_write("/f", 2),
        fs.open_write("/f", 0, True),
        fs.set_mtime("/f", 0.0),
        fs.chmod("/f", 0o600),
    ):
        err = await raises_errno(errno.EOPNOTSUPP, call)
        assert "not supported" in str(err)
    assert await get(fs, "/f") == b"data"
    assert pending_uploads(inspect) == []


# -- names ---------------------------------------------------------------------------------------


async def test_mkdir_writes_a_marker(fs: S3FS, inspect: Any) -> None:
    await fs.mkdir("/d")
    assert keys(inspect, HOME) == [HOME + "d/"]
    head = inspect.head_object(Bucket=BUCKET, Key=HOME + "d/")
    assert head["ContentType"] == "application/x-directory" and head["ContentLength"] == 0
    await fs.mkdir("/d/e")
    await raises_errno(errno.EEXIST, fs.mkdir("/d"))
    await raises_errno(errno.EEXIST, fs.mkdir("/"))
    await raises_errno(errno.ENOENT, fs.mkdir("/x/y"))
    await put(fs, "/f", b"")
    await raises_errno(errno.EEXIST, fs.mkdir("/f"))
    await raises_errno(errno.ENOTDIR, fs.mkdir("/f/g"))


async def test_rmdir_only_empty_directories(fs: S3FS, inspect: Any) -> None:
    await fs.mkdir("/d")
    await put(fs, "/d/f", b"1")
    await raises_errno(errno.ENOTEMPTY, fs.rmdir("/d"))
    await fs.delete("/d/f")
    await fs.rmdir("/d")
    assert keys(inspect, HOME) == []
    await raises_errno(errno.ENOENT, fs.rmdir("/d"))
    await put(fs, "/f", b"1")
    await raises_errno(errno.ENOTDIR, fs.rmdir("/f"))
    await raises_errno(errno.EPERM, fs.rmdir("/"))


async def test_delete_files_only(fs: S3FS, inspect: Any) -> None:
    await put(fs, "/f", b"1")
    await fs.delete("/f")
    assert keys(inspect, HOME) == []
    await raises_errno(errno.ENOENT, fs.delete("/f"))
    await fs.mkdir("/d")
    await raises_errno(errno.EISDIR, fs.delete("/d"))
    await raises_errno(errno.EISDIR, fs.delete("/"))


async def test_rename_files(fs: S3FS, inspect: Any) -> None:
    await put(fs, "/a", b"alpha")
    await fs.mkdir("/d")
    await fs.rename("/a", "/d/b")
    assert sorted(keys(inspect, HOME)) == [HOME + "d/", HOME + "d/b"]
    assert await get(fs, "/d/b") == b"alpha"
    await put(fs, "/c", b"gamma")
    await fs.rename("/c", "/d/b")  # replaces an existing file, as rename(2) does
    assert await get(fs, "/d/b") == b"gamma"
    await fs.rename("/d/b", "/d/b")  # same name: nothing to do
    assert await get(fs, "/d/b") == b"gamma"
    await raises_errno(errno.ENOENT, fs.rename("/missing", "/x"))
    await raises_errno(errno.ENOENT, fs.rename("/d/b", "/nodir/x"))
    await fs.mkdir("/e")
    await raises_errno(errno.EISDIR, fs.rename("/d/b", "/e"))
    await raises_errno(errno.EPERM, fs.rename("/", "/x"))


async def test_rename_directories_only_when_empty(fs: S3FS, inspect: Any) -> None:
    await fs.mkdir("/d")
    await fs.rename("/d", "/e")
    assert keys(inspect, HOME) == [HOME + "e/"]
    await put(fs, "/e/f", b"1")
    err = await raises_errno(errno.ENOTEMPTY, fs.rename("/e", "/g"))
    assert "non-empty" in str(err)
    assert sorted(keys(inspect, HOME)) == [HOME + "e/", HOME + "e/f"]
    await fs.mkdir("/h")
    await raises_errno(errno.EINVAL, fs.rename("/h", "/h/sub"))
    await raises_errno(errno.ENOTDIR, fs.rename("/h", "/e/f"))
    await raises_errno(errno.ENOTEMPTY, fs.rename("/h", "/e"))


async def test_rename_of_a_big_file_copies_in_parts(
    moto_endpoint: str, bucket: str, inspect: Any
) -> None:
    storage = S3Storage(
        bucket, PREFIX, moto_endpoint, REGION, copy_threshold=6 * MiB, copy_part_size=5 * MiB
    )
    fs = S3FS(storage, HOME)
    try:
        client = await storage.client()
        copies = CallCounter(client, "UploadPartCopy")
        data = os.urandom(12 * MiB + 3)
        await put(fs, "/big", data)
        await fs.rename("/big", "/moved")
        assert copies.calls == 3
        assert await get(fs, "/moved") == data
        assert keys(inspect, HOME) == [HOME + "moved"]
        assert pending_uploads(inspect) == []
    finally:
        await storage.close()


async def test_unique_name(fs: S3FS, inspect: Any) -> None:
    assert await fs.unique_name("/", "up") == "/up.1"
    assert await fs.unique_name("/", "up") == "/up.2"
    await fs.mkdir("/up.3")
    assert await fs.unique_name("/", "up") == "/up.4"
    await fs.mkdir("/d")
    assert await fs.unique_name("/d", "up") == "/d/up.1"
    assert (await fs.stat("/d/up.1")).size == 0
    await raises_errno(errno.EINVAL, fs.unique_name("/", "a/b"))
    await raises_errno(errno.ENOENT, fs.unique_name("/nodir", "up"))


async def test_paths_stay_in_the_home(storage: S3Storage, inspect: Any) -> None:
    alice = S3FS(storage, user_prefix(PREFIX, "alice"))
    bob = S3FS(storage, user_prefix(PREFIX, "bob"))
    await put(alice, "/same", b"alice's")
    await put(bob, "/same", b"bob's")
    assert await get(alice, "/same") == b"alice's"
    assert [e.name for e in await bob.list("/")] == ["same"]
    assert sorted(keys(inspect)) == [f"{PREFIX}/alice/same", f"{PREFIX}/bob/same"]
    with pytest.raises(PathEscapeError):
        await alice.stat("/../bob/same")
    await raises_errno(errno.EINVAL, alice.stat("relative"))
    await raises_errno(errno.EINVAL, alice.stat("/nul\0byte"))
    await raises_errno(errno.EINVAL, alice.open_write("/bad-\udcff-utf8"))
    await raises_errno(errno.ENAMETOOLONG, alice.open_write("/" + "n" * 1100))
    await put(alice, "/é ü 名前", b"unicode")
    assert [e.name for e in await alice.list("/")] == ["same", "é ü 名前"]


async def test_unique_name_without_conditional_writes_uses_random_names(fs: S3FS) -> None:
    """An S3 server without If-None-Match (it answers 501): sequential names would need a check
    and a separate write, which two sessions can interleave; 128-bit random names instead."""
    fs.storage.conditional_put = False
    names = {await fs.unique_name("/", "up") for _ in range(3)}
    assert len(names) == 3
    assert all(re.fullmatch(r"/up\.[0-9a-f]{32}", n) for n in names), names
