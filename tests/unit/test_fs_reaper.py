"""``ftpd.fs.reaper``: an upload committed over a big file holds the old inode across the rename
(so the rename does not free its blocks) and frees it in the reaper thread afterwards; a small
file is not held. Both the named-temp and the O_TMPFILE commit go through it."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from ftpd.fs import reaper
from ftpd.fs.iopool import IoPool
from ftpd.fs.local import LocalFS

MiB = 1024 * 1024


def _fd_open(fd: int, ino: int) -> bool:
    try:
        return os.fstat(fd).st_ino == ino
    except OSError:
        return False


@pytest.mark.parametrize("anonymous", [True, False], ids=["o_tmpfile", "named-temp"])
@pytest.mark.parametrize("size", [reaper.HOLD_FROM + MiB, 4096], ids=["big", "small"])
async def test_commit_over_a_file(
    tmp_path: Path, monkeypatch: Any, size: int, anonymous: bool
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    old = home / "f.bin"
    old.write_bytes(b"o" * size)
    old_ino = old.stat().st_ino
    seen: list[tuple[int, int, int]] = []  # (fd, its inode, its link count) at release time
    real_release = reaper.release

    def release(fd: int) -> None:
        if fd >= 0:
            st = os.fstat(fd)
            seen.append((fd, st.st_ino, st.st_nlink))
        else:
            seen.append((fd, 0, 0))
        real_release(fd)

    monkeypatch.setattr(reaper, "release", release)
    pool = IoPool(2, "test-reaper")
    try:
        fs = LocalFS(str(home), pool, anonymous_temps=anonymous)
        w = await fs.open_write("/f.bin")
        await w.write(b"new contents")
        await w.commit()
    finally:
        pool.shutdown()
    assert old.read_bytes() == b"new contents"
    assert len(seen) == 1
    fd, ino, nlink = seen[0]
    if size < reaper.HOLD_FROM:
        assert fd == -1  # freed in the rename: not worth a descriptor
        return
    # The old inode outlived the rename through the held fd (unlinked: nlink 0) ...
    assert (ino, nlink) == (old_ino, 0)
    # ... and the reaper thread closes it (which frees its blocks).
    deadline = time.monotonic() + 5
    while _fd_open(fd, ino) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not _fd_open(fd, ino)


def test_hold_refuses_what_it_must_not_hold(tmp_path: Path) -> None:
    dfd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        (tmp_path / "dir").mkdir()
        (tmp_path / "big").write_bytes(b"")
        os.truncate(tmp_path / "big", reaper.HOLD_FROM)  # sparse: its size is what counts
        os.symlink("big", tmp_path / "link")
        assert reaper.hold(dfd, "missing") == -1
        assert reaper.hold(dfd, "dir") == -1
        assert reaper.hold(dfd, "link") == -1  # O_NOFOLLOW: never a file outside the name
        fd = reaper.hold(dfd, "big")
        assert fd >= 0
        reaper.release(fd)
        reaper.release(-1)  # nothing held: nothing to do
    finally:
        os.close(dfd)
