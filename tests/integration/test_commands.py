"""Every command of ftpd/proto/commands.py at least once against a real server, with its expected
reply code, on 127.0.0.1 and on ::1. One server per family is shared by the module."""

from __future__ import annotations

import ftplib
import io
import os
import re
import socket
import stat
import time
from typing import Any

import pytest
from integ_helpers import TIMEOUT, ftp_connect, uniq
from support.client import Ctl, recv_all

from ftpd.proto.commands import ALIASES, COMMANDS, SITE_COMMANDS

COVERED = {
    "USER", "PASS", "ACCT", "QUIT", "REIN", "NOOP", "SYST", "STAT", "HELP", "FEAT", "OPTS", "HOST",
    "CLNT", "CWD", "CDUP", "PWD", "MKD", "RMD", "DELE", "RNFR", "RNTO", "SIZE", "MDTM", "MFMT",
    "MLST", "MLSD", "LIST", "NLST", "RETR", "STOR", "STOU", "APPE", "REST", "ALLO", "ABOR", "TYPE",
    "MODE", "STRU", "PASV", "EPSV", "PORT", "EPRT", "SITE", "AUTH", "PBSZ", "PROT", "CCC",
}  # fmt: skip


def test_this_module_covers_the_whole_table() -> None:
    assert set(COMMANDS) == COVERED
    assert set(ALIASES) == {"XCWD", "XCUP", "XPWD", "XMKD", "XRMD"}
    assert set(SITE_COMMANDS) == {"HELP", "CHMOD"}


# ---------------------------------------------------------------------------------- access
def test_greeting_and_login(srv: Any) -> None:
    c = Ctl(srv.host, srv.port)
    try:
        assert c.greeting[0] == 220
        assert c.code("PWD") == 530
        assert c.code("PASS x") == 503  # no USER yet
        assert c.code(f"USER {srv.user}") == 331
        assert c.code(f"PASS {srv.password}") == 230
        assert c.code("PASS again") == 503
    finally:
        c.close()


def test_bad_password(srv: Any) -> None:
    c = Ctl(srv.host, srv.port)
    try:
        assert c.code(f"USER {srv.user}") == 331
        assert c.code("PASS wrong") == 530
        assert c.code("PWD") == 530
        c.login(srv.user, srv.password)  # still connected: the attempt limit is 3
    finally:
        c.close()
    with pytest.raises(ftplib.error_perm, match="530"):
        ftp_connect(srv, password="wrong")


def test_anonymous_refused_when_disabled(srv: Any) -> None:
    with pytest.raises(ftplib.error_perm, match="530"):
        ftp_connect(srv, user="anonymous", password="guest@example.com")


def test_acct_rein_noop_quit(raw: Ctl, srv: Any) -> None:
    assert raw.code("ACCT billing") == 202
    assert raw.code("NOOP") == 200
    assert raw.code("REIN") == 220
    assert raw.code("PWD") == 530
    assert raw.code("NOOP") == 200
    raw.login(srv.user, srv.password)
    assert raw.cmd("PWD") == (257, '"/" is the current directory.')
    assert raw.code("QUIT") == 221
    assert raw.closed()


def test_host_before_and_after_login(srv: Any) -> None:
    c = Ctl(srv.host, srv.port)
    try:
        assert c.code("HOST ftp.example.com") == 220
        c.login(srv.user, srv.password)
        assert c.code("HOST ftp.example.com") == 503
    finally:
        c.close()


# ---------------------------------------------------------------------------------- info
def test_syst_stat_help_clnt(raw: Ctl) -> None:
    assert raw.cmd("SYST") == (215, "UNIX Type: L8")
    code, text = raw.cmd("STAT")
    assert code == 211 and "Logged in as" in text and text.count("\n") >= 2
    code, text = raw.cmd("HELP")
    assert code == 214
    for verb in (*COMMANDS, *ALIASES):
        assert re.search(rf"\b{verb}\b", text), verb
    code, text = raw.cmd("HELP RETR")
    assert code == 214 and "RETR" in text
    assert raw.code("HELP BOGUS") == 501
    assert raw.code("CLNT pytest") == 200
    assert raw.code("BOGUS") == 500


