"""Issue 16 item 10: an upload's temporary file is out of the client's namespace.

On Linux an atomic upload is an anonymous ``O_TMPFILE`` file until its commit: nothing named
appears in the directory while it runs, a cut upload leaves the previous file untouched, and
nothing is left over. The ``.ftpd-upload-*.tmp`` names (the fallback on other filesystems, and
the instant between commit's link and rename) are the server's: STOR, RETR, MKD, RNFR/RNTO,
DELE, SIZE and CWD on them are refused with 550.
"""

from __future__ import annotations

import os
import time
from typing import Any

from support.client import Ctl
from support.proc import fds, settle_fds
from support.waits import wait_until

TEMP = ".ftpd-upload-0123456789abcdef.tmp"


def test_upload_has_no_name_until_complete(servers: Any) -> None:
    srv = servers()
    (srv.root / "f.bin").write_bytes(b"old version")
    base = fds(srv.pid)
    before = sorted(os.listdir(srv.root))
    with Ctl(srv.host, srv.port).login(srv.user, srv.password) as c:
        c.cmd("TYPE I")
        d = c.data_socket()
        assert c.cmd("STOR f.bin").code == 150
        d.sendall(b"n" * 300_000)
        # The server has the bytes (its fd count grew by the upload's file) ...
        assert wait_until(lambda: fds(srv.pid) > base + 1, 5)
        time.sleep(0.2)
        # ... and yet the directory holds exactly what it held before.
        assert sorted(os.listdir(srv.root)) == before
        assert (srv.root / "f.bin").read_bytes() == b"old version"
        d.sendall(b"n" * 100_000)
        d.close()
        assert c.reply().code == 226
        assert (srv.root / "f.bin").read_bytes() == b"n" * 400_000
        # A cut upload: the previous version stays, and nothing is left over.
        d = c.data_socket()
        assert c.cmd("STOR f.bin").code == 150
        d.sendall(b"c" * 100_000)
        c.cmd("ABOR")
        d.close()
        while True:
            r = c.reply(timeout=5)
            if r.code in (225, 226):
                break
    assert (srv.root / "f.bin").read_bytes() == b"n" * 400_000
    assert sorted(os.listdir(srv.root)) == before
    assert settle_fds(srv.pid, base) <= base


def test_temp_names_are_refused_to_clients(servers: Any) -> None:
    srv = servers()
    (srv.root / TEMP).write_bytes(b"the server's")
    (srv.root / "d").mkdir()
    with Ctl(srv.host, srv.port).login(srv.user, srv.password) as c:
        c.cmd("TYPE I")
        data, r, _ = c.retr(TEMP)
        assert r.code == 550 and data == b"", r
        for line in (
            f"SIZE {TEMP}",
            f"DELE {TEMP}",
            f"CWD {TEMP}",
            f"MKD d/{TEMP}",
            f"RNFR {TEMP}",
            f"MDTM {TEMP}",
        ):
            r = c.cmd(line)
            assert r.code == 550, (line, r)
        assert c.cmd("RNFR d").code == 350
        assert c.cmd(f"RNTO {TEMP}").code == 550
        r = c.stor(f"d/{TEMP}", b"client data")
        assert r.code == 550, r
        assert c.stor("ok.bin", b"fine").code == 226
    assert (srv.root / TEMP).read_bytes() == b"the server's"
    assert sorted(os.listdir(srv.root / "d")) == []
