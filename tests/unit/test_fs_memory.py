"""The in-memory backend: the same operations on ``MemoryFS`` and on ``LocalFS`` (a real temp
directory) give the same results and the same errnos; plus what only the memory backend has
(``max_bytes``, ``subtree``, the synchronous helpers)."""

from __future__ import annotations

import errno
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from ftpd.fs.base import Capabilities, FileSystem
from ftpd.fs.local import LocalFS
from ftpd.fs.memory import MemoryFS
from ftpd.proto.errors import StorageError, reply_for_oserror


async def _outcome(call: Callable[[], Awaitable[Any]]) -> Any:
    try:
        result = await call()
    except OSError as exc:
        return ("error", errno.errorcode.get(exc.errno or 0, exc.errno))
    if isinstance(result, list):
        return [(e.name, e.is_dir, e.size if not e.is_dir else "dir") for e in result]
    if hasattr(result, "is_dir"):
        return (result.name, result.is_dir, result.size if not result.is_dir else "dir")
    return result


async def _upload(
    fs: FileSystem,
    path: str,
    data: bytes,
    offset: int = 0,
    append: bool = False,
    commit: bool = True,
) -> None:
    writer = await fs.open_write(path, offset, append)
    await writer.write(data)
    await (writer.commit() if commit else writer.abort())


async def _download(fs: FileSystem, path: str, offset: int = 0) -> bytes:
    reader = await fs.open_read(path, offset)
    out = b""
    while chunk := await reader.read(3):
        out += chunk
    await reader.close()
    return out


# (description, operation) pairs run in order on both backends, starting from an empty home.
STEPS: list[tuple[str, Callable[[FileSystem], Awaitable[Any]]]] = [
    ("stat root", lambda fs: fs.stat("/")),
    ("list empty", lambda fs: fs.list("/")),
    ("mkdir", lambda fs: fs.mkdir("/d")),
    ("mkdir again", lambda fs: fs.mkdir("/d")),
    ("mkdir root", lambda fs: fs.mkdir("/")),
    ("mkdir in missing", lambda fs: fs.mkdir("/nope/x")),
    ("upload", lambda fs: _upload(fs, "/d/a.txt", b"hello world")),
    ("download", lambda fs: _download(fs, "/d/a.txt")),
    ("download at offset", lambda fs: _download(fs, "/d/a.txt", 6)),
    ("download past end", lambda fs: _download(fs, "/d/a.txt", 99)),
    ("download a dir", lambda fs: _download(fs, "/d")),
    ("download missing", lambda fs: _download(fs, "/d/missing")),
    ("upload over dir", lambda fs: _upload(fs, "/d", b"x")),
    ("upload into a file", lambda fs: _upload(fs, "/d/a.txt/b", b"x")),
    ("aborted upload keeps old", lambda fs: _upload(fs, "/d/a.txt", b"new", commit=False)),
    ("still old", lambda fs: _download(fs, "/d/a.txt")),
    ("resume (REST)", lambda fs: _upload(fs, "/d/a.txt", b"WORLD", offset=6)),
    ("resumed", lambda fs: _download(fs, "/d/a.txt")),
    ("REST mid-file keeps the tail", lambda fs: _upload(fs, "/d/a.txt", b"J", offset=4)),
    ("tail kept", lambda fs: _download(fs, "/d/a.txt")),
    ("REST over the end grows it", lambda fs: _upload(fs, "/d/a.txt", b"ld!!", offset=9)),
    ("grown", lambda fs: _download(fs, "/d/a.txt")),
    ("resume past end", lambda fs: _upload(fs, "/d/a.txt", b"x", offset=99)),
    ("resume a missing file", lambda fs: _upload(fs, "/d/new.txt", b"x", offset=1)),
    ("append", lambda fs: _upload(fs, "/d/a.txt", b"!", append=True)),
    ("append creates", lambda fs: _upload(fs, "/d/b.txt", b"bee", append=True)),
    ("appended", lambda fs: _download(fs, "/d/a.txt")),
    (
        "aborted append keeps its bytes",
        lambda fs: _upload(fs, "/d/b.txt", b"zz", append=True, commit=False),
    ),
    ("b", lambda fs: _download(fs, "/d/b.txt")),
    ("list", lambda fs: fs.list("/d")),
    ("stat file", lambda fs: fs.stat("/d/a.txt")),
    ("stat through a file", lambda fs: fs.stat("/d/a.txt/x")),
    ("rmdir non-empty", lambda fs: fs.rmdir("/d")),
    ("rmdir a file", lambda fs: fs.rmdir("/d/a.txt")),
    ("rmdir missing", lambda fs: fs.rmdir("/zz")),
    ("delete a dir", lambda fs: fs.delete("/d")),
    ("delete missing", lambda fs: fs.delete("/d/zz")),
    ("rename file over file", lambda fs: fs.rename("/d/b.txt", "/d/a.txt")),
    ("renamed", lambda fs: fs.list("/d")),
    ("rename missing", lambda fs: fs.rename("/d/b.txt", "/d/c.txt")),
    ("mkdir e", lambda fs: fs.mkdir("/e")),
    ("rename file over dir", lambda fs: fs.rename("/d/a.txt", "/e")),
    ("rename dir over file", lambda fs: fs.rename("/e", "/d/a.txt")),
    ("rename dir into itself", lambda fs: fs.rename("/d", "/d/sub")),
    ("rename dir over non-empty dir", lambda fs: fs.rename("/e", "/d")),
    ("rename dir over empty dir", lambda fs: fs.rename("/d", "/e")),
    ("after", lambda fs: fs.list("/")),
    ("rename to missing parent", lambda fs: fs.rename("/e/a.txt", "/nope/a.txt")),
    ("rename onto itself", lambda fs: fs.rename("/e/a.txt", "/e/a.txt")),
    ("unique", lambda fs: fs.unique_name("/e", "up")),
    ("unique again", lambda fs: fs.unique_name("/e", "up")),
    ("unique bad prefix", lambda fs: fs.unique_name("/e", "..")),
    ("set mtime", lambda fs: fs.set_mtime("/e/a.txt", 1614834367.0)),
    ("mtime", lambda fs: _mtime(fs, "/e/a.txt")),
    ("chmod", lambda fs: fs.chmod("/e/a.txt", 0o600)),
    ("mode", lambda fs: _mode(fs, "/e/a.txt")),
    ("replacing keeps the mode", lambda fs: _upload(fs, "/e/a.txt", b"new")),
    ("mode kept", lambda fs: _mode(fs, "/e/a.txt")),
    ("delete", lambda fs: fs.delete("/e/a.txt")),
    ("escape", lambda fs: fs.stat("/../etc")),
    ("final", lambda fs: fs.list("/e")),
]


