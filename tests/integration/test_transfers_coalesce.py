"""Held 150 replies and one-hop upload commits, against a real server on 127.0.0.1 and ::1.

A download that fits in the socket buffers completes without waiting, so the server sends its
150 together with the 226 (one write). A download that must wait for the client has to send the
150 first: ftplib (and most clients) read the 150 before they read a byte of data, so holding it
would deadlock. Uploads hand their last bytes to the commit; the buffer boundaries
(``RECV_BUF``) and TYPE A conversion must still give exact files.
"""

from __future__ import annotations

import ftplib
import hashlib
import io
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from integ_helpers import TIMEOUT, ftp_connect, uniq
from support.client import Ctl, recv_all

from ftpd.fs.local import TEMP_PREFIX
from ftpd.server.data import BULK_AFTER, RECV_BUF

BIG = 64 * 1024 * 1024  # far more than loopback socket buffers hold: the send must wait


@pytest.fixture(scope="module")
def big_data() -> bytes:
    return os.urandom(BIG)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def no_temp_files(d: Path) -> bool:
    return not [n for n in os.listdir(d) if n.startswith(TEMP_PREFIX)]


class Active:
    """A listening socket for PORT/EPRT; ``accept`` only when the test decides to."""

    def __init__(self, raw: Ctl) -> None:
        family = socket.AF_INET6 if ":" in raw.local_ip else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.bind((raw.local_ip, 0))
        self.sock.listen(1)
        self.sock.settimeout(TIMEOUT)
        port = self.sock.getsockname()[1]
        if family == socket.AF_INET:
            cmd = "PORT " + ",".join(raw.local_ip.split(".")) + f",{port >> 8},{port & 255}"
        else:
            cmd = f"EPRT |2|{raw.local_ip}|{port}|"
        code, text = raw.cmd(cmd)
        assert code == 200, text

    def accept(self) -> socket.socket:
        conn, _ = self.sock.accept()
        conn.settimeout(TIMEOUT)
        return conn

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def typed(raw: Ctl) -> Iterator[Ctl]:
    """``raw`` in TYPE I (tests switch to TYPE A themselves)."""
    assert raw.code("TYPE I") == 200
    yield raw


# -- downloads that never wait: 150 and 226 together ------------------------------------------


def test_small_retr(typed: Ctl, srv: Any) -> None:
    name = uniq("small")
    data = os.urandom(4096)
    (srv.root / name).write_bytes(data)
    sock = typed.passive()
    typed.send(f"RETR {name}")
    code, text = typed.reply()
    assert code == 150, text
    # The server never had to wait on the data connection: the 226 came in the same write.
    assert typed.buf.startswith(b"226 "), typed.buf
    assert typed.reply()[0] == 226
    assert recv_all(sock) == data


def test_small_retr_reading_data_first(typed: Ctl, srv: Any) -> None:
    """The order a client reads in does not matter: data, then both replies."""
    name = uniq("small")
    data = os.urandom(4096)
    (srv.root / name).write_bytes(data)
    sock = typed.passive()
    typed.send(f"RETR {name}")
    assert recv_all(sock) == data
    assert [typed.reply()[0], typed.reply()[0]] == [150, 226]


def test_empty_retr(typed: Ctl, srv: Any) -> None:
    name = uniq("empty")
    (srv.root / name).write_bytes(b"")
    sock = typed.passive()
    typed.send(f"RETR {name}")
    assert [typed.reply()[0], typed.reply()[0]] == [150, 226]
    assert recv_all(sock) == b""


def test_list_and_nlst(typed: Ctl, srv: Any) -> None:
    d = uniq("listdir")
    names = sorted(f"entry-{i:02d}.txt" for i in range(40))
    (srv.root / d).mkdir()
    for n in names:
        (srv.root / d / n).write_bytes(n.encode())
    sock = typed.passive()
    typed.send(f"LIST {d}")
    code, text = typed.reply()
    assert code == 150, text
    assert typed.buf.startswith(b"226 "), typed.buf
    assert typed.reply()[0] == 226
    lines = recv_all(sock).decode().split("\r\n")
    assert lines[-1] == ""
    assert sorted(ln.rsplit(" ", 1)[-1] for ln in lines[:-1]) == names
    sock = typed.passive()
    typed.send(f"NLST {d}")
    assert [typed.reply()[0], typed.reply()[0]] == [150, 226]
    got = recv_all(sock).decode().split("\r\n")
    assert sorted(p.rsplit("/", 1)[-1] for p in got if p) == names


