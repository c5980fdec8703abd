"""Access control against a real server: anonymous and read-only users, the jail (``..``, symlinks
out of the home), and data-connection theft (PORT bounce, passive connections from a foreign IP)."""

from __future__ import annotations

import ftplib
import io
import os
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from integ_helpers import FAMILIES, TIMEOUT, ftp_connect, uniq
from support.client import Ctl, recv_all
from support.waits import wait_until

from ftpd.auth.hashing import hash_password

SECRET = b"SECRET-outside-the-home"


# ---------------------------------------------------------------------------------- accounts
@pytest.fixture(scope="module", params=FAMILIES)
def anon_srv(request: pytest.FixtureRequest, module_factory: Any) -> Any:
    return module_factory(host=request.param, anonymous=True)


def test_anonymous_login_is_read_only(anon_srv: Any) -> None:
    (anon_srv.root / "pub.txt").write_bytes(b"public")
    for user in ("anonymous", "ftp", "Anonymous"):
        f = ftp_connect(anon_srv, user=user, password="guest@example.com")
        try:
            got: list[bytes] = []
            f.retrbinary("RETR pub.txt", got.append)
            assert b"".join(got) == b"public"
            assert "pub.txt" in f.nlst()
            with pytest.raises(ftplib.error_perm, match="^550"):
                f.storbinary("STOR up.txt", io.BytesIO(b"x"))
            with pytest.raises(ftplib.error_perm, match="^550"):
                f.mkd("newdir")
            with pytest.raises(ftplib.error_perm, match="^550"):
                f.delete("pub.txt")
            with pytest.raises(ftplib.error_perm, match="^550"):
                f.rename("pub.txt", "x")
            with pytest.raises(ftplib.error_perm, match="^550"):
                f.sendcmd("SITE CHMOD 777 pub.txt")
        finally:
            f.quit()
    assert sorted(os.listdir(anon_srv.root)) == ["pub.txt"]
    # The configured user still logs in, with full rights.
    f = ftp_connect(anon_srv)
    f.mkd("made-by-user")
    f.quit()
    assert (anon_srv.root / "made-by-user").is_dir()


def test_users_file_read_only_user(factory: Any, tmp_path: Path) -> None:
    home = tmp_path / "reader-home"
    home.mkdir()
    (home / "doc.txt").write_bytes(b"readable")
    (home / "dir").mkdir()
    users = tmp_path / "users.toml"
    users.write_text(
        "[[users]]\n"
        'name = "reader"\n'
        f'password_hash = "{hash_password("s3cret", ln=4)}"\n'
        f'home = "{home}"\n'
        'perms = "elr"\n'
    )
    srv = factory(users_file=str(users))
    with pytest.raises(ftplib.error_perm, match="530"):
        ftp_connect(srv, user="reader", password="wrong")
    f = ftp_connect(srv, user="reader", password="s3cret")
    try:
        got: list[bytes] = []
        f.retrbinary("RETR doc.txt", got.append)
        assert b"".join(got) == b"readable"
        assert sorted(f.nlst()) == ["dir", "doc.txt"]
        f.cwd("dir")
        f.cwd("/")
        for call in (
            lambda: f.storbinary("STOR new.txt", io.BytesIO(b"x")),
            lambda: f.storbinary("APPE doc.txt", io.BytesIO(b"x")),
            lambda: f.delete("doc.txt"),
            lambda: f.mkd("newdir"),
            lambda: f.rmd("dir"),
            lambda: f.sendcmd("RNFR doc.txt"),
            lambda: f.sendcmd("STOU"),
            lambda: f.sendcmd("SITE CHMOD 600 doc.txt"),
            lambda: f.sendcmd("MFMT 20200101000000 doc.txt"),
        ):
            with pytest.raises(ftplib.error_perm, match="^550"):
                call()
        facts = dict(f.mlsd())
        assert facts["doc.txt"]["perm"] == "r" and facts["dir"]["perm"] == "el"
    finally:
        f.quit()
    assert sorted(os.listdir(home)) == ["dir", "doc.txt"]
    assert (home / "doc.txt").read_bytes() == b"readable"


# ---------------------------------------------------------------------------------- the jail
def test_cwd_dotdot_at_root_stays_root(raw: Ctl) -> None:
    for arg in ("..", "../..", "/..", "../../../../.."):
        assert raw.code(f"CWD {arg}") == 250
        assert raw.cmd("PWD")[1].startswith('"/" ')
    assert raw.code("CDUP") == 250
    assert raw.cmd("PWD")[1].startswith('"/" ')


def test_retr_dotdot_never_reads_outside(raw: Ctl, srv: Any) -> None:
    outside = srv.root.parent / "outside.txt"
    outside.write_bytes(SECRET)
    raw.code("TYPE I")
    for path in (
        "../outside.txt",
        "../../etc/passwd",
        "/../outside.txt",
        "../" * 20 + "etc/passwd",
    ):
        assert raw.code("EPSV") == 229
        code, text = raw.cmd(f"RETR {path}")
        assert code == 550, (path, text)
        assert str(srv.root) not in text
    for cmd in ("SIZE ../outside.txt", "MDTM ../outside.txt", "MLST ../outside.txt"):
        assert raw.code(cmd) == 550
    assert outside.read_bytes() == SECRET


@pytest.fixture
def links(srv: Any) -> dict[str, str]:
    """Symlinks in the home pointing outside it, to a file and to a directory."""
    outdir = srv.root.parent / uniq("outside-dir")
    outdir.mkdir()
    (outdir / "secret.txt").write_bytes(SECRET)
    outfile = srv.root.parent / uniq("outside-file")
    outfile.write_bytes(SECRET)
    names = {"file": uniq("link-file"), "dir": uniq("link-dir"), "abs": uniq("link-etc")}
    os.symlink(outfile, srv.root / names["file"])
    os.symlink(outdir, srv.root / names["dir"])
    os.symlink("/etc", srv.root / names["abs"])
    return names


