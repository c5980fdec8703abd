"""Quotas (issue 19 part 2): real uploads against a real server with a users file."""

from __future__ import annotations

import ftplib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from integ_helpers import ftp_connect

from ftpd.auth.hashing import hash_password

KIB = 1024


def users_file(tmp_path: Path, **limits: object) -> tuple[Path, Path]:
    home = tmp_path / "alice-home"
    home.mkdir(exist_ok=True)
    users = tmp_path / "users.toml"
    extra = "".join(f"{k} = {json.dumps(v)}\n" for k, v in limits.items())
    users.write_text(
        "[[users]]\n"
        'name = "alice"\n'
        f'password_hash = "{hash_password("pw", ln=4)}"\n'
        f'home = "{home}"\n' + extra
    )
    return users, home


def login(srv: Any) -> ftplib.FTP:
    return ftp_connect(srv, user="alice", password="pw")


def push(ftp: ftplib.FTP, cmd: str, size: int) -> tuple[int, str]:
    """Send ``size`` bytes with ``cmd`` for as long as the server takes them; (bytes the client
    got out, the final reply)."""
    sock = ftp.transfercmd(cmd)
    sent = 0
    block = b"q" * (64 * KIB)
    try:
        while sent < size:
            sent += sock.send(block[: size - sent])
    except OSError:
        pass  # the server closed the data connection: over quota
    finally:
        sock.close()
    try:
        return sent, ftp.voidresp()
    except ftplib.Error as exc:
        return sent, str(exc)


def recorded(home: Path) -> dict[str, int]:
    return json.loads((home / ".ftpquota").read_text())


def test_upload_over_quota_is_stopped_with_552_and_the_old_file_kept(
    factory: Any, tmp_path: Path
) -> None:
    users, home = users_file(tmp_path, quota_bytes="1M")
    srv = factory(users_file=str(users))
    ftp = login(srv)
    old = os.urandom(300 * KIB)
    ftp.storbinary("STOR a.bin", io.BytesIO(old))
    assert recorded(home) == {"bytes": 300 * KIB, "files": 1}
    sent, reply = push(ftp, "STOR a.bin", 64 << 20)
    assert reply.startswith("552"), reply
    # Stopped when it crossed the limit, not at the end: the client could not get 64 MiB out.
    assert sent < 32 << 20
    assert (home / "a.bin").read_bytes() == old  # the previous version is kept
    assert [p.name for p in home.iterdir() if p.name.startswith(".ftpd-upload-")] == []
    assert recorded(home) == {"bytes": 300 * KIB, "files": 1}
    # Within the quota it still works, replacing the file frees its old size.
    ftp.storbinary("STOR a.bin", io.BytesIO(b"x" * (900 * KIB)))
    assert recorded(home) == {"bytes": 900 * KIB, "files": 1}
    assert push(ftp, "STOR b.bin", 200 * KIB)[1].startswith("552")
    assert not (home / "b.bin").exists()
    ftp.quit()