def test_small_retr_type_a(typed: Ctl, srv: Any) -> None:
    name = uniq("text")
    (srv.root / name).write_bytes(b"one\ntwo\r\nthree\n" * 100)
    assert typed.code("TYPE A") == 200
    sock = typed.passive()
    typed.send(f"RETR {name}")
    assert [typed.reply()[0], typed.reply()[0]] == [150, 226]
    assert recv_all(sock) == b"one\r\ntwo\r\nthree\r\n" * 100


# -- downloads that wait: the 150 must come first -----------------------------------------------


def _retr_reading_150_first(raw: Ctl, name: str, connect: Any) -> bytes:
    """What ftplib does: send RETR, read the 150, only then read the data (and the 226)."""
    raw.send(f"RETR {name}")
    code, text = raw.reply()  # bounded by the socket timeout: a held 150 would deadlock here
    assert code == 150, text
    # The data is still in flight (nobody has read it): the 226 cannot have been sent yet.
    assert raw.buf == b""
    data = recv_all(connect())
    code, text = raw.reply()
    assert code == 226, text
    return data


def test_big_retr_passive_client_waits_for_150(typed: Ctl, srv: Any, big_data: bytes) -> None:
    name = uniq("big")
    (srv.root / name).write_bytes(big_data)
    sock = typed.passive()
    got = _retr_reading_150_first(typed, name, lambda: sock)
    assert len(got) == BIG and digest(got) == digest(big_data)


def test_big_retr_active_client_waits_for_150(typed: Ctl, srv: Any, big_data: bytes) -> None:
    """Active mode as ftplib does it: the client accepts the data connection only after the
    150, so until then the server's sends fill the kernel buffers and must wait."""
    name = uniq("big-active")
    (srv.root / name).write_bytes(big_data)
    active = Active(typed)
    try:
        got = _retr_reading_150_first(typed, name, active.accept)
    finally:
        active.close()
    assert len(got) == BIG and digest(got) == digest(big_data)


def test_big_retr_type_a_client_waits_for_150(typed: Ctl, srv: Any) -> None:
    name = uniq("big-text")
    line = b"the quick brown fox jumps over the lazy dog %d\n"
    text = b"".join(line % i for i in range(200_000))  # ~9 MiB
    (srv.root / name).write_bytes(text)
    assert typed.code("TYPE A") == 200
    sock = typed.passive()
    got = _retr_reading_150_first(typed, name, lambda: sock)
    assert digest(got) == digest(text.replace(b"\n", b"\r\n"))


def test_big_retr_with_ftplib(srv: Any, big_data: bytes) -> None:
    name = uniq("big-ftplib")
    (srv.root / name).write_bytes(big_data)
    for passive in (True, False):
        ftp = ftp_connect(srv)
        try:
            ftp.set_pasv(passive)
            h = hashlib.sha256()
            size = 0

            def take(chunk: bytes, h: Any = h) -> None:
                nonlocal size
                h.update(chunk)
                size += len(chunk)

            resp = ftp.retrbinary(f"RETR {name}", take, blocksize=1 << 16)
            assert resp.startswith("226"), resp
            assert size == BIG and h.hexdigest() == digest(big_data)
            ftp.quit()
        except (ftplib.Error, OSError):
            ftp.close()
            raise


# -- uploads: the last bytes are committed in the commit's hop ---------------------------------

STOR_SIZES = [0, 1, 4096, RECV_BUF - 1, RECV_BUF, RECV_BUF + 1, 2 * RECV_BUF, 2 * RECV_BUF + 1,
              BULK_AFTER + 1]  # fmt: skip


