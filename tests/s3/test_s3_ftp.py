"""ftpd with ``storage = "s3"`` end to end: ftplib against a real ftpd process whose home is the key
prefix ``homes/user/`` of a bucket in the moto server. The bucket is checked from outside with
boto3: what a command should have created, and that nothing is left of an interrupted upload."""

from __future__ import annotations

import calendar
import ftplib
import hashlib
import io
import os
import socket
import struct
import time
from typing import Any

import pytest
from support.transfers import concurrent_stou
from support.waits import wait_until

from .conftest import BUCKET, PREFIX, REGION, keys, pending_uploads

MiB = 1 << 20
HOME = f"{PREFIX}/user/"


@pytest.fixture
def server(ftpd_factory: Any, moto_endpoint: str, bucket: str) -> Any:
    return ftpd_factory(
        storage="s3",
        s3_endpoint=moto_endpoint,
        s3_bucket=bucket,
        s3_prefix=PREFIX,
        s3_region=REGION,
        data_timeout=30,
    )


def login(server: Any) -> ftplib.FTP:
    ftp = ftplib.FTP()
    ftp.connect(server.host, server.port, timeout=30)
    ftp.login(server.user, server.password)
    return ftp


def retr(ftp: ftplib.FTP, name: str, rest: int | None = None) -> bytes:
    buf = io.BytesIO()
    ftp.retrbinary(f"RETR {name}", buf.write, rest=rest)
    return buf.getvalue()


def proc_kib(pid: int, field: str) -> int:
    """A ``VmRSS``/``VmHWM`` figure of /proc/PID/status, in KiB."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


class PatternStream:
    """``size`` bytes of varied data for ``storbinary``, hashed as they are read."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.block = os.urandom(MiB)
        self.count = 0
        self.sha = hashlib.sha256()

    def read(self, n: int) -> bytes:
        n = min(n, self.left, MiB)
        start = self.count % (MiB - n + 1)
        data = bytes([self.count % 256]) + self.block[start + 1 : start + n] if n else b""
        self.count += 1
        self.left -= len(data)
        self.sha.update(data)
        return data


def test_file_and_directory_commands(server: Any, inspect: Any) -> None:
    ftp = login(server)
    ftp.storbinary("STOR hello.txt", io.BytesIO(b"hello world\n"))
    assert keys(inspect, HOME) == [HOME + "hello.txt"]
    assert ftp.size("hello.txt") == 12
    stamp = ftp.sendcmd("MDTM hello.txt").split()[1]
    uploaded = calendar.timegm(time.strptime(stamp[:14], "%Y%m%d%H%M%S"))
    assert abs(uploaded - time.time()) < 120  # MDTM is the object's upload time
    assert retr(ftp, "hello.txt") == b"hello world\n"

    assert ftp.mkd("sub") == "/sub"
    assert HOME + "sub/" in keys(inspect, HOME)  # MKD writes a directory marker
    ftp.cwd("sub")
    assert ftp.pwd() == "/sub"
    ftp.storbinary("STOR inner.bin", io.BytesIO(b"\x00\x01" * 1000))
    ftp.cwd("/")
    lines: list[str] = []
    ftp.retrlines("LIST", lines.append)
    assert [line.split()[-1] for line in lines] == ["hello.txt", "sub"]
    assert lines[0].startswith("-") and lines[1].startswith("d")
    assert sorted(ftp.nlst()) == ["hello.txt", "sub"]
    facts = dict(ftp.mlsd("sub", ["type", "size"]))
    assert facts["inner.bin"] == {"type": "file", "size": "2000"}

    ftp.rename("hello.txt", "sub/moved.txt")  # copy + delete
    assert sorted(keys(inspect, HOME)) == [
        HOME + "sub/",
        HOME + "sub/inner.bin",
        HOME + "sub/moved.txt",
    ]
    assert retr(ftp, "sub/moved.txt") == b"hello world\n"
    with pytest.raises(ftplib.error_perm, match="^550"):
        ftp.rename("sub", "sub2")  # a non-empty directory would be one copy per object
    ftp.mkd("empty")
    ftp.rename("empty", "empty2")
    with pytest.raises(ftplib.error_perm, match="^550"):
        ftp.rmd("sub")
    with pytest.raises(ftplib.error_perm, match="^550"):
        ftp.delete("missing.txt")
    with pytest.raises(ftplib.error_perm, match="^550"):
        ftp.cwd("missing")
    ftp.storbinary("STOU", io.BytesIO(b"unique"))
    assert HOME + "ftpd.1" in keys(inspect, HOME)
    for name in ("sub/moved.txt", "sub/inner.bin", "ftpd.1"):
        ftp.delete(name)
    ftp.rmd("sub")
    ftp.rmd("empty2")
    assert keys(inspect, HOME) == []
    ftp.quit()


