"""Data integrity where clients end abruptly or oddly (issue 17), against a real ftpd process.

- QUIT while an upload's data connection is open: ``221`` at once, the transfer runs to its end,
  its ``226`` follows if the control connection is still open, then the server closes (a client
  with file-like writes reads the QUIT reply before it closes the data connection).
- The control connection lost during an upload: committed whole if the data connection had
  reached EOF, else the previous file stays untouched and no temporary file is left.
- REST + STOR writes from the offset and keeps the rest of the file, atomic uploads on or off.
- Names that are not valid UTF-8 are listed, fetched, renamed and deleted by their escaped form,
  and no reply or listing carries invalid UTF-8 (strict clients such as ftplib).
"""

from __future__ import annotations

import io
import os
import re
import shutil
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
from integ_helpers import TIMEOUT, ftp_connect, uniq
from support.client import Ctl, abort_socket, recv_all
from support.env import missing
from support.waits import wait_until

from ftpd.fs.memfs import never_blocks

OLD = b"the previous version\n" * 100


def _temp_files(root: Path) -> list[str]:
    return [p.name for p in root.rglob("*") if p.name.startswith(".ftpd-upload-")]


@pytest.fixture(scope="module", params=[True, False], ids=["atomic", "in-place"])
def asrv(request: pytest.FixtureRequest, module_factory: Any) -> Any:
    """A server with ``atomic_uploads`` on, then off."""
    return module_factory(atomic_uploads=request.param)


# ------------------------------------------------------------------ REST + STOR (item 6)


def test_rest_stor_writes_from_the_offset_and_keeps_the_tail(asrv: Any) -> None:
    """The issue's case: REST 4 + STOR of one byte over a 10-byte file leaves 10 bytes (vsftpd,
    ProFTPD, pyftpdlib); a plain STOR, and STOR after REST 0, still replace the file."""
    name = uniq("rest")
    (asrv.root / name).write_bytes(b"0123456789")
    ftp = ftp_connect(asrv)
    ftp.voidcmd("TYPE I")
    ftp.storbinary(f"STOR {name}", io.BytesIO(b"X"), rest=4)
    assert (asrv.root / name).read_bytes() == b"0123X56789"
    ftp.storbinary(f"STOR {name}", io.BytesIO(b"abcdefgh"), rest=8)  # over the end: it grows
    assert (asrv.root / name).read_bytes() == b"0123X567abcdefgh"
    assert ftp.size(name) == 16
    ftp.storbinary(f"STOR {name}", io.BytesIO(b"new"), rest=0)  # REST 0 (FileZilla): a plain STOR
    assert (asrv.root / name).read_bytes() == b"new"
    ftp.quit()
    assert _temp_files(asrv.root) == []


# ------------------------------------------------------------------ QUIT during a transfer (item 1)