def _stor(raw: Ctl, name: str, data: bytes, *, eager: bool = False) -> None:
    sock = raw.passive()
    if eager:
        # The data is sent (and the connection closed) before the client reads the 150, so
        # the server mostly finds it waiting and fills its buffers to the byte. (No deadlock:
        # the server reads whether or not the client has read the 150.)
        raw.send(f"STOR {name}")
        with sock:
            sock.sendall(data)
        code, text = raw.reply()
    else:
        code, text = raw.cmd(f"STOR {name}")
        with sock:
            sock.sendall(data)
    assert code == 150, text
    code, text = raw.reply()
    assert code == 226, text


@pytest.mark.parametrize("eager", [False, True], ids=["after-150", "eager"])
@pytest.mark.parametrize("size", STOR_SIZES)
def test_stor_sizes(typed: Ctl, srv: Any, size: int, eager: bool) -> None:
    name = uniq(f"stor-{size}")
    data = os.urandom(size)
    _stor(typed, name, data, eager=eager)
    got = (srv.root / name).read_bytes()
    assert len(got) == size and got == data
    assert no_temp_files(srv.root)


def test_stor_replaces_existing_file_with_nothing(typed: Ctl, srv: Any) -> None:
    name = uniq("stor-empty")
    (srv.root / name).write_bytes(b"previous content")
    _stor(typed, name, b"")
    assert (srv.root / name).read_bytes() == b""
    assert no_temp_files(srv.root)


def test_stor_then_retr_same_session(typed: Ctl, srv: Any) -> None:
    """A small upload committed in one hop is complete for the very next command."""
    for i in range(20):
        name = uniq("again")
        data = os.urandom(100 + i * 997)
        _stor(typed, name, data)
        sock = typed.passive()
        typed.send(f"RETR {name}")
        assert [typed.reply()[0], typed.reply()[0]] == [150, 226]
        assert recv_all(sock) == data
        code, text = typed.cmd(f"SIZE {name}")
        assert code == 213 and int(text) == len(data)


@pytest.mark.parametrize(
    "sent,stored",
    [
        (b"line1\r\nline2\r\n\r\nlast", b"line1\nline2\n\nlast"),
        (b"a\rb\r", b"a\rb\r"),  # a lone CR is data, also at the very end
        (b"ends with crlf\r\n", b"ends with crlf\n"),
        (b"\r\n", b"\n"),
        (b"", b""),
    ],
    ids=["crlf", "lone-cr", "crlf-at-end", "only-crlf", "empty"],
)
def test_stor_type_a_converts_crlf(typed: Ctl, srv: Any, sent: bytes, stored: bytes) -> None:
    assert typed.code("TYPE A") == 200
    name = uniq("stor-text")
    _stor(typed, name, sent)
    assert (srv.root / name).read_bytes() == stored
    assert no_temp_files(srv.root)


@pytest.mark.parametrize("eager", [False, True], ids=["after-150", "eager"])
def test_stor_type_a_crlf_across_buffer_boundary(typed: Ctl, srv: Any, eager: bool) -> None:
    # CR as the last byte of one receive buffer, LF as the first of the next; and a tail.
    body = b"x" * (RECV_BUF - 1) + b"\r\n" + b"y" * 1000 + b"\r\n" + b"tail\r"
    assert typed.code("TYPE A") == 200
    name = uniq("stor-text-big")
    _stor(typed, name, body, eager=eager)
    assert (srv.root / name).read_bytes() == body.replace(b"\r\n", b"\n")
    assert no_temp_files(srv.root)


def test_stor_with_ftplib_in_both_types(srv: Any) -> None:
    ftp = ftp_connect(srv)
    try:
        name = uniq("ftplib-bin")
        data = os.urandom(RECV_BUF + 1)
        assert ftp.storbinary(f"STOR {name}", io.BytesIO(data)).startswith("226")
        assert (srv.root / name).read_bytes() == data
        name = uniq("ftplib-text")
        # storlines sends every line with CRLF; the file gets LF.
        assert ftp.storlines(f"STOR {name}", io.BytesIO(b"one\ntwo\nthree\n")).startswith("226")
        assert (srv.root / name).read_bytes() == b"one\ntwo\nthree\n"
        ftp.quit()
    except (ftplib.Error, OSError):
        ftp.close()
        raise
