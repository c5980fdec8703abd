"""Data transfers against a real server on 127.0.0.1 and ::1: passive and active, REST resume,
ABOR, STOU, APPE, TYPE A conversion, rename, names with spaces and UTF-8."""

from __future__ import annotations

import ftplib
import io
import os
import re
import socket
import time
from typing import Any

import pytest
from integ_helpers import uniq
from support.client import Ctl, recv_all

BIG = 64 * 1024 * 1024  # far more than the loopback socket buffers hold


@pytest.fixture(params=[True, False], ids=["passive", "active"])
def mode(request: pytest.FixtureRequest, ftp: ftplib.FTP) -> bool:
    ftp.set_pasv(request.param)
    return bool(request.param)


def _retr(ftp: ftplib.FTP, cmd: str, rest: int | None = None) -> bytes:
    parts: list[bytes] = []
    ftp.retrbinary(cmd, parts.append, rest=rest)
    return b"".join(parts)


def test_stor_retr_round_trip(ftp: ftplib.FTP, srv: Any, mode: bool) -> None:
    name = uniq("round")
    data = os.urandom(3 * 1024 * 1024 + 17)
    assert ftp.storbinary(f"STOR {name}", io.BytesIO(data)).startswith("226")
    assert (srv.root / name).read_bytes() == data
    assert _retr(ftp, f"RETR {name}") == data
    assert ftp.size(name) == len(data)
    assert name in ftp.nlst()


def test_empty_file(ftp: ftplib.FTP, srv: Any, mode: bool) -> None:
    name = uniq("empty")
    ftp.storbinary(f"STOR {name}", io.BytesIO(b""))
    assert (srv.root / name).read_bytes() == b""
    assert _retr(ftp, f"RETR {name}") == b""


def test_overwrite(ftp: ftplib.FTP, srv: Any) -> None:
    name = uniq("over")
    (srv.root / name).write_bytes(b"x" * 1000)
    ftp.storbinary(f"STOR {name}", io.BytesIO(b"short"))
    assert (srv.root / name).read_bytes() == b"short"


def test_rest_retr(ftp: ftplib.FTP, srv: Any, mode: bool) -> None:
    name = uniq("rest")
    data = os.urandom(200_000)
    (srv.root / name).write_bytes(data)
    assert _retr(ftp, f"RETR {name}", rest=123_456) == data[123_456:]
    assert _retr(ftp, f"RETR {name}", rest=len(data)) == b""
    assert _retr(ftp, f"RETR {name}") == data  # REST applied to one transfer only


def test_rest_stor(ftp: ftplib.FTP, srv: Any, mode: bool) -> None:
    name = uniq("resume")
    data = os.urandom(300_000)
    (srv.root / name).write_bytes(data[:100_000] + b"garbage tail")
    ftp.storbinary(f"STOR {name}", io.BytesIO(data[100_000:]), rest=100_000)
    assert (srv.root / name).read_bytes() == data


def test_appe(ftp: ftplib.FTP, srv: Any) -> None:
    name = uniq("appe")
    ftp.storbinary(f"APPE {name}", io.BytesIO(b"first;"))  # creates the file
    ftp.storbinary(f"APPE {name}", io.BytesIO(b"second"))
    assert (srv.root / name).read_bytes() == b"first;second"


def test_stou(raw: Ctl, srv: Any) -> None:
    assert raw.code("TYPE I") == 200
    names = []
    for payload in (b"unique one", b"unique two"):
        data = raw.passive()
        code, text = raw.cmd("STOU")
        assert code == 150
        m = re.fullmatch(r"FILE: (\S+)", text)  # RFC 1123 §4.1.2.9
        assert m, text
        with data:
            data.sendall(payload)
        assert raw.reply()[0] == 226
        assert (srv.root / m.group(1)).read_bytes() == payload
        names.append(m.group(1))
    assert names[0] != names[1]
    d = uniq("stou-dir")
    (srv.root / d).mkdir()
    data = raw.passive()
    code, text = raw.cmd(f"STOU {d}/report")
    assert code == 150 and text.startswith("FILE: report")
    with data:
        data.sendall(b"in a dir")
    assert raw.reply()[0] == 226
    (made,) = list((srv.root / d).iterdir())
    assert made.name == text[len("FILE: ") :] and made.read_bytes() == b"in a dir"


