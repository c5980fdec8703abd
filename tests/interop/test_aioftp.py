"""aioftp's client against ftpd: the file workflow with its default passive commands (EPSV, then
PASV) and with PASV alone (aioftp has no active mode), and its TLS preamble before USER: AUTH TLS
(``upgrade_to_tls``), PBSZ 0 and PROT P. ftpd has no TLS configured here, so each must be refused
with an error while the session carries on to a normal login and transfer.

aioftp logs every command it sends at DEBUG on ``aioftp.client``; ``caplog`` records them.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import aioftp
import pytest

from .support import (
    NET_TIMEOUT,
    PAYLOAD,
    SMALL,
    assert_absent,
    assert_dir,
    assert_file,
    top_names,
    tree,
    upload_payload,
    write_local,
)

pytestmark = pytest.mark.interop

ANY_CODE = ("1xx", "2xx", "3xx", "4xx", "5xx")
TEST_DEADLINE = 30.0  # the whole conversation, on top of aioftp's own socket timeouts


def client(**kw: Any) -> aioftp.Client:
    return aioftp.Client(socket_timeout=NET_TIMEOUT, connection_timeout=NET_TIMEOUT, **kw)


def sent(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "aioftp.client"]


@pytest.mark.parametrize(
    ("passive_commands", "data_cmd"),
    [(("epsv", "pasv"), "EPSV"), (("pasv",), "PASV")],
    ids=["EPSV", "PASV"],
)
async def test_aioftp_workflow(
    srv: Any,
    ws: Path,
    caplog: pytest.LogCaptureFixture,
    passive_commands: tuple[str, ...],
    data_cmd: str,
) -> None:
    caplog.set_level(logging.DEBUG, logger="aioftp.client")
    root: Path = srv.root
    up = upload_payload(data_cmd)
    write_local(ws, "up.bin", up)
    c = client(passive_commands=passive_commands)
    async with asyncio.timeout(TEST_DEADLINE):
        await c.connect(srv.host, srv.port)
        try:
            await c.login(srv.user, srv.password)
            listed = await c.list()
            assert {p.name for p, _ in listed} == top_names(root)
            assert {p.name: info["type"] for p, info in listed} == {
                "hello.txt": "file",
                "docs": "dir",
            }

            await c.download("hello.txt", ws / "got.bin", write_into=True)
            assert (ws / "got.bin").read_bytes() == PAYLOAD
            async with c.download_stream("docs/readme.txt") as stream:
                assert await stream.read() == SMALL

            await c.make_directory("made")
            assert_dir(root, "made")
            await c.upload(ws / "up.bin", "made/new.bin", write_into=True)
            assert_file(root, "made/new.bin", up)
            assert int((await c.stat("made/new.bin"))["size"]) == len(up)

            await c.rename("made/new.bin", "made/renamed.bin")
            assert_file(root, "made/renamed.bin", up)
            await c.remove_file("docs/readme.txt")
            await c.remove_directory("docs")
            assert_absent(root, "docs")
            await c.quit()
        finally:
            c.close()
    verbs = {m.split()[0].upper() for m in sent(caplog) if m}
    assert data_cmd in verbs, sent(caplog)
    if data_cmd == "PASV":
        assert "EPSV" not in verbs
    assert tree(root) == {"hello.txt", "made/", "made/renamed.bin"}


async def test_aioftp_tls_preamble_before_user_is_refused(srv: Any, ws: Path) -> None:
    """aioftp's ``upgrade_to_tls()`` sends AUTH TLS then PBSZ 0 / PROT P, typically before USER.
    Without TLS the server refuses each with a 5xx (not 421, not a close) and the session goes on."""
    c = client()
    async with asyncio.timeout(TEST_DEADLINE):
        await c.connect(srv.host, srv.port)
        try:
            with pytest.raises(aioftp.StatusCodeError) as info:
                await c.upgrade_to_tls()
            assert info.value.received_codes[0].matches("5xx"), info.value
            for cmd in ("PBSZ 0", "PROT P"):
                code, lines = await c.command(cmd, ANY_CODE)
                assert code.matches("5xx") and code != "530", (cmd, code, lines)
            await c.login(srv.user, srv.password)
            write_local(ws, "up.bin", SMALL)
            await c.upload(ws / "up.bin", "up.bin", write_into=True)
            assert_file(srv.root, "up.bin", SMALL)
            await c.quit()
        finally:
            c.close()
