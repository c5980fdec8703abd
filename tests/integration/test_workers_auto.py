"""``--workers auto`` in a real server: the start-up log explains the count, and it serves."""

from __future__ import annotations

import re
from typing import Any

from integ_helpers import ftp_connect
from support.waits import wait_until

from ftpd.server.sizing import cores


def test_workers_auto_logs_its_reason_and_serves(factory: Any) -> None:
    srv = factory(workers="auto", max_sessions=1000)
    pattern = r"workers auto: (\d+) \((\d+) cores?; max_sessions 1000 x 3 descriptors"
    m = wait_until(lambda: re.search(pattern, srv.log()))
    assert m, srv.log()
    assert int(m.group(1)) == int(m.group(2)) == cores()  # the descriptor limit holds 1000
    if cores() > 1:
        assert wait_until(lambda: f"{cores()} workers serving" in srv.log()), srv.log()
    ftp = ftp_connect(srv)
    assert ftp.sendcmd("NOOP").startswith("200")
    ftp.quit()
    assert srv.stop() == 0
