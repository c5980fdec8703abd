"""Issue 16 item 7: client-controlled strings cannot forge log lines or drive a terminal.

A STOR name with a bare CR, an ESC sequence and a C1 CSI (U+009B) is uploaded; the transfer log
line, the debug command lines and the reply lines must carry them escaped, in the text and the
JSON formats and in the xferlog file. ``PASS`` with a leading space (the session tolerates it)
must be masked at debug level.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from support.client import Ctl

FORGED = "x\rFAKE 2026-01-01 00:00:00,000 INFO ftpd.transfer forged\x1b[2J\u009b31m.txt"
SECRET = "s3cr3t-hunter2"


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_client_strings_are_escaped_in_every_log(servers: Any, tmp_path: Any, fmt: str) -> None:
    xferlog = tmp_path / "xferlog"
    srv = servers(log_level="debug", log_format=fmt, xferlog_file=str(xferlog))
    with Ctl(srv.host, srv.port) as ctl:
        assert ctl.cmd("USER " + srv.user).code == 331
        assert ctl.cmd(" PASS " + srv.password).code == 230  # a leading space: still a PASS
        ctl.cmd("TYPE I")
        assert ctl.stor(FORGED, b"data").code == 226
        assert ctl.cmd("RETR " + FORGED + "\x1b]0;title\x07").code in (425, 550)
        assert ctl.cmd("QUIT").code == 221
    with Ctl(srv.host, srv.port) as ctl:
        assert ctl.cmd("USER nobody").code == 331
        ctl.cmd(" PASS " + SECRET)
    srv.stop()
    raw = srv.log_path.read_bytes()
    assert SECRET.encode() not in raw and srv.password.encode() not in raw
    assert b"PASS ****" in raw
    for bad in (b"\r", b"\x1b", "\u009b".encode(), b"\x07"):
        assert bad not in raw, (bad, raw[-2000:])
    lines = raw.decode().splitlines()
    assert not any(ln.startswith("FAKE") for ln in lines)
    if fmt == "json":
        records = [json.loads(ln) for ln in lines if ln.startswith("{")]
        transfer = [r for r in records if r.get("event") == "transfer"]
        assert transfer and transfer[0]["path"] == "/" + FORGED  # escaped, not lost
    else:
        assert any("ftpd.transfer" in ln and "\\rFAKE" in ln and "\\x1b[2J" in ln for ln in lines)
    xfer = xferlog.read_bytes()
    assert xfer.count(b"\n") == 1 and b"\r" not in xfer and b"\x1b" not in xfer
    assert "\u009b".encode() not in xfer
