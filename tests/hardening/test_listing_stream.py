"""Issue 16 item 5: listings are streamed in bounded batches, nothing read before connecting.

A listing used to be read whole and formatted on the event loop before the data connection was
even there: twenty sessions sending ``PASV`` + ``LIST`` of a huge directory and never connecting
pushed the server from 29 to 711 MiB. Now a listing is read and formatted in the IO threads a
batch at a time, once the data connection exists, at the pace the client reads; STAT of a
directory streams its reply the same way. (The NOOP latency while a 200,000-entry directory is
listed is measured by ``bench/listing_stall.py``, not here: timing on a loaded machine.)
"""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.client import Ctl, recv_all, split_replies
from support.proc import fds, pss_kib, settle_fds
from support.waits import wait_until

ENTRIES = 30_000
NAME = "n" * 90  # long names: ~150-byte LIST lines, ~4.5 MB for the directory
BOUND_KIB = 4096  # what one listing may cost at most, whatever the directory's size


@pytest.fixture(scope="module")
def big_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("listing-root")
    big = root / "big"
    big.mkdir()
    for i in range(ENTRIES):
        os.mknod(big / f"{NAME}{i:06d}")
    (root / "small").mkdir()
    for name in ("c", "a", "b"):
        (root / "small" / name).write_bytes(name.encode())
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _names(listing: bytes) -> list[str]:
    lines = listing.decode().split("\r\n")
    assert lines[-1] == ""
    return [ln.rsplit(" ", 1)[-1] if " " in ln else ln for ln in lines[:-1]]


def test_unconnected_listings_read_nothing(servers: Any, big_root: Path, figures: Any) -> None:
    srv = servers(root=str(big_root))
    base_fds, base_pss = fds(srv.pid), pss_kib(srv.pid)
    sessions = []
    try:
        for _ in range(10):
            c = Ctl(srv.host, srv.port).login(srv.user, srv.password)
            sessions.append(c)
            c.epsv()  # a passive port nobody connects to
            c.send(b"LIST big\r\n")
            # NOOP jumps the queue once LIST has handed over to its transfer (waiting for the
            # data connection): by then the old code had read and formatted the directory.
            assert c.cmd("NOOP").code == 200
        peak = pss_kib(srv.pid)
        t0 = time.monotonic()
        with Ctl(srv.host, srv.port, source="127.0.0.3").login(srv.user, srv.password) as c:
            data, r = c.listing("NLST", "small")
            assert r.code == 226 and data == b"a\r\nb\r\nc\r\n"  # a small directory: sorted
        assert time.monotonic() - t0 < 1.0
    finally:
        for c in sessions:
            c.close()
    figures.record(
        "listings never connected",
        sessions=10,
        entries=ENTRIES,
        pss_before_kib=base_pss,
        pss_peak_kib=peak,
    )
    assert peak - base_pss < BOUND_KIB, (base_pss, peak)
    assert settle_fds(srv.pid, base_fds) <= base_fds


@pytest.mark.parametrize("verb", ["LIST", "NLST", "MLSD"])
def test_listing_memory_is_bounded_and_complete(
    servers: Any, big_root: Path, verb: str, figures: Any
) -> None:
    srv = servers(root=str(big_root))
    base_fds, base_pss = fds(srv.pid), pss_kib(srv.pid)
    with Ctl(srv.host, srv.port).login(srv.user, srv.password) as c:
        d = c.data_socket()
        d.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        assert c.cmd(f"{verb} big").code == 150
        head = d.recv(65536)  # read a little, then stop: the server must wait, not build
        grew = wait_until(lambda: pss_kib(srv.pid) - base_pss > BOUND_KIB, 1.0)
        held = pss_kib(srv.pid)
        data = head + recv_all(d)
        d.close()
        assert c.reply().code == 226
    names = _names(data)
    assert len(names) == ENTRIES and len(set(names)) == ENTRIES
    assert set(names) == {f"{NAME}{i:06d}" for i in range(ENTRIES)}
    figures.record(
        f"{verb} of {ENTRIES} entries", pss_before_kib=base_pss, pss_held_kib=held, bytes=len(data)
    )
    assert not grew and held - base_pss < BOUND_KIB, (base_pss, held)
    assert settle_fds(srv.pid, base_fds) <= base_fds


def test_stat_of_a_directory_is_streamed(servers: Any, big_root: Path) -> None:
    srv = servers(root=str(big_root))
    base_pss = pss_kib(srv.pid)
    with Ctl(srv.host, srv.port).login(srv.user, srv.password) as c:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        c.send(b"STAT big\r\n")  # then not reading: the server must not build the reply
        grew = wait_until(lambda: pss_kib(srv.pid) - base_pss > BOUND_KIB, 1.0)
        held = pss_kib(srv.pid)
        raw = b""
        while True:
            chunk = c.sock.recv(262144)
            assert chunk
            raw += chunk
            replies, rest = split_replies(raw)
            if replies:
                break
        (reply,) = replies
        assert rest == b""
        assert (
            reply[0].startswith(b'213-Status of "/big":') and reply[-1] == b"213 End of status.\r\n"
        )
        assert len(reply) == ENTRIES + 2
        assert c.cmd("NOOP").code == 200
    assert not grew and held - base_pss < BOUND_KIB, (base_pss, held)


def test_nothing_is_read_before_the_first_read(tmp_path: Path) -> None:
    """The stream is lazy: opening it touches nothing (so a session that never connects costs
    nothing), and the first read does the opening (its errors come then)."""

    from ftpd.fs.local import LocalFS
    from ftpd.proto.listing import LineFormat, ListingKind

    async def main() -> None:
        (tmp_path / "d").mkdir()
        (tmp_path / "d" / "x").write_bytes(b"")
        fs = LocalFS(str(tmp_path), None)
        fmt = LineFormat(ListingKind.NLST)
        stream = await fs.open_listing("/missing", fmt)  # no error: nothing looked at yet
        with pytest.raises(OSError) as ei:
            await stream.read()
        assert ei.value.errno == errno.ENOENT
        stream = await fs.open_listing("/d", fmt)
        os.rename(tmp_path / "d", tmp_path / "e")  # after opening, before reading
        (tmp_path / "d").mkdir()
        (tmp_path / "d" / "y").write_bytes(b"")
        assert await stream.read() == b"y\r\n"  # read at read time, not at open time
        assert await stream.read() == b""
        await stream.close()

    asyncio.run(main())