def test_usage_follows_stores_appends_renames_and_deletes(factory: Any, tmp_path: Path) -> None:
    users, home = users_file(tmp_path, quota_bytes=100_000, quota_files=3)
    srv = factory(users_file=str(users))
    ftp = login(srv)
    ftp.storbinary("STOR one", io.BytesIO(b"1" * 10_000))
    ftp.storbinary("APPE one", io.BytesIO(b"1" * 5_000))
    ftp.mkd("sub")
    ftp.storbinary("STOR sub/two", io.BytesIO(b"2" * 20_000))
    assert recorded(home) == {"bytes": 35_000, "files": 2}
    ftp.rename("sub/two", "one")  # replaces one: 15,000 bytes and a file freed
    assert recorded(home) == {"bytes": 20_000, "files": 1}
    ftp.rename("one", "sub/one")
    assert recorded(home) == {"bytes": 20_000, "files": 1}
    ftp.storbinary("STOR f2", io.BytesIO(b""))
    ftp.storbinary("STOR f3", io.BytesIO(b""))
    with pytest.raises(ftplib.error_perm, match="^552"):
        ftp.storbinary("STOR f4", io.BytesIO(b""))  # a fourth file
    ftp.storbinary("STOR f3", io.BytesIO(b"3"))  # replacing one is no new file
    ftp.delete("sub/one")
    assert recorded(home) == {"bytes": 1, "files": 2}
    # APPE past the quota: stopped; a non-atomic append keeps what got in, and it is counted.
    sent, reply = push(ftp, "APPE f3", 1 << 20)
    assert reply.startswith("552"), reply
    size = (home / "f3").stat().st_size
    assert size <= 100_000 and recorded(home) == {"bytes": size, "files": 2}
    # The state file is the server's: not listed, not readable, not writable.
    assert ".ftpquota" not in ftp.nlst()
    for call in (lambda: ftp.retrbinary("RETR .ftpquota", lambda b: None),
                 lambda: ftp.storbinary("STOR .ftpquota", io.BytesIO(b"{}")),
                 lambda: ftp.delete(".ftpquota"),
                 lambda: ftp.rename("f2", ".ftpquota")):  # fmt: skip
        with pytest.raises(ftplib.error_perm, match="^550"):
            call()
    ftp.quit()


def test_usage_survives_a_restart_and_rescan_recomputes_it(
    ftpd_factory: Any, tmp_path: Path
) -> None:
    users, home = users_file(tmp_path, quota_bytes="64K")
    srv = ftpd_factory(users_file=str(users))
    ftp = login(srv)
    ftp.storbinary("STOR kept", io.BytesIO(b"k" * 40_000))
    ftp.quit()
    srv.stop()
    srv = ftpd_factory(users_file=str(users))
    ftp = login(srv)
    assert push(ftp, "STOR more", 30_000)[1].startswith("552")  # 40,000 + 30,000 > 64 KiB
    ftp.quit()
    # Files changed behind the server's back: `ftpd quota rescan` puts the record right.
    (home / "kept").write_bytes(b"k" * 10)
    (home / "extra").write_bytes(b"e" * 5)
    run = subprocess.run(
        [sys.executable, "-m", "ftpd", "quota", "rescan", "alice", "--users-file", str(users)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "alice: 15 bytes in 2 files" in run.stdout
    assert recorded(home) == {"bytes": 15, "files": 2}
    ftp = login(srv)
    ftp.storbinary("STOR more", io.BytesIO(b"m" * 30_000))
    ftp.quit()


def test_a_missing_record_is_computed_at_the_first_change(factory: Any, tmp_path: Path) -> None:
    users, home = users_file(tmp_path)
    (home / "old").write_bytes(b"o" * 1000)
    srv = factory(users_file=str(users), user_quota_bytes=2000)  # the server-wide default
    ftp = login(srv)
    assert push(ftp, "STOR new", 1500)[1].startswith("552")
    ftp.storbinary("STOR new", io.BytesIO(b"n" * 900))
    assert recorded(home) == {"bytes": 1900, "files": 2}
    ftp.quit()


def test_site_quota_shows_usage_and_limits(factory: Any, tmp_path: Path) -> None:
    users, home = users_file(tmp_path, quota_bytes=10_000, quota_files=4)
    srv = factory(users_file=str(users), password="single")  # the single user has no quota
    ftp = login(srv)
    ftp.storbinary("STOR a", io.BytesIO(b"a" * 2_500))
    reply = ftp.sendcmd("SITE QUOTA")
    assert reply.splitlines() == [
        "200-Quota of this user:",
        " bytes: 2500 used of 10000 (25.0%)",  # RFC 959 §4.2: inner lines start with a space
        " files: 1 used of 4 (25.0%)",
        "200 End.",
    ]
    assert "QUOTA" in ftp.sendcmd("SITE HELP")
    ftp.quit()
    other = ftp_connect(srv)  # the single user: no quota configured for it
    assert other.sendcmd("SITE QUOTA") == "200 No quota for this user."
    other.quit()
    with pytest.raises(ftplib.error_perm, match="^530"):
        ftp_connect(srv, login=False).sendcmd("SITE QUOTA")
