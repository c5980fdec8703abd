"""rclone's FTP backend (jlaffaye/ftp) against ftpd: the file workflow with EPSV (its default) and
PASV (``--ftp-disable-epsv``), ``rclone sync`` keeping modification times (MLSD + MDTM + MFMT),
``OPTS UTF8 ON`` answered ``200`` (jlaffaye fails the whole login on any other code) and names with
spaces and UTF-8.

The remote ``srv:`` is defined only by ``RCLONE_CONFIG_SRV_*`` variables with the password from
``rclone obscure``, and ``--config`` points to an empty file in tmp: the machine's rclone config is
never read. ``--dump headers`` logs the control connection (``FTP Tx: "CMD"`` / ``FTP Rx: "reply"``).
"""

from __future__ import annotations

import functools
import os
import re
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
    client_env,
    require,
    run,
    tree,
    upload_payload,
    write_local,
)

pytestmark = [
    pytest.mark.interop,
    pytest.mark.client("rclone"),
]

FTP_LINE = re.compile(r'FTP (Tx|Rx): "?(.*?)"?$')
# Modification times with whole seconds, as MFMT carries them (2017-07-14, 2014-05-13 UTC).
MTIMES = {"a.txt": 1_500_000_000, "sub/b.bin": 1_400_000_000}


@functools.cache
def _obscure(exe: str, password: str, ws: Path) -> str:
    return run([exe, "--config", str(ws / "rclone.conf"), "obscure", password], ws).stdout.strip()


def rclone(srv: Any, ws: Path, *args: str) -> Result:
    exe = require("rclone")
    conf = ws / "rclone.conf"
    conf.touch()
    obscured = _obscure(exe, srv.password, ws)
    env = client_env(
        ws,
        RCLONE_CONFIG_SRV_TYPE="ftp",
        RCLONE_CONFIG_SRV_HOST=srv.host,
        RCLONE_CONFIG_SRV_PORT=str(srv.port),
        RCLONE_CONFIG_SRV_USER=srv.user,
        RCLONE_CONFIG_SRV_PASS=obscured,
    )
    argv = [exe, "--config", str(conf), "--contimeout", f"{NET_TIMEOUT}s", "--timeout", "20s"]
    argv += ["--retries", "1", "--low-level-retries", "1", "--dump", "headers", "-vv", *args]
    return run(argv, ws, env=env)


def ftp_lines(res: Result) -> list[tuple[str, str]]:
    """The control connection as rclone logs it: ("Tx", command) / ("Rx", reply line)."""
    out = []
    for line in res.stderr.splitlines():
        m = FTP_LINE.search(line)
        if m:
            out.append((m.group(1), m.group(2)))
    return out


def sent_verbs(res: Result) -> set[str]:
    return {text.split()[0] for d, text in ftp_lines(res) if d == "Tx" and text}


@pytest.mark.parametrize("mode", ["EPSV", "PASV"])
def test_rclone_workflow(srv: Any, ws: Path, mode: str) -> None:
    flags = ["--ftp-disable-epsv"] if mode == "PASV" else []
    root: Path = srv.root

    res = rclone(srv, ws, *flags, "lsf", "srv:")
    assert set(res.stdout.split()) == {"docs/", "hello.txt"}
    assert mode in sent_verbs(res)
    if mode == "PASV":
        assert "EPSV" not in sent_verbs(res)

    rclone(srv, ws, *flags, "copyto", "srv:hello.txt", str(ws / "got.bin"))
    assert (ws / "got.bin").read_bytes() == PAYLOAD

    rclone(srv, ws, *flags, "mkdir", "srv:made")
    assert_dir(root, "made")
    up = upload_payload(mode)
    write_local(ws, "up.bin", up)
    rclone(srv, ws, *flags, "copyto", str(ws / "up.bin"), "srv:made/new.bin")
    assert_file(root, "made/new.bin", up)

    # a server-side move is RNFR/RNTO, not download + upload + delete
    res = rclone(srv, ws, *flags, "moveto", "srv:made/new.bin", "srv:made/renamed.bin")
    assert {"RNFR", "RNTO"} <= sent_verbs(res)
    assert "STOR" not in sent_verbs(res)
    assert_absent(root, "made/new.bin")
    assert_file(root, "made/renamed.bin", up)

    rclone(srv, ws, *flags, "deletefile", "srv:docs/readme.txt")
    assert_absent(root, "docs/readme.txt")
    rclone(srv, ws, *flags, "rmdir", "srv:docs")
    assert_absent(root, "docs")
    assert tree(root) == {"hello.txt", "made/", "made/renamed.bin"}


