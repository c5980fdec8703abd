"""curl against ftpd: the whole file workflow in passive (EPSV, PASV) and active (EPRT, PORT) mode,
on 127.0.0.1 and ::1, plus curl's ``AUTH SSL`` / ``AUTH TLS`` probing and names that need quoting.

curl's ``-v`` transcript (``> CMD`` / ``< reply`` on stderr) shows which data-connection command was
really used; results are checked on the server's disk.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

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
    ftp_url,
    listing_names,
    replies_to,
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
    pytest.mark.client("curl"),
]

# Data-connection mode -> (curl flags, the command curl must send for it).
MODES = {
    "EPSV": ([], "EPSV"),
    "PASV": (["--disable-epsv"], "PASV"),
    "EPRT": (["-P", "-"], "EPRT"),
    "PORT": (["-P", "-", "--disable-eprt"], "PORT"),
}


def curl(ws: Path, *args: str) -> Result:
    # -q first: ignore any .curlrc; --max-time bounds the whole transfer, whatever the server does.
    argv = [require("curl"), "-q", "-sS", "-v", "--max-time", "20"]
    argv += ["--connect-timeout", str(NET_TIMEOUT), *args]
    return run(argv, ws)


def sent(res: Result) -> list[str]:
    return sent_commands(res.stderr, "> ")


def workflow(srv: Any, ws: Path, flags: list[str], data_cmd: str) -> None:
    root: Path = srv.root
    base = ftp_url(srv)

    # list: LIST of the home, then NLST (--list-only)
    res = curl(ws, *flags, base)
    assert listing_names(res.stdout) == top_names(root)
    assert any(c.startswith(data_cmd) for c in sent(res)), sent(res)
    res = curl(ws, *flags, "--list-only", base + "docs/")
    assert set(res.stdout.split()) == {"readme.txt"}

    # download
    curl(ws, *flags, "-o", "got.bin", base + "hello.txt")
    assert (ws / "got.bin").read_bytes() == PAYLOAD

    # upload into a directory curl creates (MKD)
    up = upload_payload(data_cmd)
    local = write_local(ws, "up.bin", up)
    res = curl(ws, *flags, "--ftp-create-dirs", "-T", str(local), base + "made/new.bin")
    assert "MKD made" in sent(res)
    assert_dir(root, "made")
    assert_file(root, "made/new.bin", up)

    # rename, delete, remove a directory: quote commands after a listing (-Q), checked on disk
    curl(ws, *flags, "-o", "ls.txt", "-Q", "RNFR made/new.bin", "-Q", "RNTO made/renamed.bin", base)
    assert_absent(root, "made/new.bin")
    assert_file(root, "made/renamed.bin", up)
    curl(ws, *flags, "-o", "ls.txt", "-Q", "DELE docs/readme.txt", "-Q", "RMD docs", base)
    assert_absent(root, "docs")

    assert tree(root) == {"hello.txt", "made/", "made/renamed.bin"}


@pytest.mark.parametrize("mode", list(MODES))
def test_curl_workflow_ipv4(srv: Any, ws: Path, mode: str) -> None:
    flags, data_cmd = MODES[mode]
    workflow(srv, ws, flags, data_cmd)


@pytest.mark.parametrize("mode", ["EPSV", "EPRT"])
def test_curl_workflow_ipv6(srv6: Any, ws: Path, mode: str) -> None:
    flags, data_cmd = MODES[mode]
    workflow(srv6, ws, flags, data_cmd)


def test_curl_auth_ssl_then_tls_before_user(srv: Any, ws: Path) -> None:
    """``--ssl`` (try TLS, fall back): curl sends AUTH SSL and AUTH TLS before USER. A server
    without TLS must refuse both with an error and keep the connection (no 421, no close)."""
    res = curl(ws, "--ssl", "-o", "got.bin", ftp_url(srv) + "hello.txt")
    cmds = sent(res)
    auths = [c for c in cmds if c.startswith("AUTH ")]
    assert {"AUTH SSL", "AUTH TLS"} <= set(auths), cmds
    assert cmds.index("USER " + srv.user) > max(cmds.index(a) for a in auths)
    pairs = replies_to(res.stderr, "> ", "< ")
    for cmd, reply in pairs:
        if cmd.startswith("AUTH "):
            assert reply[0] == "5" and not reply.startswith("421"), (cmd, reply)
    # one connection only: curl did not have to reconnect after the refusals
    assert res.stderr.count("< 220") == 1, res.stderr
    assert (ws / "got.bin").read_bytes() == PAYLOAD


def test_curl_names_with_spaces_and_utf8(srv: Any, ws: Path) -> None:
    root: Path = srv.root
    base = ftp_url(srv)
    remote_dir = quote(SPACE_DIR) + "/"
    for name, data in ((SPACE_NAME, SMALL), (UTF8_NAME, PAYLOAD)):
        local = write_local(ws, "src.bin", data)
        curl(ws, "--ftp-create-dirs", "-T", str(local), base + remote_dir + quote(name))
        assert_file(root, f"{SPACE_DIR}/{name}", data)
    res = curl(ws, base + remote_dir)
    assert listing_names(res.stdout) == {SPACE_NAME, UTF8_NAME}
    res = curl(ws, "--list-only", base + remote_dir)
    assert set(res.stdout.splitlines()) == {SPACE_NAME, UTF8_NAME}
    curl(ws, "-o", "back.bin", base + remote_dir + quote(UTF8_NAME))
    assert (ws / "back.bin").read_bytes() == PAYLOAD
    # rename and delete with such names go through -Q verbatim (curl sends UTF-8 bytes as given)
    curl(
        ws, "-o", "ls.txt", "-Q", f"RNFR {SPACE_DIR}/{SPACE_NAME}", "-Q", f"RNTO {UTF8_NAME}", base
    )
    assert_file(root, UTF8_NAME, SMALL)
    curl(ws, "-o", "ls.txt", "-Q", f"DELE {SPACE_DIR}/{UTF8_NAME}", base)
    assert_absent(root, f"{SPACE_DIR}/{UTF8_NAME}")
