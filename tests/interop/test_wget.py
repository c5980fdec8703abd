"""GNU wget against ftpd (it only reads): a directory listing (wget sends ``LIST -a``, as WinSCP and
basic-ftp do, and keeps the raw reply in ``.listing``), a download and a recursive download, in
passive (PASV) and active (``--no-passive-ftp``: PORT) mode.

``--no-config`` ignores any wgetrc, ``--tries=1 --timeout`` bound each run; ``-d`` prints the
commands sent (``--> CMD``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .support import (
    NET_TIMEOUT,
    PAYLOAD,
    SMALL,
    Result,
    ftp_url,
    listing_names,
    replies_to,
    reply_code,
    require,
    run,
    sent_commands,
    top_names,
)

pytestmark = [
    pytest.mark.interop,
    pytest.mark.client("wget"),
]

# Data-connection mode -> (wget flags, the command it must send).
MODES = {"PASV": ([], "PASV"), "PORT": (["--no-passive-ftp"], "PORT")}


def wget(ws: Path, *args: str) -> Result:
    argv = [require("wget"), "--no-config", "-d", "--tries=1", f"--timeout={NET_TIMEOUT}", *args]
    return run(argv, ws)


@pytest.mark.parametrize("mode", list(MODES))
def test_wget_list_and_download(srv: Any, ws: Path, mode: str) -> None:
    flags, data_cmd = MODES[mode]
    (srv.root / ".hidden").write_bytes(b"")  # LIST -a must show it

    res = wget(ws, *flags, "--no-remove-listing", "-O", "index.html", ftp_url(srv))
    listing = (ws / ".listing").read_text(encoding="utf-8")
    assert listing_names(listing) == top_names(srv.root), listing
    assert data_cmd in {c.split()[0] for c in sent_commands(res.stderr, "--> ")}, res.describe()

    wget(ws, *flags, "-O", "got.bin", ftp_url(srv, "/hello.txt"))
    assert (ws / "got.bin").read_bytes() == PAYLOAD

    wget(ws, *flags, "-r", "-nH", "--no-parent", ftp_url(srv, "/docs/"))
    assert (ws / "docs" / "readme.txt").read_bytes() == SMALL


def test_wget_list_a(srv: Any, ws: Path) -> None:
    """wget (like WinSCP and basic-ftp) asks for ``LIST -a``: ``-a`` is an ls flag, not a name
    pattern, so the reply must be the full listing (some servers return nothing, see
    protocol-and-clients.md §2.4), with dot files."""
    (srv.root / ".hidden").write_bytes(b"")
    res = wget(ws, "--no-remove-listing", "-O", "index.html", ftp_url(srv))
    assert "LIST -a" in sent_commands(res.stderr, "--> "), res.describe()
    assert reply_code(replies_to(res.stderr, "--> ", ""), "LIST -a") == "150"
    names = listing_names((ws / ".listing").read_text(encoding="utf-8"))
    assert names == {".hidden", "hello.txt", "docs"}
