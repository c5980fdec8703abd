"""Issue 16 item 6: no recursion on client-shaped data, and a bounded resolved path.

A user with ``m`` and ``e`` builds 1,100 nested directories (pipelined MKD/CWD); the next start
must not die in the stale-upload cleanup (``os.walk`` recursed once per level: RecursionError on
Python 3.11), and must still remove a temp file left at the bottom. The resolved path (cwd plus
argument) is bounded, not only the argument.
"""

from __future__ import annotations

import os
from typing import Any

from support.client import Ctl, split_replies

DEPTH = 1100
TEMP = ".ftpd-upload-0123456789abcdef.tmp"


def test_deep_tree_does_not_stop_the_next_start(servers: Any) -> None:
    srv = servers()
    with Ctl(srv.host, srv.port, timeout=60).login(srv.user, srv.password) as ctl:
        ctl.send(b"MKD a\r\nCWD a\r\n" * DEPTH)
        codes: list[int] = []
        buf = b""
        while len(codes) < 2 * DEPTH:
            chunk = ctl.sock.recv(65536)
            assert chunk, "connection closed"
            replies, buf = split_replies(buf + chunk)
            codes += [int(r[0][:3]) for r in replies]
        assert codes == [257, 250] * DEPTH, sorted(set(codes))
    bottom = os.path.join(srv.root, *["a"] * DEPTH)
    with open(os.path.join(bottom, TEMP), "wb") as fh:  # an upload a crash left behind
        fh.write(b"partial")
    srv.stop()
    again = servers(root=str(srv.root))  # raises if the process dies at start-up
    assert not os.path.exists(os.path.join(bottom, TEMP))
    assert "RecursionError" not in again.log()
    with Ctl(again.host, again.port).login(again.user, again.password) as ctl:
        assert ctl.cmd("CWD /" + "/".join(["a"] * DEPTH)).code == 250
        assert ctl.cmd("NOOP").code == 200
    # pytest's own clean-up of tmp_path (shutil.rmtree) recurses once per level too: take the
    # tree down bottom-up here so that it does not hit the recursion limit at exit.
    for depth in range(DEPTH, 0, -1):
        os.rmdir(os.path.join(srv.root, *["a"] * depth))


def test_resolved_path_length_is_bounded(servers: Any) -> None:
    srv = servers()
    name = "d" * 200
    with Ctl(srv.host, srv.port).login(srv.user, srv.password) as ctl:
        for _ in range(20):  # cwd of 20 * 201 = 4,020 characters, each argument short
            assert ctl.cmd(f"MKD {name}").code == 257
            assert ctl.cmd(f"CWD {name}").code == 250
        r = ctl.cmd(f"MKD {name}")  # resolved: 4,221 characters > 4,096
        assert r.code == 553, r
        assert ctl.cmd(f"STOR {name}").code in (553, 425), "a path over the bound"
        assert ctl.cmd("MKD short").code == 257  # 4,026: within the bound
        assert ctl.cmd("NOOP").code == 200
    deep = os.path.join(srv.root, *[name] * 20)
    assert os.listdir(deep) == ["short"]