def test_type_a_retr_converts_lf_to_crlf(raw: Ctl, srv: Any) -> None:
    name = uniq("text")
    (srv.root / name).write_bytes(b"line one\nline two\r\nlast\n")
    assert raw.code("TYPE A") == 200
    data = raw.passive()
    code, text = raw.cmd(f"RETR {name}")
    assert code == 150 and "ASCII" in text
    assert recv_all(data) == b"line one\r\nline two\r\nlast\r\n"
    assert raw.reply()[0] == 226
    assert raw.code("TYPE I") == 200
    data = raw.passive()
    raw.send(f"RETR {name}")
    assert raw.reply()[0] == 150
    assert recv_all(data) == b"line one\nline two\r\nlast\n"  # binary: as on disk
    assert raw.reply()[0] == 226


def test_type_a_stor_converts_crlf_to_lf(raw: Ctl, srv: Any) -> None:
    name = uniq("text-up")
    assert raw.code("TYPE A") == 200
    data = raw.passive()
    assert raw.code(f"STOR {name}") == 150
    with data:
        for chunk in (b"a\r", b"\nb\r\n", b"c\rd\r\n"):  # CR and LF in different segments
            data.sendall(chunk)
            time.sleep(0.01)  # separate segments (the server must carry a CR across reads)
    assert raw.reply()[0] == 226
    assert (srv.root / name).read_bytes() == b"a\nb\nc\rd\n"


def test_type_a_with_ftplib(ftp: ftplib.FTP, srv: Any) -> None:
    name = uniq("lines")
    ftp.storlines(f"STOR {name}", io.BytesIO(b"alpha\nbeta\n"))
    assert (srv.root / name).read_bytes() == b"alpha\nbeta\n"
    lines: list[str] = []
    ftp.retrlines(f"RETR {name}", lines.append)
    assert lines == ["alpha", "beta"]


def test_rename(ftp: ftplib.FTP, srv: Any) -> None:
    a, b = uniq("from"), uniq("to")
    (srv.root / a).write_bytes(b"content")
    assert ftp.rename(a, b).startswith("250")
    assert (srv.root / b).read_bytes() == b"content" and not (srv.root / a).exists()
    d = uniq("dir")
    (srv.root / d).mkdir()
    ftp.rename(b, f"{d}/{b}")  # into a directory
    assert (srv.root / d / b).exists()
    with pytest.raises(ftplib.error_perm, match="550"):
        ftp.rename(uniq("missing"), "x")


def test_names_with_spaces_and_utf8(ftp: ftplib.FTP, srv: Any) -> None:
    d = uniq("names")
    ftp.mkd(d)
    ftp.cwd(d)
    names = ["  two leading spaces", "trailing space ", "a b  c.txt", "żółw ünï 日本.txt"]
    for i, name in enumerate(names):
        ftp.storbinary(f"STOR {name}", io.BytesIO(str(i).encode()))
    assert sorted(os.listdir(srv.root / d)) == sorted(names)
    assert sorted(ftp.nlst()) == sorted(names)
    for i, name in enumerate(names):
        assert _retr(ftp, f"RETR {name}") == str(i).encode()
        assert ftp.size(name) == 1
    facts = dict(ftp.mlsd())
    assert set(facts) == set(names)
    sub = "répertoire ü"
    assert ftp.mkd(sub) == f"/{d}/{sub}"
    ftp.cwd(sub)
    assert ftp.pwd() == f"/{d}/{sub}"


def test_non_utf8_name_round_trip(raw: Ctl, srv: Any) -> None:
    name = uniq("latin1-").encode() + b"\xe9t\xe9"
    raw.send(b"TYPE I")
    assert raw.reply()[0] == 200
    data = raw.passive()
    raw.send(b"STOR " + name)
    assert raw.reply()[0] == 150
    with data:
        data.sendall(b"bytes")
    assert raw.reply()[0] == 226
    assert (srv.root.joinpath(os.fsdecode(name))).read_bytes() == b"bytes"
    data = raw.passive()
    raw.send(b"NLST")
    assert raw.reply()[0] == 150
    # Listed in the escaped form (valid UTF-8, see ftpd/proto/names.py); the raw bytes a legacy
    # client sends still reach the file.
    escaped = name.replace(b"\xe9", "\ufffdE9".encode())
    assert escaped + b"\r\n" in recv_all(data)
    assert raw.reply()[0] == 226
    assert raw.cmd(b"SIZE " + name) == (213, "5")
    assert raw.cmd(b"SIZE " + escaped) == (213, "5")


def _big_file(srv: Any) -> str:
    name = uniq("big")
    with open(srv.root / name, "wb") as f:
        f.truncate(BIG)  # sparse: instant to create
    return name


