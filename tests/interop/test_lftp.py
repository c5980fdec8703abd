"""lftp against ftpd: the file workflow with PASV (lftp's default), EPSV and active PORT, its
pre-login sequence (FEAT, AUTH TLS, OPTS UTF8 ON, HOST before USER), the MFMT it sends after an
upload to keep the local mtime, and names with spaces and UTF-8.

lftp runs a script file with ``cmd:fail-exit`` (any failed command ends it non-zero), its own
timeouts (``net:timeout``, one try) and ``debug 5``, whose ``---> CMD`` / ``<--- reply`` lines on
stderr show what it really sent. Results are checked on the server's disk.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
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
    replies_to,
    reply_code,
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
    pytest.mark.client("lftp"),
]

SETTINGS = [
    f"set net:timeout {NET_TIMEOUT}",
    "set net:max-retries 1",  # one try, no retry loop hiding a failure
    "set net:reconnect-interval-base 1",
    "set net:persist-retries 0",
    "set cmd:fail-exit yes",
    "set xfer:clobber yes",
]

# Data-connection mode -> (lftp settings, the command lftp must send for it).
MODES = {
    "PASV": ([], "PASV"),
    "EPSV": (["set ftp:prefer-epsv yes"], "EPSV"),
    "PORT": (["set ftp:passive-mode off"], "PORT"),
}

MTIME = 1_600_000_000  # 2020-09-13 12:26:40 UTC: the local mtime lftp must carry over with MFMT


def lftp(srv: Any, ws: Path, commands: list[str], settings: Sequence[str] = ()) -> Result:
    script = [
        *SETTINGS,
        *settings,
        "debug 5",
        f"open -u {srv.user},{srv.password} -p {srv.port} {srv.host}",
        *commands,
    ]
    path = ws / "script.lftp"
    path.write_text("\n".join(script) + "\n", encoding="utf-8")
    return run([require("lftp"), "--norc", "-f", str(path)], ws)


def sent(res: Result) -> list[str]:
    return sent_commands(res.stderr, "---> ")


@pytest.mark.parametrize("mode", list(MODES))
def test_lftp_workflow(srv: Any, ws: Path, mode: str) -> None:
    settings, data_cmd = MODES[mode]
    root: Path = srv.root
    up = upload_payload(mode)
    local = write_local(ws, "up.bin", up)
    os.utime(local, (MTIME, MTIME))

    res = lftp(srv, ws, ["ls", "cls -1 --basename docs/"], settings)
    assert listing_names(res.stdout) == top_names(root)  # the cls line is not an ls -l line
    assert res.stdout.splitlines()[-1] == "readme.txt"
    verbs = {c.split()[0] for c in sent(res)}
    assert data_cmd in verbs, sent(res)
    if mode == "PORT":
        assert not {"PASV", "EPSV"} & verbs, sent(res)

    lftp(srv, ws, ["get hello.txt -o got.bin"], settings)
    assert (ws / "got.bin").read_bytes() == PAYLOAD

    res = lftp(srv, ws, ["mkdir made", "put up.bin -o made/new.bin"], settings)
    assert_dir(root, "made")
    assert_file(root, "made/new.bin", up)
    assert any(c.startswith("MFMT ") for c in sent(res)), sent(res)
    assert int((root / "made/new.bin").stat().st_mtime) == MTIME

    lftp(
        srv,
        ws,
        ["mv made/new.bin made/renamed.bin", "rm docs/readme.txt", "rmdir docs"],
        settings,
    )
    assert_file(root, "made/renamed.bin", up)
    assert_absent(root, "docs")
    assert tree(root) == {"hello.txt", "made/", "made/renamed.bin"}


def test_lftp_prelogin_feat_opts_utf8_host(srv: Any, ws: Path) -> None:
    """lftp sends FEAT, then AUTH TLS (refused here: no TLS), OPTS UTF8 ON and HOST, all before
    USER, on one connection; each must be answered, and the refusal must not drop the session."""
    res = lftp(srv, ws, ["cls -1"])  # names of the home; directories end in "/"
    cmds = sent(res)
    user_at = cmds.index(f"USER {srv.user}")
    before = cmds[:user_at]
    assert before[0] == "FEAT", cmds
    assert "OPTS UTF8 ON" in before, cmds
    assert f"HOST {srv.host}" in before, cmds
    pairs = replies_to(res.stderr, "---> ", "<--- ")
    assert reply_code(pairs, "FEAT") == "211"
    assert reply_code(pairs, "OPTS UTF8 ON") == "200"
    assert reply_code(pairs, "HOST") == "220"
    assert reply_code(pairs, "PASS") == "230"
    if "AUTH TLS" in before:  # lftp 4.9 sends it even though FEAT lists no AUTH; newer may not
        assert reply_code(pairs, "AUTH TLS")[0] == "5"
    assert res.stderr.count("---- Connecting to") == 1, "lftp had to reconnect"
    assert {n.rstrip("/") for n in res.stdout.split()} == top_names(srv.root)


def test_lftp_names_with_spaces_and_utf8(srv: Any, ws: Path) -> None:
    root: Path = srv.root
    write_local(ws, "a.bin", SMALL)
    write_local(ws, "b.bin", PAYLOAD)
    res = lftp(
        srv,
        ws,
        [
            f'mkdir "{SPACE_DIR}"',
            f'put a.bin -o "{SPACE_DIR}/{SPACE_NAME}"',
            f'put b.bin -o "{SPACE_DIR}/{UTF8_NAME}"',
            f'cls -1 --basename "{SPACE_DIR}/"',
            f'get "{SPACE_DIR}/{UTF8_NAME}" -o back.bin',
            f'mv "{SPACE_DIR}/{SPACE_NAME}" "{UTF8_NAME}"',
        ],
    )
    assert set(res.stdout.splitlines()) == {SPACE_NAME, UTF8_NAME}
    assert (ws / "back.bin").read_bytes() == PAYLOAD
    assert_file(root, f"{SPACE_DIR}/{UTF8_NAME}", PAYLOAD)
    assert_file(root, UTF8_NAME, SMALL)
    assert_absent(root, f"{SPACE_DIR}/{SPACE_NAME}")
    lftp(srv, ws, [f'rm "{UTF8_NAME}"'])
    assert_absent(root, UTF8_NAME)
