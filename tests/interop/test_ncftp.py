"""NcFTP's one-shot tools against ftpd: ``ncftpls`` (its default ``NLST -CF``, a long listing and
MLSD), ``ncftpget`` (download; ``-DD`` deletes the remote file afterwards) and ``ncftpput``
(``-m`` makes the directory, ``-T`` uploads to a temporary name and renames it), in passive (``-F``)
and active (``-E``) mode.

Each tool writes its transcript (``Cmd: VERB`` lines) to a ``-d`` file and has its own timeout
(``-t``) and no redial (``-r 0``); results are checked on the server's disk.
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
    assert_absent,
    assert_dir,
    assert_file,
    ftp_url,
    listing_names,
    require,
    run,
    top_names,
    tree,
    upload_payload,
    write_local,
)

pytestmark = [
    pytest.mark.interop,
    pytest.mark.client("ncftpls", "ncftp"),
    pytest.mark.client("ncftpget", "ncftp"),
    pytest.mark.client("ncftpput", "ncftp"),
]

# Data-connection mode -> (ncftp flag, the command it must send).
MODES = {"PASV": ("-F", "PASV"), "PORT": ("-E", "PORT")}


def ncftp(
    tool: str, srv: Any, ws: Path, *args: str, check: bool = True
) -> tuple[Result, list[str]]:
    """Run an ncftp tool; return its result and the commands it logged (``Cmd: ...``)."""
    log = ws / f"{tool}.debug"
    log.unlink(missing_ok=True)
    argv = [require(tool, "ncftp"), "-u", srv.user, "-p", srv.password, "-P", str(srv.port)]
    argv += ["-t", str(NET_TIMEOUT), "-r", "0", "-d", str(log), *args]
    res = run(argv, ws, check=check)
    text = log.read_text(errors="replace") if log.exists() else ""
    cmds = [line.split("Cmd: ", 1)[1].strip() for line in text.splitlines() if "Cmd: " in line]
    return res, cmds


def test_ncftpls_default_is_nlst_cf(srv: Any, ws: Path) -> None:
    """ncftpls lists with ``NLST -CF`` by default: ``-CF`` are ls flags, not a path; the reply
    must list the directory (names, optionally with ``/`` after directories)."""
    res, cmds = ncftp("ncftpls", srv, ws, ftp_url(srv, with_login=False))
    assert "NLST -CF" in cmds, cmds
    assert {n.rstrip("/*@") for n in res.stdout.split()} == top_names(srv.root), res.describe()


@pytest.mark.parametrize("mode", list(MODES))
def test_ncftp_workflow(srv: Any, ws: Path, mode: str) -> None:
    flag, data_cmd = MODES[mode]
    root: Path = srv.root

    # list: long (LIST) and machine-readable (MLSD) listings
    res, cmds = ncftp("ncftpls", srv, ws, flag, "-l", ftp_url(srv, with_login=False))
    assert listing_names(res.stdout) == top_names(root), res.describe()
    assert data_cmd in {c.split()[0] for c in cmds}, cmds
    res, cmds = ncftp("ncftpls", srv, ws, flag, "-m", ftp_url(srv, "/docs/", with_login=False))
    assert "MLSD" in cmds, cmds
    assert "readme.txt" in res.stdout, res.describe()

    # download
    ncftp("ncftpget", srv, ws, flag, srv.host, str(ws), "/hello.txt")
    assert (ws / "hello.txt").read_bytes() == PAYLOAD

    # mkdir + upload to a temporary name + rename
    up = upload_payload(mode)
    write_local(ws, "up.bin", up)
    res, cmds = ncftp("ncftpput", srv, ws, flag, "-m", "-T", "tmp.", srv.host, "/made", "up.bin")
    verbs = [c.split()[0] for c in cmds]
    assert {"MKD", "STOR", "RNFR", "RNTO"} <= set(verbs), cmds
    assert_dir(root, "made")
    assert_file(root, "made/up.bin", up)

    # download and delete the remote file (-DD), then remove its directory (raw RMD)
    (ws / "dl").mkdir()
    res, cmds = ncftp(
        "ncftpget", srv, ws, flag, "-DD", srv.host, str(ws / "dl"), "/docs/readme.txt"
    )
    assert (ws / "dl" / "readme.txt").read_bytes() == SMALL
    assert "DELE" in {c.split()[0] for c in cmds}, cmds
    assert_absent(root, "docs/readme.txt")
    # ncftpls -Z (no listing) exits 4 even when every command succeeded: the disk decides.
    _, cmds = ncftp(
        "ncftpls", srv, ws, "-Z", "-Y", "RMD docs", ftp_url(srv, with_login=False), check=False
    )
    assert "RMD docs" in cmds, cmds
    assert_absent(root, "docs")

    assert tree(root) == {"hello.txt", "made/", "made/up.bin"}