def test_abor_mid_transfer(raw: Ctl, srv: Any) -> None:
    name = _big_file(srv)
    assert raw.code("TYPE I") == 200
    data = raw.passive()
    assert raw.code(f"RETR {name}") == 150
    assert len(data.recv(65536)) > 0  # the transfer is running; we stop reading now
    raw.send("ABOR")
    assert raw.reply()[0] == 426  # the RETR's reply first (RFC 959 §4.1.3)
    assert raw.reply()[0] == 226  # then ABOR's
    got = 0
    data.settimeout(5)
    try:
        while chunk := data.recv(1 << 20):
            got += len(chunk)
    except ConnectionResetError:
        pass
    data.close()
    assert got < BIG
    assert raw.code("NOOP") == 200  # the session goes on
    assert raw.cmd("STAT")[1].count("Data connection open") == 0


def test_abor_with_ftplib_oob(ftp: ftplib.FTP, srv: Any) -> None:
    """ftplib sends ABOR as TCP urgent data (no Telnet IP/SYNCH)."""
    name = _big_file(srv)
    ftp.voidcmd("TYPE I")
    conn = ftp.transfercmd(f"RETR {name}")
    assert conn.recv(65536)
    resp = ftp.abort()
    assert resp.startswith("426")
    assert ftp.getresp().startswith("226")
    conn.close()
    assert ftp.voidcmd("NOOP").startswith("200")


def test_abor_nothing_running(raw: Ctl) -> None:
    assert raw.cmd("ABOR")[0] == 225
    raw.passive()
    assert raw.code("ABOR") == 225  # closes the passive listener
    assert raw.code("RETR anything") == 425


def test_stat_and_noop_during_transfer(raw: Ctl, srv: Any) -> None:
    name = _big_file(srv)
    raw.code("TYPE I")
    data = raw.passive()
    assert raw.code(f"RETR {name}") == 150
    data.recv(65536)
    code, text = raw.cmd("STAT")
    assert code == 211 and f"RETR /{name}" in text
    assert raw.code("NOOP") == 200
    raw.send("ABOR")
    assert [raw.reply()[0], raw.reply()[0]] == [426, 226]
    data.close()


def test_quit_during_transfer_finishes_it(raw: Ctl, srv: Any) -> None:
    name = uniq("quit")
    payload = os.urandom(2 * 1024 * 1024)
    (srv.root / name).write_bytes(payload)
    raw.code("TYPE I")
    data = raw.passive()
    assert raw.code(f"RETR {name}") == 150
    raw.send("QUIT")
    assert recv_all(data) == payload
    # 221 at once if the transfer still runs (issue 17), after the 226 if it ended first.
    assert sorted([raw.reply()[0], raw.reply()[0]]) == [221, 226]
    assert raw.closed()


def test_commands_queue_behind_a_transfer(raw: Ctl, srv: Any) -> None:
    """Pipelined commands wait for the transfer and are answered in order."""
    name = uniq("pipe")
    (srv.root / name).write_bytes(b"z" * 100_000)
    raw.code("TYPE I")
    data = raw.passive()
    raw.sock.sendall(f"RETR {name}\r\nPWD\r\nSYST\r\n".encode())
    assert raw.reply()[0] == 150
    assert recv_all(data) == b"z" * 100_000
    assert [raw.reply()[0] for _ in range(3)] == [226, 257, 215]


def test_two_clients_at_once(srv: Any) -> None:
    clients = [Ctl(srv.host, srv.port).login(srv.user, srv.password) for _ in range(3)]
    try:
        names = []
        for i, c in enumerate(clients):
            name = uniq(f"par{i}")
            (srv.root / name).write_bytes(bytes([i]) * 500_000)
            c.code("TYPE I")
            names.append((c, c.passive(), name))
        for c, _data, name in names:
            assert c.code(f"RETR {name}") == 150
        for i, (c, data, _) in enumerate(names):
            assert recv_all(data) == bytes([i]) * 500_000
            assert c.reply()[0] == 226
    finally:
        for c in clients:
            c.close()


def test_data_connection_never_comes(srv: Any, module_factory: Any) -> None:
    fast = module_factory(host=srv.host, data_timeout=1)
    c = Ctl(fast.host, fast.port).login(fast.user, fast.password)
    try:
        (fast.root / "f").write_bytes(b"x")
        assert c.code("EPSV") == 229
        t = time.monotonic()
        assert c.cmd("RETR f")[0] == 425  # nobody connected within data_timeout
        assert time.monotonic() - t < 4
        assert c.code("NOOP") == 200
    finally:
        c.close()


def test_active_to_a_closed_port_is_425(raw: Ctl, srv: Any) -> None:
    family = socket.AF_INET6 if ":" in srv.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((raw.local_ip, 0))
        port = s.getsockname()[1]  # bound, never listening: the connect is refused
        proto = "2" if family == socket.AF_INET6 else "1"
        assert raw.code(f"EPRT |{proto}|{raw.local_ip}|{port}|") == 200
        assert raw.cmd("LIST")[0] == 425
    assert raw.code("NOOP") == 200