def test_upload_of_50_mib_streams_with_bounded_memory(server: Any, inspect: Any) -> None:
    ftp = login(server)
    ftp.storbinary("STOR warm-up.bin", io.BytesIO(b"w" * 1000))  # client and modules loaded
    rss_before = proc_kib(server.pid, "VmRSS")
    stream = PatternStream(50 * MiB)
    ftp.storbinary("STOR big.bin", stream, blocksize=256 * 1024)
    growth = (proc_kib(server.pid, "VmHWM") - rss_before) * 1024
    # Up to two 8 MiB parts in flight plus the one filling, not the 50 MiB of the file.
    assert growth < 40 * MiB, f"peak RSS grew by {growth / MiB:.1f} MiB"
    head = inspect.head_object(Bucket=BUCKET, Key=HOME + "big.bin")
    assert head["ContentLength"] == 50 * MiB
    assert pending_uploads(inspect) == []
    got = hashlib.sha256()
    ftp.retrbinary("RETR big.bin", got.update, blocksize=256 * 1024)
    assert got.hexdigest() == stream.sha.hexdigest()
    ftp.quit()


def test_rest_retr_reads_ranges(server: Any) -> None:
    ftp = login(server)
    data = os.urandom(3 * MiB + 5)
    ftp.storbinary("STOR r.bin", io.BytesIO(data))
    for offset in (1, 1000, 2 * MiB + 7, len(data) - 1, len(data)):
        assert retr(ftp, "r.bin", rest=offset) == data[offset:], offset
    with pytest.raises(ftplib.error_perm, match="^554"):
        retr(ftp, "r.bin", rest=len(data) + 1)
    assert retr(ftp, "r.bin") == data
    ftp.quit()


def test_client_disconnect_mid_upload_leaves_nothing(server: Any, inspect: Any) -> None:
    ftp = login(server)
    ftp.voidcmd("TYPE I")
    conn = ftp.transfercmd("STOR gone.bin")
    chunk = os.urandom(MiB)
    for _ in range(20):
        conn.sendall(chunk)
    assert wait_until(lambda: pending_uploads(inspect) == [HOME + "gone.bin"], 20), (
        "the multipart upload"
    )
    # Vanish without a word: RST on the data connection, then the control connection closes.
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()
    ftp.sock.close()
    assert wait_until(lambda: pending_uploads(inspect) == [], 20), (
        "the multipart upload to be aborted"
    )
    assert keys(inspect, HOME) == []
    assert wait_until(lambda: "STOR /gone.bin" in server.log(), 20), "the transfer log line"
    (line,) = [x for x in server.log().splitlines() if "STOR /gone.bin" in x]
    assert "result=ok" not in line, line
    again = login(server)  # the server is fine
    assert again.nlst() == []
    again.quit()


def test_what_object_storage_cannot_do_is_refused(server: Any, inspect: Any) -> None:
    ftp = login(server)
    ftp.storbinary("STOR f.txt", io.BytesIO(b"original"))
    # Refused up front by the capability flags, with a permanent (5xx) reply before any 150.
    ftp.voidcmd("TYPE I")
    assert ftp.sendcmd("REST 3").startswith("350")
    with pytest.raises(ftplib.error_perm, match="^504"):
        ftp.sendcmd("STOR f.txt")  # REST+STOR: no resume (refused before a data connection)
    with pytest.raises(ftplib.error_perm, match="^504"):
        ftp.storbinary("APPE f.txt", io.BytesIO(b"more"))
    with pytest.raises(ftplib.error_perm, match="^502"):
        ftp.sendcmd("MFMT 20200101000000 f.txt")
    with pytest.raises(ftplib.error_perm, match="^504"):
        ftp.sendcmd("SITE CHMOD 600 f.txt")
    feat = ftp.sendcmd("FEAT")
    assert "MFMT" not in feat and "REST STREAM" in feat
    ftp.sendcmd("PASV")
    assert "perm=" in ftp.sendcmd("MLST f.txt") and ";perm=rwdf;" in ftp.sendcmd("MLST f.txt")
    assert retr(ftp, "f.txt") == b"original"
    assert keys(inspect, HOME) == [HOME + "f.txt"]
    assert pending_uploads(inspect) == []
    ftp.quit()


def test_twenty_concurrent_stou_get_twenty_objects(server: Any, inspect: Any) -> None:
    """STOU's name is taken with a conditional write (PutObject If-None-Match: *): of several
    sessions that find ``ftpd.3`` free at the same time, one creates it and the others move on,
    so no upload overwrites another's."""
    got = concurrent_stou(server, 20)
    stored = {
        k[len(HOME) :]: inspect.get_object(Bucket=BUCKET, Key=k)["Body"].read()
        for k in keys(inspect, HOME)
    }
    assert stored == got