def test_feat_and_opts(raw: Ctl) -> None:
    code, text = raw.cmd("FEAT")
    assert code == 211
    feats = text.split("\n")[1:-1]
    assert all(f.startswith(" ") for f in feats)  # RFC 2389 §3.2
    names = {f.strip().split(" ")[0] for f in feats}
    assert {"EPRT", "EPSV", "MDTM", "MLST", "REST", "SIZE", "UTF8", "MFMT"} <= names
    assert raw.cmd("OPTS UTF8 ON")[0] == 200
    assert raw.cmd("OPTS MLST type;size;") == (200, "MLST OPTS type;size;")
    assert raw.code("OPTS BOGUS") == 501


# ---------------------------------------------------------------------------------- directories
def test_directory_commands(raw: Ctl, srv: Any) -> None:
    a, b = uniq("dir"), uniq("dir")
    assert raw.cmd(f"MKD {a}") == (257, f'"/{a}" directory created.')
    assert (srv.root / a).is_dir()
    assert raw.code(f"XMKD {a}/{b}") == 257
    assert raw.code(f"CWD {a}") == 250
    assert raw.cmd("PWD")[1].startswith(f'"/{a}"')
    assert raw.code(f"XCWD {b}") == 250
    assert raw.cmd("XPWD")[1].startswith(f'"/{a}/{b}"')
    assert raw.code("CDUP") == 250
    assert raw.cmd("PWD")[1].startswith(f'"/{a}"')
    assert raw.code(f"CWD {b}") == 250
    assert raw.code("XCUP") == 250
    assert raw.code("XCUP") == 250
    assert raw.cmd("PWD")[1].startswith('"/"')
    assert raw.code(f"CWD {uniq('missing')}") == 550
    assert raw.code(f"RMD {a}") == 550  # not empty
    assert raw.code(f"XRMD {a}/{b}") == 250
    assert raw.code(f"RMD {a}") == 250
    assert not (srv.root / a).exists()
    assert raw.code(f"MKD {a}/x/y") == 550


def test_mkd_with_quote_257(raw: Ctl, srv: Any) -> None:
    name = uniq('q"uote')
    code, text = raw.cmd(f"MKD {name}")
    assert code == 257
    quoted = "/" + name.replace('"', '""')
    assert text.startswith(f'"{quoted}" ')
    assert (srv.root / name).is_dir()
    assert raw.code(f"CWD {name}") == 250
    assert raw.cmd("PWD")[1].startswith(f'"{quoted}" ')


def test_mkd_quote_with_ftplib(ftp: ftplib.FTP, srv: Any) -> None:
    name = uniq('say "hi"')
    assert ftp.mkd(name) == f"/{name}"  # ftplib undoubles the quotes
    ftp.cwd(name)
    assert ftp.pwd() == f"/{name}"


