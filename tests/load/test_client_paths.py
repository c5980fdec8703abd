"""The client's two plain download paths (splice to /dev/null and the shared buffer) agree.

Downloads are spliced to /dev/null where ``os.splice`` exists, so that the tool costs the loopback
no copy to user space; the buffered path serves TLS and other systems. Both must count the same
bytes, detect a short transfer and leave the session usable.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator

import pytest
from fakeftp import FakeFtp

from ftpd.load import client
from ftpd.load.client import FtpClient, ShortTransfer, splice_to_null

SIZE = 3_000_000  # several splice and recv calls


@pytest.fixture
def fake() -> Iterator[FakeFtp]:
    server = FakeFtp(file_size=SIZE).start()
    yield server
    server.stop()


@pytest.fixture(params=["splice", "buffered"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "splice" and not hasattr(os, "splice"):
        pytest.skip("no os.splice on this system")  # the buffered case still runs
    monkeypatch.setattr(client, "use_splice", request.param == "splice")
    return str(request.param)


async def test_download_counts_bytes_and_checks_size(fake: FakeFtp, path: str) -> None:
    s = FtpClient()
    await s.connect(("127.0.0.1", fake.port), socket.AF_INET, None)
    await s.login("user", "pass")
    assert await s.download("RETR a", expected=SIZE) == SIZE
    assert await s.download("RETR b", epsv=True) == SIZE
    with pytest.raises(ShortTransfer):
        await s.download("RETR c", expected=SIZE + 1)
    # The session survived the short transfer: the next command works.
    assert await s.download("RETR d", expected=SIZE) == SIZE
    await s.quit()
    assert [d.nbytes for d in fake.data] == [SIZE] * 4


@pytest.mark.skipif(not hasattr(os, "splice"), reason="no os.splice on this system")
async def test_splice_to_null_reads_to_eof() -> None:
    a, b = socket.socketpair()
    a.setblocking(False)
    payload = os.urandom(5 << 20)

    def writer() -> None:
        b.sendall(payload)
        b.close()

    loop = asyncio.get_running_loop()
    sender = loop.run_in_executor(None, writer)
    try:
        assert await splice_to_null(a) == len(payload)
    finally:
        a.close()
        await sender
