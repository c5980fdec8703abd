"""``fsync_uploads``: an upload's commit flushes the file's data before the rename and the
directory after it, in an IO thread, never on the event loop (issue 17 item 3).

The system calls are recorded by wrapping ``os.fdatasync``/``os.fsync``/``os.replace`` as the
local backend calls them; each record notes the thread and what the target holds at that moment,
so the order is checked on the files themselves. tests/integration/test_integrity.py checks the
same order on a running server with strace.
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ftpd.fs import local_io
from ftpd.fs.iopool import IoPool
from ftpd.fs.local import LocalFS


@pytest.fixture
def pool() -> Iterator[IoPool]:
    p = IoPool(4)
    yield p
    p.shutdown()


class Calls:
    """What the backend synced, in order: (call, fd kind, thread is the loop's, target bytes)."""

    def __init__(self, target: Path) -> None:
        self.target = target
        self.log: list[tuple[str, str, bool, bytes | None]] = []
        self.loop_thread = threading.get_ident()

    def note(self, call: str, fd: int = -1) -> None:
        kind = ""
        if fd >= 0:
            kind = "dir" if os.path.isdir(f"/proc/self/fd/{fd}") else "file"
        data = self.target.read_bytes() if self.target.exists() else None
        self.log.append((call, kind, threading.get_ident() == self.loop_thread, data))


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Calls:
    rec = Calls(tmp_path / "home" / "f")
    real_datasync, real_fsync, real_replace = local_io._fdatasync, os.fsync, os.replace

    def datasync(fd: int) -> None:
        rec.note("fdatasync", fd)
        real_datasync(fd)

    def fsync(fd: int) -> None:
        rec.note("fsync", fd)
        real_fsync(fd)

    def replace(*args: Any, **kw: Any) -> None:
        real_replace(*args, **kw)
        rec.note("rename")

    monkeypatch.setattr(local_io, "_fdatasync", datasync)
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return rec


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    (h / "f").write_bytes(b"old")
    return h


async def test_atomic_commit_syncs_data_then_renames_then_syncs_the_directory(
    home: Path, pool: IoPool, calls: Calls
) -> None:
    fs = LocalFS(str(home), pool)
    w = await fs.open_write("/f")
    await w.write(b"new ")
    await w.commit(b"data")
    assert calls.log == [
        ("fdatasync", "file", False, b"old"),  # the data first, the old file still in place
        ("rename", "", False, b"new data"),
        ("fsync", "dir", False, b"new data"),  # then the new directory entry
    ]


async def test_in_place_uploads_sync_too(home: Path, pool: IoPool, calls: Calls) -> None:
    fs = LocalFS(str(home), pool, atomic_uploads=False)
    w = await fs.open_write("/f")  # may create the entry: the directory is synced too
    await w.commit(b"new")
    assert [c[:3] for c in calls.log] == [("fdatasync", "file", False), ("fsync", "dir", False)]
    calls.log.clear()
    w = await fs.open_write("/f", offset=3)  # REST: an existing entry, only the data
    await w.commit(b"+")
    assert [c[:3] for c in calls.log] == [("fdatasync", "file", False)]
    assert (home / "f").read_bytes() == b"new+"


async def test_no_sync_when_off(home: Path, pool: IoPool, calls: Calls) -> None:
    for atomic in (True, False):
        fs = LocalFS(str(home), pool, atomic_uploads=atomic, fsync_uploads=False)
        w = await fs.open_write("/f")
        await w.commit(b"unsynced")
    assert [c[0] for c in calls.log] == ["rename"]
    assert (home / "f").read_bytes() == b"unsynced"


async def test_a_failed_data_sync_fails_the_commit_and_keeps_the_old_file(
    home: Path, pool: IoPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(local_io, "_fdatasync", broken)
    fs = LocalFS(str(home), pool)
    w = await fs.open_write("/f")
    with pytest.raises(OSError) as ei:
        await w.commit(b"never visible")
    assert ei.value.errno == errno.EIO
    await w.abort()  # what the server does next: the temp file goes, the old file stays
    assert (home / "f").read_bytes() == b"old"
    assert sorted(p.name for p in home.iterdir()) == ["f"]