# ---------------------------------------------------------------------------------- files
def test_file_commands(raw: Ctl, srv: Any) -> None:
    name, other = uniq("file"), uniq("renamed")
    (srv.root / name).write_bytes(b"0123456789")
    assert raw.code("TYPE A") == 200
    # TYPE A too (ftplib's size() sends no TYPE I): the stored size, as vsftpd answers.
    assert raw.cmd(f"SIZE {name}") == (213, "10")
    assert raw.code("TYPE I") == 200
    assert raw.cmd(f"SIZE {name}") == (213, "10")
    os.utime(srv.root / name, (1_600_000_000, 1_600_000_000))
    assert raw.cmd(f"MDTM {name}") == (213, "20200913122640")
    assert raw.cmd(f"MFMT 20200102030405 {name}") == (213, f"Modify=20200102030405; /{name}")
    assert (srv.root / name).stat().st_mtime == 1577934245
    assert raw.cmd(f"MDTM {name}") == (213, "20200102030405")
    assert raw.code("MFMT 2020 x") == 501
    code, text = raw.cmd(f"MLST {name}")
    assert code == 250
    entry = text.split("\n")[1]
    assert entry.startswith(" type=file;size=10;modify=20200102030405;")
    assert entry.endswith(f"; /{name}")
    assert raw.code(f"RNFR {name}") == 350
    assert raw.code(f"RNTO {other}") == 250
    assert not (srv.root / name).exists() and (srv.root / other).read_bytes() == b"0123456789"
    assert raw.code(f"RNTO {name}") == 503
    assert raw.code(f"SITE CHMOD 600 {other}") == 200
    assert stat.S_IMODE((srv.root / other).stat().st_mode) == 0o600
    code, text = raw.cmd("SITE HELP")
    assert code == 214 and "CHMOD" in text
    assert raw.code(f"DELE {other}") == 250
    assert not (srv.root / other).exists()
    assert raw.code(f"DELE {other}") == 550
    assert raw.code(f"SIZE {other}") == 550


def test_transfer_parameters(raw: Ctl) -> None:
    for arg in ("A", "I", "L 8", "A N"):
        assert raw.code(f"TYPE {arg}") == 200, arg
    assert raw.code("TYPE E") == 504
    assert raw.code("MODE S") == 200
    assert raw.code("MODE B") == 504
    assert raw.code("STRU F") == 200
    assert raw.code("STRU R") == 504
    assert raw.code("ALLO 1024") == 202
    assert raw.code("TYPE I") == 200
    assert raw.code("REST 100") == 350
    assert raw.code("REST 0") == 350
    assert raw.code("REST x") == 501
    assert raw.code("ABOR") == 225  # nothing to abort


def test_security_commands_without_tls(raw: Ctl) -> None:
    assert raw.code("AUTH TLS") == 502
    assert raw.code("NOOP") == 200  # the connection was not dropped
    assert raw.code("PBSZ 0") in (502, 503)  # 503 "AUTH first" is as right (RFC 4217 §8)
    assert raw.code("PROT P") in (502, 503)
    assert raw.code("CCC") == 533  # not protected (RFC 4217 §6)
    assert raw.code("NOOP") == 200


def test_auth_before_login_keeps_connection(srv: Any) -> None:
    c = Ctl(srv.host, srv.port)
    try:
        assert c.code("AUTH TLS") == 502
        assert c.code("AUTH SSL") == 502
        c.login(srv.user, srv.password)
    finally:
        c.close()


# ---------------------------------------------------------------------------------- data setup
def test_pasv_epsv(raw: Ctl, srv: Any) -> None:
    code, text = raw.cmd("PASV")
    if ":" in srv.host:
        assert code == 425  # PASV carries only IPv4 addresses (RFC 2428 §1)
    else:
        assert code == 227
        m = re.search(r"\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)", text)
        assert m and ".".join(m.groups()[:4]) == srv.host
        assert int(m[5]) * 256 + int(m[6]) in srv.pasv_range
    code, text = raw.cmd("EPSV")
    assert code == 229 and re.search(r"\(\|\|\|\d+\|\)", text)
    assert raw.code("EPSV ALL") == 200
    assert raw.code("PASV") == 501
    assert raw.code("PORT 127,0,0,1,240,0") == 501
    assert raw.code("EPRT |1|127.0.0.1|61440|") == 501
    assert raw.code("EPSV") == 229  # EPSV itself still works


def test_epsv_protocol_numbers(raw: Ctl, srv: Any) -> None:
    mine, other = ("2", "1") if ":" in srv.host else ("1", "2")
    assert raw.code(f"EPSV {mine}") == 229
    assert raw.code(f"EPSV {other}") == 522
    assert raw.code("EPSV 7") == 522


