"""Times on the wire are UTC whatever the server's local zone (RFC 3659 §2.3, and what vsftpd,
ProFTPD and lftp assume for LIST): the server runs here with ``TZ=Asia/Tokyo`` (UTC+9, no DST),
where a local-time bug moves every time by nine hours and, for the dates below, the day.

Part of the normal suite: CI machines run in UTC, where such a bug is invisible.
"""

from __future__ import annotations

import calendar
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from support.client import Ctl

# Asia/Tokyo needs tzdata; the POSIX form "JST-9" is the same zone without it.
TOKYO = "Asia/Tokyo" if Path("/usr/share/zoneinfo/Asia/Tokyo").exists() else "JST-9"
OLD = 1_700_000_000  # 2023-11-14 22:13:20 UTC = 2023-11-15 07:13:20 in Tokyo
RECENT = (int(time.time()) // 86400 - 3) * 86400 + 20 * 3600 + 5 * 60  # 3 days ago, 20:05 UTC


@pytest.fixture(scope="module")
def tokyo(module_factory: Any) -> Any:
    # The zone must really be in effect for the server, or every assertion below is vacuous.
    out = subprocess.run(
        [sys.executable, "-c", "import time; print(time.localtime(0).tm_hour)"],
        env={**os.environ, "TZ": TOKYO},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert out.strip() == "9", f"TZ={TOKYO} is not UTC+9 here: {out!r}"
    srv = module_factory(env={"TZ": TOKYO})
    for name, mtime in (("old.txt", OLD), ("recent.txt", RECENT)):
        (srv.root / name).write_bytes(b"x")
        os.utime(srv.root / name, (mtime, mtime))
    return srv


def _list(c: Ctl, verb: str, arg: str = "") -> str:
    data, r = c.listing(verb, arg)
    assert r.code == 226, r
    return data.decode()


def test_list_times_are_utc(tokyo: Any) -> None:
    with Ctl(tokyo.host, tokyo.port) as c:
        c.login(tokyo.user, tokyo.password)
        lines = {ln.split()[-1]: ln for ln in _list(c, "LIST").splitlines()}
    assert " Nov 14  2023 old.txt" in lines["old.txt"], lines["old.txt"]
    t = time.gmtime(RECENT)
    recent = f"{time.strftime('%b', t)} {t.tm_mday:2d} {time.strftime('%H:%M', t)}"
    assert f" {recent} recent.txt" in lines["recent.txt"], lines["recent.txt"]


def test_stat_listing_is_utc(tokyo: Any) -> None:
    with Ctl(tokyo.host, tokyo.port) as c:
        c.login(tokyo.user, tokyo.password)
        r = c.cmd("STAT old.txt")
    assert r.code == 213 and " Nov 14  2023 old.txt" in r.text, r


def test_mdtm_mlst_mlsd_are_utc(tokyo: Any) -> None:
    with Ctl(tokyo.host, tokyo.port) as c:
        c.login(tokyo.user, tokyo.password)
        assert c.cmd("MDTM old.txt") == (213, "20231114221320")
        r = c.cmd("MLST old.txt")
        assert r.code == 250 and "modify=20231114221320;" in r.text, r
        mlsd = _list(c, "MLSD")
    assert "modify=20231114221320;" in mlsd, mlsd
    recent = time.strftime("%Y%m%d%H%M%S", time.gmtime(RECENT))
    assert f"modify={recent};" in mlsd, mlsd


def test_mfmt_reads_utc(tokyo: Any) -> None:
    (tokyo.root / "set.txt").write_bytes(b"x")
    with Ctl(tokyo.host, tokyo.port) as c:
        c.login(tokyo.user, tokyo.password)
        assert c.code("MFMT 20200101000000 set.txt") == 213
        assert c.cmd("MDTM set.txt") == (213, "20200101000000")
    assert (tokyo.root / "set.txt").stat().st_mtime == calendar.timegm((2020, 1, 1, 0, 0, 0))
