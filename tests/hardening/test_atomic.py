"""Atomic uploads: a reader never sees a half-written file under the final name, and a failed
upload never destroys the previous version. APPE and REST+STOR work with ``atomic_uploads`` on
and off.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from support.client import Ctl
from support.proc import upload_bytes
from support.waits import wait_until

OLD = b"A" * (1 << 20)
NEW = b"B" * (2 << 20)


def _abort(c: Ctl) -> list[int]:
    """ABOR during a transfer: the transfer's 426, then ABOR's own 226 (RFC 959 §4.1.3); or a
    226 alone when the transfer ended before ABOR arrived."""
    codes = [c.cmd("ABOR").code]
    if codes[0] == 426:
        codes.append(c.reply().code)
    return codes


def _temp_files(root: Any) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob(".ftpd-upload-*"))


def test_readers_see_old_or_complete_new(servers: Any, figures: Any) -> None:
    srv = servers()
    (srv.root / "f.bin").write_bytes(OLD)
    seen: list[tuple[str, str]] = []
    bad: list[Any] = []
    uploading = [""]  # the name being uploaded, "" between uploads
    done = threading.Event()

    def reader() -> None:
        with Ctl(srv.host, srv.port).login(srv.user, srv.password) as c:
            c.cmd("TYPE I")
            while not done.is_set():
                # An operation counts as "during" an upload only if that upload was in progress
                # both before it started and after it ended.
                before = uploading[0]
                data, r150, r = c.retr("f.bin")
                during = before if uploading[0] == before else "?"
                if r.code != 226 or data not in (OLD, NEW):
                    bad.append(("RETR f.bin", r150, r, len(data), data[:8], data[-8:]))
                seen.append(("old" if data == OLD else "new", during))
                before = uploading[0]
                r = c.cmd("SIZE new.bin")  # no previous version: must not exist until complete
                if before == uploading[0] == "new.bin" and r.code != 550:
                    bad.append(("SIZE new.bin during its upload", r))
                names, r = c.listing("NLST")
                if b".ftpd-upload-" in names:
                    bad.append(("temp file listed", names))

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    with Ctl(srv.host, srv.port).login(srv.user, srv.password) as up:
        up.cmd("TYPE I")
        for name in ("f.bin", "new.bin"):
            d = up.data_socket()
            assert up.cmd(f"STOR {name}").code == 150
            uploading[0] = name
            for i in range(0, len(NEW), 64 * 1024):  # slowly: ~0.6 s per upload
                d.sendall(NEW[i : i + 64 * 1024])
                time.sleep(0.02)  # a slow upload, so that reads happen during it: under test
            # Everything sent, the data connection not yet closed: the reader must still see the
            # old version then. Wait for it to complete a read in this state.
            n = len(seen)
            assert wait_until(lambda n=n: len(seen) > n, 10), "the reader is stuck"
            uploading[0] = ""
            d.close()
            assert up.reply().code == 226
        n = len(seen)
        assert wait_until(lambda: len(seen) > n, 10)  # a read after the last upload, too
    done.set()
    t.join(15)
    during = [s for s in seen if s[1] == "f.bin"]
    figures.record("atomic uploads", reads=len(seen), reads_during_upload=len(during))
    assert not bad, bad[:5]
    # While f.bin was being replaced, every complete read was the old version.
    assert during and all(s[0] == "old" for s in during), during
    assert (srv.root / "f.bin").read_bytes() == NEW
    assert (srv.root / "new.bin").read_bytes() == NEW
    assert _temp_files(srv.root) == []


def test_aborted_upload_keeps_previous_version(servers: Any) -> None:
    srv = servers()
    (srv.root / "f.bin").write_bytes(OLD)
    with Ctl(srv.host, srv.port).login(srv.user, srv.password) as c:
        c.cmd("TYPE I")
        d = c.data_socket()
        assert c.cmd("STOR f.bin").code == 150
        d.sendall(NEW[: 512 * 1024])
        # The upload is under way (the server has written to its file) before ABOR.
        assert wait_until(lambda: upload_bytes(srv.pid, srv.root) > 0, 5)
        assert _abort(c) == [426, 226]
        d.close()
        assert c.cmd("NOOP").code == 200
    assert (srv.root / "f.bin").read_bytes() == OLD
    assert _temp_files(srv.root) == []


def test_failed_upload_with_atomic_off_leaves_partial_for_resume(servers: Any) -> None:
    """With ``atomic_uploads = false`` STOR writes in place: the bytes that came stay, so that the
    client can resume with REST (the documented trade-off)."""
    srv = servers(atomic_uploads=False)
    with Ctl(srv.host, srv.port).login(srv.user, srv.password) as c:
        c.cmd("TYPE I")
        d = c.data_socket()
        assert c.cmd("STOR part.bin").code == 150
        d.sendall(NEW[:300_000])
        # The server has written what came (in place: atomic_uploads off) before ABOR.
        assert wait_until(lambda: (srv.root / "part.bin").stat().st_size > 0, 5)
        assert _abort(c) == [426, 226]
        d.close()
        assert c.cmd("NOOP").code == 200
        size = (srv.root / "part.bin").stat().st_size
        assert 0 < size <= 300_000
        assert c.cmd(f"REST {size}").code == 350
        assert c.stor("part.bin", NEW[size:]).code == 226
    assert (srv.root / "part.bin").read_bytes() == NEW


@pytest.mark.parametrize("atomic", [True, False])
def test_appe_and_rest_stor(servers: Any, atomic: bool) -> None:
    srv = servers(atomic_uploads=atomic)
    (srv.root / "a.txt").write_bytes(b"0123456789")
    (srv.root / "r.txt").write_bytes(b"0123456789")
    with Ctl(srv.host, srv.port).login(srv.user, srv.password) as c:
        c.cmd("TYPE I")
        assert c.stor("a.txt", b"abc", verb="APPE").code == 226
        assert c.stor("a.txt", b"def", verb="APPE").code == 226
        assert c.stor("fresh.txt", b"xyz", verb="APPE").code == 226
        assert c.cmd("REST 4").code == 350
        assert c.stor("r.txt", b"XY").code == 226
        assert c.cmd("REST 4").code == 350
        data, _, r = c.retr("r.txt")
        assert (r.code, data) == (226, b"XY6789")
        assert c.stor("s.txt", b"first").code == 226
        assert c.stor("s.txt", b"2nd").code == 226  # STOR replaces, never appends
        r = c.cmd("STOU")
        assert r.code in (425, 150)  # 425: no data connection set up
    assert (srv.root / "a.txt").read_bytes() == b"0123456789abcdef"
    assert (srv.root / "fresh.txt").read_bytes() == b"xyz"
    assert (srv.root / "r.txt").read_bytes() == b"0123XY6789"  # REST keeps the tail
    assert (srv.root / "s.txt").read_bytes() == b"2nd"
    assert _temp_files(srv.root) == []


@pytest.mark.parametrize("atomic", [True, False])
def test_stor_keeps_the_files_permission_bits(servers: Any, atomic: bool) -> None:
    srv = servers(atomic_uploads=atomic)
    f = srv.root / "mode.txt"
    f.write_bytes(b"old")
    f.chmod(0o640)
    with Ctl(srv.host, srv.port).login(srv.user, srv.password) as c:
        assert c.stor("mode.txt", b"new").code == 226
    assert f.read_bytes() == b"new"
    assert f.stat().st_mode & 0o777 == 0o640