def test_port_and_eprt_transfer(raw: Ctl, srv: Any) -> None:
    name = uniq("active")
    (srv.root / name).write_bytes(b"active data")
    family = socket.AF_INET6 if ":" in srv.host else socket.AF_INET
    for verb in ("PORT", "EPRT"):
        if verb == "PORT" and family == socket.AF_INET6:
            continue  # PORT is IPv4 only
        with socket.socket(family, socket.SOCK_STREAM) as lsock:
            lsock.bind((raw.local_ip, 0))
            lsock.listen(1)
            lsock.settimeout(TIMEOUT)
            port = lsock.getsockname()[1]
            if verb == "PORT":
                arg = ",".join(raw.local_ip.split(".")) + f",{port >> 8},{port & 255}"
            else:
                arg = f"|{'2' if family == socket.AF_INET6 else '1'}|{raw.local_ip}|{port}|"
            assert raw.code(f"{verb} {arg}") == 200
            raw.send(f"RETR {name}")
            conn, _ = lsock.accept()
            assert raw.reply()[0] == 150
            assert recv_all(conn) == b"active data"
            assert raw.reply()[0] == 226


# ---------------------------------------------------------------------------------- listings
def test_list_nlst_mlsd_stat(ftp: ftplib.FTP, srv: Any) -> None:
    d = uniq("listing")
    (srv.root / d).mkdir()
    (srv.root / d / "file one").write_bytes(b"12345")
    (srv.root / d / "sub").mkdir()
    lines: list[str] = []
    ftp.retrlines(f"LIST {d}", lines.append)
    assert len(lines) == 2
    assert re.fullmatch(
        r"-rw\S{7} +1 ftp +ftp +5 [A-Z][a-z]{2} [ \d]\d \d\d:\d\d file one", lines[0]
    )
    assert lines[1].startswith("d") and lines[1].endswith(" sub")
    assert sorted(ftp.nlst(d)) == ["file one", "sub"]
    facts = dict(ftp.mlsd(d))
    assert facts["file one"]["type"] == "file" and facts["file one"]["size"] == "5"
    assert facts["sub"]["type"] == "dir"
    assert re.fullmatch(r"\d{14}", facts["sub"]["modify"])
    resp = ftp.sendcmd(f"STAT {d}")
    assert (
        resp.startswith("213-")
        and "file one" in resp
        and resp.rstrip().endswith("213 End of status.")
    )


def test_list_with_ls_flags(ftp: ftplib.FTP, srv: Any) -> None:
    d = uniq("flags")
    (srv.root / d).mkdir()
    (srv.root / d / "x").write_bytes(b"")
    ftp.cwd(d)
    lines: list[str] = []
    ftp.retrlines("LIST -la", lines.append)
    assert len(lines) == 1 and lines[0].endswith(" x")
    assert ftp.nlst("-CF") == ["x"]
    lines.clear()
    ftp.retrlines("LIST -alF .", lines.append)
    assert len(lines) == 1


def test_transfers_basic(ftp: ftplib.FTP, srv: Any) -> None:
    """RETR, STOR, APPE, STOU through ftplib (details in test_transfers.py)."""
    name = uniq("basic")
    ftp.storbinary(f"STOR {name}", _bio(b"hello "))
    ftp.storbinary(f"APPE {name}", _bio(b"world"))
    assert (srv.root / name).read_bytes() == b"hello world"
    got: list[bytes] = []
    ftp.retrbinary(f"RETR {name}", got.append)
    assert b"".join(got) == b"hello world"
    conn = ftp.transfercmd("STOU")
    with conn:
        conn.sendall(b"unique")
    assert ftp.voidresp().startswith("226")


def _bio(data: bytes) -> io.BytesIO:
    return io.BytesIO(data)


def test_quit_closes(srv: Any) -> None:
    f = ftp_connect(srv)
    assert f.quit().startswith("221")
    t = time.monotonic()
    c = Ctl(srv.host, srv.port)
    c.send("QUIT")
    assert c.reply()[0] == 221 and c.closed(3) and time.monotonic() - t < 3
