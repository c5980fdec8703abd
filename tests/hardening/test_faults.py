"""Server-side faults, nothing lost: disk full, read-only and immutable files, I/O errors.

Real filesystems, no mocks (the server is another process): a 2 MiB ``tmpfs`` for ``ENOSPC`` and
``EROFS`` (``mount -o remount,ro``), and a loop-mounted 4 MiB ext2 image for ``EPERM``
(``chattr +i``) and ``EIO`` (the image is truncated under a file whose pages were dropped from
the cache, so that reading it fails in the block layer). The tests run as root, as CI does; if
mounting is refused they fail with the reason rather than skip.

Expected replies (the errno table of docs/ARCHITECTURE.md): ENOSPC → 452 with the partial temp
file removed and the previous version intact; EROFS/EPERM → 550; EIO → 451. The session goes on
after each.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.client import Ctl

BIG = bytes(range(256)) * (16 * 1024)  # 4 MiB: twice the tmpfs


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=30)


class Mount:
    def __init__(self, path: Path, kind: str, image: Path | None = None) -> None:
        self.path = path
        self.kind = kind
        self.image = image

    def remount(self, opts: str) -> None:
        r = _run("mount", "-o", f"remount,{opts}", str(self.path))
        assert r.returncode == 0, r.stderr

    def free(self) -> int:
        st = os.statvfs(self.path)
        return st.f_bfree * st.f_frsize

    def temp_files(self) -> list[str]:
        return sorted(p.name for p in self.path.rglob(".ftpd-upload-*"))


def _umount(path: Path) -> None:
    for _ in range(20):
        if _run("umount", str(path)).returncode == 0:
            return
        time.sleep(0.2)  # retry interval: umount fails while the server still closes files
    _run("umount", "-l", str(path))


def _mount_ext2(tmp_path: Path, size_mib: int) -> Mount:
    if shutil.which("mkfs.ext2") is None:
        pytest.fail(
            "mkfs.ext2 is needed for the loop-mounted filesystem (apt-get install e2fsprogs)"
        )
    image = tmp_path / "fs.img"
    with open(image, "wb") as fh:
        fh.truncate(size_mib << 20)
    r = _run("mkfs.ext2", "-q", "-F", "-m", "0", str(image))
    assert r.returncode == 0, r.stderr
    mnt = tmp_path / "ext2"
    mnt.mkdir()
    r = _run("mount", "-o", "loop", str(image), str(mnt))
    if r.returncode != 0:
        pytest.fail(f"cannot loop-mount an ext2 image (run as root): {r.stderr.strip()}")
    return Mount(mnt, "ext2", image)


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Mount]:
    """A 2 MiB filesystem: tmpfs, or a loop-mounted ext2 image where tmpfs cannot be mounted."""
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    r = _run("mount", "-t", "tmpfs", "-o", "size=2m,mode=0755", "tmpfs", str(mnt))
    m = Mount(mnt, "tmpfs") if r.returncode == 0 else _mount_ext2(tmp_path, 2)
    yield m
    _umount(m.path)


@pytest.fixture
def ext2(tmp_path: Path) -> Iterator[Mount]:
    m = _mount_ext2(tmp_path, 4)
    yield m
    for p in m.path.rglob("*"):
        _run("chattr", "-i", str(p))
    _umount(m.path)


def _stor_expect_failure(c: Ctl, verb: str, name: str, data: bytes) -> tuple[int, int]:
    """Upload ``data``; the server may stop reading and close at any point. (150 code, final)."""
    d = c.data_socket()
    r = c.cmd(f"{verb} {name}")
    if r.code != 150:
        d.close()
        return r.code, r.code
    try:
        d.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass
    d.close()
    return 150, c.reply().code


@pytest.mark.parametrize("atomic", [True, False])
def test_disk_full_is_452_and_cleaned_up(
    servers: Any, small_fs: Mount, figures: Any, atomic: bool
) -> None:
    (small_fs.path / "keep.txt").write_bytes(b"previous version\n")
    srv = servers(root=str(small_fs.path), atomic_uploads=atomic)
    free0 = small_fs.free()
    with Ctl(srv.host, srv.port).login(srv.user, srv.password) as c:
        c.cmd("TYPE I")
        results = {}
        for verb, name in (("STOR", "big.bin"), ("STOR", "keep.txt"), ("APPE", "appended.bin")):
            results[f"{verb} {name}"] = _stor_expect_failure(c, verb, name, BIG)
            assert c.cmd("NOOP").code == 200  # the session continues
            if atomic:
                assert small_fs.temp_files() == [], small_fs.temp_files()
        # Space is available again for a normal upload (nothing was left behind).
        for leftover in ("big.bin", "appended.bin"):
            if (small_fs.path / leftover).exists():
                assert not atomic or leftover == "appended.bin"  # in place: kept for resume
                assert c.cmd(f"DELE {leftover}").code == 250
        assert c.stor("small.txt", b"fits\n").code == 226
    figures.record(
        f"disk full ({small_fs.kind}, atomic={atomic})",
        **{k: v[1] for k, v in results.items()},
        free_before=free0,
        free_after=small_fs.free(),
    )
    assert all(v == (150, 452) for v in results.values()), results
    if atomic:
        assert (small_fs.path / "keep.txt").read_bytes() == b"previous version\n"
    assert (small_fs.path / "small.txt").read_bytes() == b"fits\n"
    assert "Traceback" not in srv.log()


def test_read_only_filesystem_is_550(servers: Any, small_fs: Mount) -> None:
    (small_fs.path / "f.txt").write_bytes(b"data\n")
    (small_fs.path / "d").mkdir()
    srv = servers(root=str(small_fs.path))
    small_fs.remount("ro")
    try:
        with Ctl(srv.host, srv.port).login(srv.user, srv.password) as c:
            c.cmd("TYPE I")
            codes = {
                "STOR": _stor_expect_failure(c, "STOR", "new.txt", b"x")[1],
                "STOR over": _stor_expect_failure(c, "STOR", "f.txt", b"x")[1],
                "APPE": _stor_expect_failure(c, "APPE", "f.txt", b"x")[1],
                "MKD": c.cmd("MKD nd").code,
                "RMD": c.cmd("RMD d").code,
                "DELE": c.cmd("DELE f.txt").code,
                "SITE CHMOD": c.cmd("SITE CHMOD 600 f.txt").code,
                "MFMT": c.cmd("MFMT 20200101000000 f.txt").code,
            }
            assert c.cmd("RNFR f.txt").code == 350
            codes["RNTO"] = c.cmd("RNTO g.txt").code
            data, _, r = c.retr("f.txt")  # reading still works
            assert (r.code, data) == (226, b"data\n")
    finally:
        small_fs.remount("rw")
    assert all(code == 550 for code in codes.values()), codes
    assert (small_fs.path / "f.txt").read_bytes() == b"data\n"


def test_immutable_files_are_550(servers: Any, ext2: Mount) -> None:
    (ext2.path / "locked.txt").write_bytes(b"locked\n")
    (ext2.path / "lockdir").mkdir()
    (ext2.path / "lockdir" / "in.txt").write_bytes(b"in\n")
    for p in (ext2.path / "locked.txt", ext2.path / "lockdir"):
        r = _run("chattr", "+i", str(p))
        assert r.returncode == 0, r.stderr
    srv = servers(root=str(ext2.path))
    with Ctl(srv.host, srv.port).login(srv.user, srv.password) as c:
        c.cmd("TYPE I")
        codes = {
            "STOR over": _stor_expect_failure(c, "STOR", "locked.txt", b"new")[1],
            "APPE": _stor_expect_failure(c, "APPE", "locked.txt", b"new")[1],
            "STOR into dir": _stor_expect_failure(c, "STOR", "lockdir/new.txt", b"new")[1],
            "DELE": c.cmd("DELE locked.txt").code,
            "DELE in dir": c.cmd("DELE lockdir/in.txt").code,
            "MKD in dir": c.cmd("MKD lockdir/sub").code,
            "SITE CHMOD": c.cmd("SITE CHMOD 600 locked.txt").code,
        }
        assert c.cmd("NOOP").code == 200
    assert all(code == 550 for code in codes.values()), codes
    assert (ext2.path / "locked.txt").read_bytes() == b"locked\n"
    assert ext2.temp_files() == []


def test_io_error_is_451_and_the_session_continues(servers: Any, ext2: Mount) -> None:
    assert ext2.image is not None
    victim = ext2.path / "victim.bin"
    with open(victim, "wb") as fh:
        fh.write(os.urandom(2 << 20))
        fh.flush()
        os.fsync(fh.fileno())
    (ext2.path / "ok.txt").write_bytes(b"ok\n")
    srv = servers(root=str(ext2.path))
    with Ctl(srv.host, srv.port).login(srv.user, srv.password) as c:
        c.cmd("TYPE I")
        data, _, r = c.retr("ok.txt")
        assert r.code == 226
        fd = os.open(victim, os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
        os.truncate(ext2.image, 1 << 20)  # the victim's blocks are now beyond the device's end
        for mode in ("I", "A"):
            c.cmd(f"TYPE {mode}")
            data, r150, r = c.retr("victim.bin")
            assert r150.code in (150, 451), r150
            assert r.code == 451, (mode, r)
            assert len(data) < 2 << 20
            assert c.cmd("NOOP").code == 200
    assert "Traceback" not in srv.log()
