"""The homes kept open for the inline forms (``ftpd.fs.homefds``): one fd per home reused for a
second, then reopened (a replaced home is seen), closed by the sweeper once quiet and at shutdown,
and never more than ``MAX`` at once."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from ftpd.config import Config
from ftpd.fs.homefds import HomeFds
from ftpd.fs.iomode import IoMode
from ftpd.fs.local import LocalFS
from ftpd.fs.nowait import WouldBlock
from ftpd.server import server as servermod


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _ino(fd: int) -> int:
    return os.stat(".", dir_fd=fd).st_ino


def test_one_fd_per_home_until_it_is_due(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    homes = HomeFds()
    fd = homes.get(str(home), 100.0)
    before = _open_fds()
    assert homes.get(str(home), 100.0 + HomeFds.TTL / 2) == fd
    assert _open_fds() == before
    # Replaced on disk: the kept fd still names the old directory until it is due...
    old = _ino(fd)
    home.rename(tmp_path / "old")
    home.mkdir()
    assert _ino(homes.get(str(home), 100.5)) == old
    # ...and is reopened (the old one closed) once it is.
    fd2 = homes.get(str(home), 100.0 + HomeFds.TTL)
    assert _ino(fd2) == home.stat().st_ino != old
    assert _open_fds() == before
    homes.close()
    assert _open_fds() == before - 1


def test_expire_closes_the_due_ones_only(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    homes = HomeFds()
    before = _open_fds()
    homes.get(str(a), 10.0)
    homes.get(str(b), 10.6)
    assert _open_fds() == before + 2
    assert homes.expire(10.0 + HomeFds.TTL) == 1
    assert list(homes.fds) == [str(b)]
    assert _open_fds() == before + 1
    assert homes.expire(10.6 + HomeFds.TTL) == 1
    assert _open_fds() == before


def test_at_most_max_homes(tmp_path: Path) -> None:
    homes = HomeFds()
    before = _open_fds()
    paths = []
    for i in range(HomeFds.MAX + 5):
        p = tmp_path / f"h{i}"
        p.mkdir()
        paths.append(str(p))
        homes.get(str(p), 1.0)
    assert len(homes.fds) == HomeFds.MAX
    assert _open_fds() == before + HomeFds.MAX
    assert list(homes.fds) == paths[5:]  # the first opened went first
    homes.close()
    assert _open_fds() == before


def test_a_missing_home_is_an_error_and_is_not_kept(tmp_path: Path) -> None:
    homes = HomeFds()
    with pytest.raises((OSError, WouldBlock)):  # ENOENT, or EAGAIN: not in the dentry cache
        homes.get(str(tmp_path / "missing"), 1.0)
    assert homes.fds == {}


async def test_inline_stats_share_the_home_fd(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    mode = IoMode(inline=True, memory=False)
    fs = LocalFS(str(tmp_path), None, mode=mode)
    assert (await fs.stat("/d")).is_dir
    before = _open_fds()
    for _ in range(20):
        assert (await fs.stat("/d")).is_dir
        assert (await fs.stat("/")).is_dir
    assert _open_fds() == before
    assert list(mode.homes.fds) == [fs.home]
    mode.homes.close()


async def test_the_sweeper_closes_quiet_homes(tmp_path: Path) -> None:
    srv = servermod.Server(Config(root=str(tmp_path), password="x", port=0))
    try:
        homes = srv.storage.mode.homes
        before = _open_fds()
        now = time.monotonic()
        homes.get(str(tmp_path), now)
        assert _open_fds() == before + 1
        await srv.sweep_once(now + HomeFds.TTL / 2)
        assert _open_fds() == before + 1  # still in use
        await srv.sweep_once(now + HomeFds.TTL)
        assert homes.fds == {}
        assert _open_fds() == before
    finally:
        srv.executor.shutdown(wait=False)
        srv.io.shutdown()


async def test_a_memory_home_walks_in_one_call_and_symlinks_take_the_general_path(
    tmp_path: Path,
) -> None:
    """On a home with no disk the no-follow walk is one ``openat2`` beneath the kept home fd; a
    symlink on the way (here inside the home) is refused by it and the general path follows it,
    as the walk always did; one that leads out stays refused."""
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "f").write_bytes(b"x")
    (tmp_path / "link").symlink_to(tmp_path / "a")
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    (outside / "b").mkdir(parents=True)
    (tmp_path / "out").symlink_to(outside)
    mode = IoMode(inline=True, memory=True)
    fs = LocalFS(str(tmp_path), None, mode=mode)
    assert fs._hops.memory
    fd = fs._walk_fast(["a", "b"])
    assert fd is not None
    try:
        assert os.fstat(fd).st_ino == (tmp_path / "a" / "b").stat().st_ino
    finally:
        os.close(fd)
    assert list(mode.homes.fds) == [fs.home]  # the walk went through the kept home fd
    assert fs._walk_fast(["link", "b"]) is None  # a symlink on the way: not this path
    assert fs._walk_fast(["a", "missing"]) is None
    assert [e.name for e in await fs.list("/link/b")] == ["f"]  # the general path follows it
    with pytest.raises(PermissionError):
        await fs.list("/out/b")  # out of the home: refused, whichever path
    mode.homes.close()