def test_rclone_sync_keeps_mtimes(srv: Any, ws: Path) -> None:
    """rclone reads times from MLSD (``modify`` fact), sets them with MFMT after each upload, and
    a second sync finds nothing to do: that needs the three to agree, in UTC."""
    src = ws / "src"
    for rel, mtime in MTIMES.items():
        p = write_local(src, rel, rel.encode() * 100)
        os.utime(p, (mtime, mtime))
    rclone(srv, ws, "sync", str(src), "srv:dst")
    for rel, mtime in MTIMES.items():
        assert_file(srv.root, f"dst/{rel}", rel.encode() * 100)
        assert (srv.root / "dst" / rel).stat().st_mtime == mtime, rel

    res = rclone(srv, ws, "lsl", "srv:dst")
    listed = {line.split()[-1]: " ".join(line.split()[1:3]) for line in res.stdout.splitlines()}
    assert listed == {
        "a.txt": "2017-07-14 02:40:00.000000000",
        "sub/b.bin": "2014-05-13 16:53:20.000000000",
    }

    res = rclone(srv, ws, "sync", str(src), "srv:dst")
    assert "STOR" not in sent_verbs(res), "the second sync uploaded again: mtimes did not match"
    rclone(srv, ws, "check", str(src), "srv:dst")

    # a changed local file is uploaded again and gets its new mtime on the server
    p = write_local(src, "a.txt", b"changed")
    os.utime(p, (1_600_000_000, 1_600_000_000))
    res = rclone(srv, ws, "sync", str(src), "srv:dst")
    assert "MFMT" in sent_verbs(res)
    assert_file(srv.root, "dst/a.txt", b"changed")
    assert (srv.root / "dst/a.txt").stat().st_mtime == 1_600_000_000


def test_rclone_opts_utf8_on_is_200(srv: Any, ws: Path) -> None:
    """jlaffaye/ftp sends OPTS UTF8 ON when FEAT lists UTF8 and accepts only 200/202/501/504 —
    anything else (e.g. 502) fails the login. One connection, so Tx/Rx pair up in order."""
    res = rclone(srv, ws, "--ftp-concurrency", "1", "--checkers", "1", "lsf", "srv:")
    lines = ftp_lines(res)
    i = lines.index(("Tx", "OPTS UTF8 ON"))
    reply = next(text for d, text in lines[i + 1 :] if d == "Rx")
    assert reply.startswith("200 "), reply
    assert set(res.stdout.split()) == {"docs/", "hello.txt"}


def test_rclone_names_with_spaces_and_utf8(srv: Any, ws: Path) -> None:
    root: Path = srv.root
    write_local(ws, "a.bin", SMALL)
    write_local(ws, "b.bin", PAYLOAD)
    rclone(srv, ws, "copyto", str(ws / "a.bin"), f"srv:{SPACE_DIR}/{SPACE_NAME}")
    rclone(srv, ws, "copyto", str(ws / "b.bin"), f"srv:{SPACE_DIR}/{UTF8_NAME}")
    assert_file(root, f"{SPACE_DIR}/{SPACE_NAME}", SMALL)
    assert_file(root, f"{SPACE_DIR}/{UTF8_NAME}", PAYLOAD)
    res = rclone(srv, ws, "lsf", f"srv:{SPACE_DIR}")
    assert set(res.stdout.splitlines()) == {SPACE_NAME, UTF8_NAME}
    rclone(srv, ws, "copyto", f"srv:{SPACE_DIR}/{UTF8_NAME}", str(ws / "back.bin"))
    assert (ws / "back.bin").read_bytes() == PAYLOAD
    rclone(srv, ws, "moveto", f"srv:{SPACE_DIR}/{SPACE_NAME}", f"srv:{UTF8_NAME}")
    assert_file(root, UTF8_NAME, SMALL)
    assert_absent(root, f"{SPACE_DIR}/{SPACE_NAME}")