def test_quit_while_a_file_like_writer_holds_its_data_connection(srv: Any) -> None:
    """A client library with file-like writes sends QUIT with the STOR's data connection still
    open and closes that connection only once it has read the QUIT reply. The 221 comes at once,
    the upload still completes (the control connection is gone by then), whole."""
    name = uniq("quit-writer")
    (srv.root / name).write_bytes(OLD)
    data = os.urandom(3 * 1024 * 1024 + 5)
    ftp = ftp_connect(srv)
    ftp.voidcmd("TYPE I")
    conn = ftp.transfercmd(f"STOR {name}")
    conn.sendall(data[: len(data) // 2])
    assert ftp.quit().startswith("221")  # waited for the transfer before: a deadlock
    conn.sendall(data[len(data) // 2 :])
    conn.close()
    assert wait_until(lambda: (srv.root / name).read_bytes() == data, 10)
    assert wait_until(lambda: _temp_files(srv.root) == [], 5), _temp_files(srv.root)


def test_quit_during_upload_then_the_transfer_reply_then_close(srv: Any) -> None:
    """A client that waits for the transfer's reply gets it too: 221 at once, 226 when the data
    connection ends, then the server closes."""
    name = uniq("quit-226")
    data = os.urandom(200_000)
    raw = Ctl(srv.host, srv.port).login(srv.user, srv.password)
    assert raw.code("TYPE I") == 200
    d = raw.passive()
    assert raw.code(f"STOR {name}") == 150
    d.sendall(data)
    assert raw.cmd("QUIT")[0] == 221  # at once, the data connection still open
    d.close()
    assert raw.reply()[0] == 226
    assert raw.closed()
    assert (srv.root / name).read_bytes() == data


@pytest.mark.parametrize("reset", [False, True], ids=["close", "reset"])
def test_a_transfer_left_after_quit_still_times_out(factory: Any, reset: bool) -> None:
    """After QUIT and the control connection's close (a FIN, half-open for the reply; or a reset,
    gone), a stalled transfer is still ended after ``data_timeout`` (no upload hangs on for
    ever): the previous file stays, no temporary file is left, the data connection is closed."""
    srv = factory(data_timeout=2)
    (srv.root / "f.bin").write_bytes(OLD)
    raw = Ctl(srv.host, srv.port).login(srv.user, srv.password)
    assert raw.code("TYPE I") == 200
    d = raw.passive()
    assert raw.code("STOR f.bin") == 150
    d.sendall(b"part of it")
    assert raw.cmd("QUIT")[0] == 221
    if reset:
        abort_socket(raw.sock)
    else:
        raw.close()
    d.settimeout(15)
    try:
        assert recv_all(d) == b""  # closed by the server once the transfer timed out
    except ConnectionResetError:
        pass
    assert wait_until(lambda: _temp_files(srv.root) == [], 5), _temp_files(srv.root)
    assert (srv.root / "f.bin").read_bytes() == OLD
    if reset:  # the session is gone: the transfer's own watch ended it
        assert "data timeout after QUIT" in srv.log()


def test_quit_during_download(srv: Any) -> None:
    """The same order for a download: 221 at once, the data runs to its end, 226, close."""
    name = uniq("quit-retr")
    data = os.urandom(8 * 1024 * 1024)  # more than the socket buffers hold
    (srv.root / name).write_bytes(data)
    raw = Ctl(srv.host, srv.port).login(srv.user, srv.password)
    assert raw.code("TYPE I") == 200
    d = raw.passive()
    assert raw.code(f"RETR {name}") == 150
    assert raw.cmd("QUIT")[0] == 221  # we have read no data yet
    assert recv_all(d) == data
    assert raw.reply()[0] == 226
    assert raw.closed()


# ------------------------------------------------------------------ control connection lost (item 2)


@pytest.mark.parametrize("size", [3 * 1024 * 1024, 12 * 1024 * 1024], ids=["loop", "bulk-thread"])
def test_upload_that_reached_eof_is_committed_whatever_the_control_connection_does(
    asrv: Any, size: int
) -> None:
    """The client sends everything, closes the data connection (EOF), then its control connection
    goes at once (reset, as a client that exits does). The upload is whole on disk: the EOF came
    first, whatever order the server notices the two in."""
    for attempt in range(3):  # both orders of arrival, and the bulk-thread path for the large one
        name = uniq("eof-then-lost")
        (asrv.root / name).write_bytes(OLD)
        data = os.urandom(size)
        raw = Ctl(asrv.host, asrv.port).login(asrv.user, asrv.password)
        assert raw.code("TYPE I") == 200
        d = raw.passive()
        assert raw.code(f"STOR {name}") == 150
        d.sendall(data)
        d.shutdown(socket.SHUT_WR)  # EOF
        abort_socket(raw.sock)  # then the control connection, with a reset
        assert wait_until(lambda p=asrv.root / name, b=data: p.read_bytes() == b, 10), attempt
        d.close()
    assert wait_until(lambda: _temp_files(asrv.root) == [], 5), _temp_files(asrv.root)


@pytest.mark.parametrize("size", [300_000, 8 * 1024 * 1024], ids=["small", "large"])
def test_upload_cut_before_eof_leaves_the_previous_file(srv: Any, size: int) -> None:
    """The control connection goes (reset) while the data connection is still open, no EOF yet:
    the upload is abandoned, the previous file stays as it was, no temporary file is left, and
    the server closes the data connection. Large: a bulk thread is blocked reading it."""
    name = uniq("lost-before-eof")
    (srv.root / name).write_bytes(OLD)
    raw = Ctl(srv.host, srv.port).login(srv.user, srv.password)
    assert raw.code("TYPE I") == 200
    d = raw.passive()
    assert raw.code(f"STOR {name}") == 150
    d.sendall(os.urandom(size))
    abort_socket(raw.sock)
    d.settimeout(TIMEOUT)
    try:
        assert recv_all(d) == b""  # the server closed it
    except ConnectionResetError:
        pass
    assert wait_until(lambda: _temp_files(srv.root) == [], 5), _temp_files(srv.root)
    assert (srv.root / name).read_bytes() == OLD


def test_data_connection_reset_before_eof_leaves_the_previous_file(srv: Any) -> None:
    """The data connection itself is cut (reset): 426, the previous file intact, no debris."""
    name = uniq("reset-data")
    (srv.root / name).write_bytes(OLD)
    raw = Ctl(srv.host, srv.port).login(srv.user, srv.password)
    assert raw.code("TYPE I") == 200
    d = raw.passive()
    assert raw.code(f"STOR {name}") == 150
    d.sendall(os.urandom(300_000))
    abort_socket(d)
    assert raw.reply()[0] == 426
    assert raw.code("NOOP") == 200
    assert (srv.root / name).read_bytes() == OLD
    assert _temp_files(srv.root) == []
    raw.close()


# ------------------------------------------------------------------ names not in UTF-8 (item 4)

ESC = "\ufffd"


def test_non_utf8_names_with_a_strict_utf8_client(srv: Any) -> None:
    """ftplib decodes strictly as UTF-8: a directory holding a Latin-1 name used to fail its whole
    LIST, NLST and MLSD with UnicodeDecodeError. Now the name is shown escaped (U+FFFD and the
    byte's hex) and that form reaches the file for RETR, SIZE, RNFR/RNTO, DELE, MKD, CWD, RMD."""
    d = uniq("latin1")
    base = srv.root / d
    base.mkdir()
    raw = os.fsencode(base) + b"/caf\xe9 \xff.bin"
    with open(raw, "wb") as f:
        f.write(b"latin-1 name")
    (base / "plain.txt").write_bytes(b"plain")
    shown = f"caf{ESC}E9 {ESC}FF.bin"
    ftp = ftp_connect(srv)  # encoding="utf-8", errors strict
    ftp.cwd(d)
    assert sorted(ftp.nlst()) == sorted([shown, "plain.txt"])
    lines: list[str] = []
    ftp.retrlines("LIST", lines.append)
    assert any(line.endswith(" " + shown) for line in lines), lines
    assert {name for name, _ in ftp.mlsd()} == {shown, "plain.txt"}
    status = ftp.sendcmd("STAT .")
    assert shown in status
    got = bytearray()
    ftp.retrbinary(f"RETR {shown}", got.extend)
    assert bytes(got) == b"latin-1 name"
    assert ftp.size(shown) == len(b"latin-1 name")
    # Rename to another non-UTF-8 name, by its escaped form: the bytes land on disk.
    ftp.rename(shown, f"new{ESC}E8.bin")
    assert os.path.exists(os.fsencode(base) + b"/new\xe8.bin")
    assert not os.path.exists(raw)
    ftp.delete(f"new{ESC}E8.bin")
    assert not os.path.exists(os.fsencode(base) + b"/new\xe8.bin")
    # A directory: MKD by the escaped form, CWD into it, PWD shows it escaped.
    assert ftp.mkd(f"r{ESC}E9p") == f"/{d}/r{ESC}E9p"
    assert os.path.isdir(os.fsencode(base) + b"/r\xe9p")
    ftp.cwd(f"r{ESC}E9p")
    assert ftp.pwd() == f"/{d}/r{ESC}E9p"
    ftp.cwd("..")
    ftp.rmd(f"r{ESC}E9p")
    assert sorted(os.listdir(base)) == ["plain.txt"]
    ftp.quit()


# ------------------------------------------------------------------ fsync_uploads (item 3)


def _strace() -> str:
    """strace's path; skip without it (fail under FTPD_REQUIRE_CLIENTS, as in CI)."""
    path = shutil.which("strace")
    if path is not None:
        return path
    msg = "strace is not installed (apt-get install -y strace)"
    if os.environ.get("FTPD_REQUIRE_CLIENTS", "").strip().lower() not in ("", "0", "no", "false"):
        pytest.fail(f"{msg}; FTPD_REQUIRE_CLIENTS is set, so it is required", pytrace=False)
    pytest.skip(msg)


def _tracer(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("TracerPid:"):
                return int(line.split()[1])
    return 0


_CALL = re.compile(r"^(\d+)\s+(fdatasync|fsync|rename\w*)\((.*)\)\s+=\s+(-?\d+)")


@pytest.mark.parametrize("fsync", [True, False], ids=["fsync", "no-fsync"])
@pytest.mark.parametrize("size", [1000, 8 * 1024 * 1024], ids=["small", "large"])
def test_stor_is_on_disk_before_its_226(
    factory: Any, tmp_path: Path, fsync: bool, size: int
) -> None:
    """A running server, traced: the upload's fdatasync, then the rename, then the directory's
    fsync, all in an IO thread (never the event loop's), before the 226 reaches the client.
    With ``fsync_uploads = false`` neither sync happens."""
    strace = _strace()
    srv = factory(fsync_uploads=fsync)
    (srv.root / "f.bin").write_bytes(OLD)
    out = tmp_path / "strace.txt"
    tracer = subprocess.Popen(
        [
            strace,
            "-f",
            "-qq",
            "-e",
            "trace=fdatasync,fsync,rename,renameat,renameat2",
            "-o",
            str(out),
            "-p",
            str(srv.pid),
        ],
        stderr=subprocess.PIPE,
    )
    try:
        if not wait_until(lambda: _tracer(srv.pid) == tracer.pid or tracer.poll() is not None, 10):
            pytest.fail("strace did not attach")
        if tracer.poll() is not None:  # e.g. ptrace forbidden in this container
            err = tracer.stderr.read().decode() if tracer.stderr else ""
            missing(f"strace cannot attach here: {err.strip()}")
        data = os.urandom(size)
        ftp = ftp_connect(srv)
        assert ftp.storbinary("STOR f.bin", io.BytesIO(data)).startswith("226")
        ftp.quit()
    finally:
        tracer.send_signal(signal.SIGINT)  # detaches and flushes its output
        tracer.wait(10)
    assert (srv.root / "f.bin").read_bytes() == data
    calls = [m.groups() for m in map(_CALL.match, out.read_text().splitlines()) if m]
    names = [c[1] for c in calls]
    renames = [i for i, c in enumerate(calls) if c[1].startswith("rename") and '"f.bin"' in c[2]]
    assert len(renames) == 1, calls
    if not fsync:
        assert "fdatasync" not in names and "fsync" not in names, calls
        return
    r = renames[0]
    assert "fdatasync" in names[:r], calls  # the data before the rename
    assert "fsync" in names[r + 1 :], calls  # the directory after it
    loop_tid = str(srv.pid)
    synced = [c[0] for c in calls if c[1] in ("fdatasync", "fsync")]
    if never_blocks(str(srv.root)):
        # tmpfs without swap (memfs.py): every call runs on the loop, and fsync is a no-op there.
        assert all(tid == loop_tid for tid in synced), calls
    else:
        assert all(tid != loop_tid for tid in synced), calls  # the disk's waits: in the threads
    assert all(c[3] == "0" for c in calls), calls
