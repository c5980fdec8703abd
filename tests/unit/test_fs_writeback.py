"""``ftpd.fs.writeback``: an upload streamed to the disk window by window holds a bounded number
of dirty pages, and its bytes are exactly what was written (from the start, after REST, APPE)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ftpd.fs import nowait, writeback
from ftpd.fs.iopool import IoPool
from ftpd.fs.local import LocalFS
from ftpd.fs.writeback import BEHIND, WINDOW, Writeback

MiB = 1024 * 1024
BOUND = (BEHIND + 1) * WINDOW + MiB  # an upload's dirty and write-back pages at most
BLOCKS = (BEHIND + 3) * WINDOW // MiB  # MiB written: more than the bound
needs = pytest.mark.skipif(
    not writeback.available() or not nowait.has_cachestat(),
    reason="needs Linux sync_file_range and cachestat (6.5+)",
)


def _write(path: Path, blocks: int, wb: Writeback | None, flags: int = 0) -> int:
    """Write ``blocks`` MiB; the file's dirty + write-back pages right after."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | flags, 0o644)
    try:
        for i in range(blocks):
            n = os.write(fd, bytes([i % 251]) * MiB)
            if wb is not None:
                wb.wrote(fd, n)
        dirty = nowait.dirty_pages(fd)
        assert dirty is not None
        return dirty * nowait.PAGE
    finally:
        os.close(fd)


@needs
def test_dirty_pages_stay_within_the_windows_in_flight(tmp_path: Path) -> None:
    blocks = BLOCKS
    plain = _write(tmp_path / "plain", blocks, None)
    if plain <= BOUND:
        pytest.skip(f"{tmp_path} keeps no dirty pages (tmpfs?): no write-back to bound")
    streamed = _write(tmp_path / "streamed", blocks, Writeback())
    assert streamed <= BOUND, (streamed, plain)
    expect = b"".join(bytes([i % 251]) * MiB for i in range(blocks))
    assert (tmp_path / "streamed").read_bytes() == expect


def test_rest_and_append_start_mid_file(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * (3 * MiB))
    fd = os.open(path, os.O_WRONLY)
    wb = Writeback()
    try:
        os.lseek(fd, MiB, os.SEEK_SET)  # REST 1 MiB
        for _ in range(2 * WINDOW // MiB):
            wb.wrote(fd, os.write(fd, b"y" * MiB))
    finally:
        os.close(fd)
    data = path.read_bytes()
    assert data[:MiB] == b"x" * MiB and data[MiB:] == b"y" * (2 * WINDOW)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    wb = Writeback()
    try:
        wb.wrote(fd, os.write(fd, b"z" * 100))
    finally:
        os.close(fd)
    assert path.read_bytes()[-101:] == b"y" + b"z" * 100


@needs
async def test_an_upload_streamed_to_disk_through_localfs(tmp_path: Path) -> None:
    """``LocalWriter.stream_to_disk``: the writes of an upload (in the IO threads) leave at most
    ``BEHIND + 1`` windows dirty; the committed file has every byte."""
    home = tmp_path / "home"
    home.mkdir()
    pool = IoPool(2, "test-writeback")
    try:
        fs = LocalFS(str(home), pool)
        blocks = BLOCKS
        w = await fs.open_write("/up.bin")
        w.stream_to_disk()
        for i in range(blocks):
            await w.write(bytes([i % 251]) * MiB)
        dirty = nowait.dirty_pages(w._fd)
        await w.commit()
    finally:
        pool.shutdown()
    assert dirty is not None and dirty * nowait.PAGE <= BOUND, dirty
    expect = b"".join(bytes([i % 251]) * MiB for i in range(blocks))
    assert (home / "up.bin").read_bytes() == expect