async def _mtime(fs: FileSystem, path: str) -> float:
    return (await fs.stat(path)).mtime


async def _mode(fs: FileSystem, path: str) -> str:
    return oct((await fs.stat(path)).mode)


async def test_memory_behaves_as_local(tmp_path: Path) -> None:
    local = LocalFS(str(tmp_path), None)
    memory = MemoryFS()
    for what, step in STEPS:
        want = await _outcome(lambda: step(local))  # noqa: B023 - awaited at once
        got = await _outcome(lambda: step(memory))  # noqa: B023
        assert got == want, f"{what}: local {want!r}, memory {got!r}"


async def test_max_bytes_gives_enospc_and_frees_on_delete() -> None:
    fs = MemoryFS(max_bytes=10)
    await _upload(fs, "/a", b"12345678")
    with pytest.raises(OSError) as info:
        await _upload(fs, "/b", b"123")
    assert info.value.errno == errno.ENOSPC
    assert reply_for_oserror(info.value).code == 452
    assert not fs.exists("/b")  # the failed upload left nothing
    await fs.delete("/a")
    await _upload(fs, "/b", b"123456")
    assert fs.budget.used == 6
    # While a replacement uploads, old and new both count (as a temp file does on disk); the
    # commit frees the old content.
    await _upload(fs, "/b", b"123")
    assert fs.budget.used == 3


async def test_subtree_is_a_view_of_the_same_tree() -> None:
    store = MemoryFS()
    alice = store.subtree("/homes/alice")
    await _upload(alice, "/in.txt", b"data")
    assert store.read_bytes("/homes/alice/in.txt") == b"data"
    assert (await alice.stat("/")).name == "/"
    with pytest.raises(OSError):
        await alice.stat("/../bob")  # a view cannot leave its root
    assert store.files() == {"homes": None, "homes/alice": None, "homes/alice/in.txt": b"data"}


async def test_upload_is_invisible_until_commit() -> None:
    fs = MemoryFS()
    fs.write_bytes("/f", b"old")
    writer = await fs.open_write("/f")
    await writer.write(b"new content")
    assert fs.read_bytes("/f") == b"old"  # readers see the old file meanwhile
    await writer.commit()
    assert fs.read_bytes("/f") == b"new content"


def test_storage_error_chooses_the_reply() -> None:
    reply = reply_for_oserror(StorageError(452, "Bucket\r\nfull."))
    assert (reply.code, list(reply.lines)) == (
        452,
        ["Bucket full."],
    )  # one line, no CR/LF injection
    with pytest.raises(ValueError):
        StorageError(226, "not an error")


def test_memory_is_a_filesystem() -> None:
    assert isinstance(MemoryFS(), FileSystem)
    assert MemoryFS.capabilities == Capabilities()  # everything a disk can do