def test_symlink_out_of_home_is_refused(ftp: ftplib.FTP, links: dict[str, str]) -> None:
    def data(cmd: str) -> bytes:
        got: list[bytes] = []
        ftp.retrbinary(cmd, got.append)
        return b"".join(got)

    for cmd in (
        f"RETR {links['file']}",
        f"RETR {links['dir']}/secret.txt",
        f"RETR {links['abs']}/passwd",
        f"LIST {links['dir']}",
        f"LIST {links['abs']}",
        f"NLST {links['dir']}",
        f"MLSD {links['dir']}",
    ):
        with pytest.raises(ftplib.error_perm, match="^550") as exc:
            got = data(cmd)
            assert SECRET not in got
        assert "outside" not in str(exc.value), cmd
    for target in (links["dir"], links["abs"]):
        with pytest.raises(ftplib.error_perm, match="^550"):
            ftp.cwd(target)
    assert ftp.pwd() == "/"
    with pytest.raises(ftplib.error_perm, match="^550"):
        ftp.storbinary(f"STOR {links['dir']}/planted.txt", io.BytesIO(b"x"))
    with pytest.raises(ftplib.error_perm, match="^550"):
        ftp.sendcmd(f"SIZE {links['file']}")


def test_symlink_writes_do_not_escape(ftp: ftplib.FTP, srv: Any, links: dict[str, str]) -> None:
    outfile = os.readlink(srv.root / links["file"])
    try:
        ftp.storbinary(f"STOR {links['file']}", io.BytesIO(b"overwritten"))
    except ftplib.error_perm:
        pass  # refusing is fine; replacing the link itself (atomic rename) is fine too
    assert Path(outfile).read_bytes() == SECRET
    with pytest.raises(ftplib.error_perm, match="^550"):
        ftp.mkd(f"{links['dir']}/newdir")
    assert not (Path(os.readlink(srv.root / links["dir"])) / "newdir").exists()


def test_symlink_inside_home_works(ftp: ftplib.FTP, srv: Any) -> None:
    d = uniq("real-dir")
    (srv.root / d).mkdir()
    (srv.root / d / "f").write_bytes(b"inside")
    link = uniq("in-link")
    os.symlink(d, srv.root / link)
    got: list[bytes] = []
    ftp.retrbinary(f"RETR {link}/f", got.append)
    assert b"".join(got) == b"inside"
    ftp.cwd(link)
    assert ftp.nlst() == ["f"]


# ---------------------------------------------------------------------------------- bounce
def test_port_to_foreign_address_or_low_port_refused(srv: Any) -> None:
    c = Ctl(srv.host, srv.port, source=srv.host).login(srv.user, srv.password)
    try:
        if ":" in srv.host:
            # ::1 is the only IPv6 loopback address: an IPv4 loopback address is foreign here.
            foreign = ["EPRT |1|127.0.0.1|61440|"]
            low = ["EPRT |2|::1|1023|", "EPRT |2|::1|21|"]
        else:
            foreign = ["PORT 127,0,0,2,240,0", "EPRT |1|127.0.0.2|61440|"]
            low = ["PORT 127,0,0,1,3,255", "PORT 127,0,0,1,0,21", "EPRT |1|127.0.0.1|1023|"]
        for cmd in foreign + low:
            assert c.code(cmd) == 501, cmd
        assert c.code("LIST") == 425  # nothing was set up by the refused commands
    finally:
        c.close()


# IPv4 only: the thief needs a second loopback address, and ::1 is the only IPv6 one.
@pytest.mark.parametrize("srv", ["127.0.0.1"], indirect=True)
def test_passive_connection_from_foreign_ip_refused(srv: Any) -> None:
    name = uniq("theft")
    payload = os.urandom(100_000)
    (srv.root / name).write_bytes(payload)
    c = Ctl(srv.host, srv.port, source="127.0.0.1").login(srv.user, srv.password)
    try:
        c.code("TYPE I")
        code, text = c.cmd("EPSV")
        assert code == 229
        port = int(text.split("|||")[1].split("|")[0])
        c.send(f"RETR {name}")
        thief = socket.create_connection(
            ("127.0.0.1", port), TIMEOUT, source_address=("127.0.0.2", 0)
        )
        with thief:
            try:
                stolen = recv_all(thief)
            except ConnectionResetError:
                stolen = b""
        assert stolen == b""
        real = socket.create_connection(
            ("127.0.0.1", port), TIMEOUT, source_address=("127.0.0.1", 0)
        )
        assert c.reply()[0] == 150
        assert recv_all(real) == payload
        assert c.reply()[0] == 226
        assert wait_until(lambda: "127.0.0.2" in srv.log())
    finally:
        c.close()


def test_idle_passive_listener_ignores_foreign_then_times_out(factory: Any) -> None:
    srv = factory(data_timeout=1)
    (srv.root / "f").write_bytes(b"data")
    c = Ctl(srv.host, srv.port, source="127.0.0.1").login(srv.user, srv.password)
    try:
        code, text = c.cmd("EPSV")
        port = int(text.split("|||")[1].split("|")[0])
        c.send("RETR f")
        thief = socket.create_connection(
            ("127.0.0.1", port), TIMEOUT, source_address=("127.0.0.2", 0)
        )
        thief.close()
        t = time.monotonic()
        assert c.reply()[0] == 425  # only the thief came
        assert time.monotonic() - t < 4
    finally:
        c.close()
