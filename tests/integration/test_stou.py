"""STOU (RFC 959 §4.1.3, RFC 1123 §4.1.2.9) on the local disk: the unique name is created
atomically (O_EXCL), so concurrent STOUs never share a name. tests/s3 has the same for S3."""

from __future__ import annotations

from typing import Any

from support.client import Ctl
from support.transfers import concurrent_stou


def test_twenty_concurrent_stou_get_twenty_files(factory: Any) -> None:
    srv = factory()
    got = concurrent_stou(srv, 20)
    on_disk = {p.name: p.read_bytes() for p in srv.root.iterdir()}
    assert on_disk == got


def test_stou_refusals(factory: Any) -> None:
    """A missing directory and a pending REST are refused with 550, nothing created, and the
    session goes on: the REST is cleared, so the next STOU works.

    550 although RFC 959 §5.4 lists 450/452/553/532/551/552 for STOR and STOU: ftpd answers every
    store command's filesystem errors from one errno table (STOR into a missing directory is 550
    too), §4.2's 550 "file unavailable (e.g., file not found, no access)" is exactly the case, and
    clients act on the first digit (a permanent failure); pyftpdlib and ProFTPD answer 550 here as
    well. See the stou-errors and rest-stou entries of tests/conformance/allowlist.py."""
    srv = factory()
    with Ctl(srv.host, srv.port) as c:
        c.login(srv.user, srv.password)
        d = c.data_socket()
        assert c.code("STOU nodir/x") == 550
        d.close()
        assert c.code("TYPE I") == 200 and c.code("REST 10") == 350  # REST needs TYPE I
        d = c.data_socket()
        assert c.code("STOU") == 550
        d.close()
        assert list(srv.root.iterdir()) == []
        assert c.stor("", b"after", verb="STOU").code == 226
    assert [p.read_bytes() for p in srv.root.iterdir()] == [b"after"]
