"""tnftp (NetBSD ftp) against ftpd: the file workflow in its four data-connection modes (EPSV by
default, PASV with ``epsv4 off``, EPRT with ``passive off``, PORT with both), ``ls -la`` passed
through as ``LIST -la``, and names with spaces and UTF-8.

tnftp reads a non-interactive script on stdin (``-n``: no auto-login; ``-d``: print each command
sent as ``---> CMD``; ``-q``: give up on a stalled connection). tnftp's exit code says little about
the commands of a script, so every result is checked on the server's disk.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .support import (
    NET_TIMEOUT,
    PAYLOAD,
    SMALL,
    SPACE_DIR,
    SPACE_NAME,
    UTF8_NAME,
    Result,
    assert_absent,
    assert_dir,
    assert_file,
    listing_names,
    require,
    run,
    sent_commands,
    top_names,
    tree,
    upload_payload,
    write_local,
)

pytestmark = [
    pytest.mark.interop,
    pytest.mark.client("tnftp"),
]

# Data-connection mode -> (tnftp commands, the command tnftp must send for it).
MODES = {
    "EPSV": ([], "EPSV"),
    "PASV": (["epsv4 off"], "PASV"),
    "EPRT": (["passive off"], "EPRT"),
    "PORT": (["passive off", "epsv4 off"], "PORT"),
}


def tnftp(srv: Any, ws: Path, commands: list[str]) -> Result:
    script = [f"open {srv.host} {srv.port}", f"user {srv.user} {srv.password}", *commands, "quit"]
    argv = [require("tnftp"), "-n", "-v", "-d", "-q", str(NET_TIMEOUT)]
    return run(argv, ws, input="\n".join(script) + "\n")


def verbs(res: Result) -> set[str]:
    return {c.split()[0] for c in sent_commands(res.stdout, "---> ") if c}


@pytest.mark.parametrize("mode", list(MODES))
def test_tnftp_workflow(srv: Any, ws: Path, mode: str) -> None:
    setup, data_cmd = MODES[mode]
    root: Path = srv.root
    up = upload_payload(mode)
    write_local(ws, "up.bin", up)
    res = tnftp(
        srv,
        ws,
        [
            *setup,
            "ls",
            "get hello.txt got.bin",
            "mkdir made",
            "put up.bin made/new.bin",
            "rename made/new.bin made/renamed.bin",
            "delete docs/readme.txt",
            "rmdir docs",
        ],
    )
    assert data_cmd in verbs(res), res.describe()
    if mode in ("EPRT", "PORT"):
        assert not {"PASV", "EPSV"} & verbs(res), res.describe()
    assert {"hello.txt", "docs"} <= listing_names(res.stdout)
    assert (ws / "got.bin").read_bytes() == PAYLOAD
    assert_dir(root, "made")
    assert_file(root, "made/renamed.bin", up)
    assert_absent(root, "made/new.bin")
    assert_absent(root, "docs")
    assert tree(root) == {"hello.txt", "made/", "made/renamed.bin"}


def test_tnftp_ls_la_passes_options(srv: Any, ws: Path) -> None:
    """``ls "-la docs"`` (tnftp's remote-path argument, sent verbatim) becomes ``LIST -la docs``:
    the server must take ``-la`` as ls options and list ``docs``, not look for a file ``-la``."""
    (srv.root / "docs" / ".hidden").write_bytes(b"")
    res = tnftp(srv, ws, ['ls "-la docs"', "ls -la"])
    assert "LIST -la docs" in sent_commands(res.stdout, "---> "), res.describe()
    names = listing_names(res.stdout)
    assert {"readme.txt", ".hidden"} <= names, res.describe()
    assert top_names(srv.root) <= names, res.describe()


def test_tnftp_names_with_spaces_and_utf8(srv: Any, ws: Path) -> None:
    root: Path = srv.root
    write_local(ws, "a.bin", SMALL)
    write_local(ws, "b.bin", PAYLOAD)
    res = tnftp(
        srv,
        ws,
        [
            f'mkdir "{SPACE_DIR}"',
            f'put a.bin "{SPACE_DIR}/{SPACE_NAME}"',
            f'put b.bin "{SPACE_DIR}/{UTF8_NAME}"',
            f'ls "{SPACE_DIR}"',
            f'get "{SPACE_DIR}/{UTF8_NAME}" back.bin',
            f'rename "{SPACE_DIR}/{SPACE_NAME}" "{UTF8_NAME}"',
        ],
    )
    assert {SPACE_NAME, UTF8_NAME} <= listing_names(res.stdout), res.describe()
    assert (ws / "back.bin").read_bytes() == PAYLOAD
    assert_file(root, f"{SPACE_DIR}/{UTF8_NAME}", PAYLOAD)
    assert_file(root, UTF8_NAME, SMALL)
    assert_absent(root, f"{SPACE_DIR}/{SPACE_NAME}")
