"""File, listing and transfer handlers of the sans-IO session (``ftpd.proto.handlers.files``,
``lists`` and ``transfers``), driven with the fakes of ``test_proto_session``: the requests they
yield, their replies, and the session state around a transfer (no sockets, no event loop).
"""

from __future__ import annotations

import errno
from typing import Any

import pytest
from test_proto_session import Drive, body

from ftpd.fs.base import Capabilities
from ftpd.proto.errors import BadSequence, CannotOpenData
from ftpd.proto.handlers.transfers import begin_transfer
from ftpd.proto.replies import Reply
from ftpd.proto.requests import (
    AbortTransfer,
    OpenRead,
    Outcome,
    StartTransfer,
    Transfer,
    TransferKind,
)
from ftpd.proto.session import SessionSettings
from ftpd.proto.state import Data


@pytest.fixture
def d() -> Drive:
    return Drive().login()


# ---------------------------------------------------------------------------------- transfers
def test_transfer_without_data_setup_is_425(d: Drive) -> None:
    d.fs.files["/f"] = b"x"
    for cmd in ("RETR f", "STOR g", "APPE g", "STOU", "LIST", "NLST", "MLSD"):
        r = d(cmd)
        assert r.code == 425 and not r.of(StartTransfer), cmd


def test_retr(d: Drive) -> None:
    d.fs.files["/dir/f.bin"] = b"0123456789"
    d.fs.dirs.add("/dir")
    d("TYPE I")
    d("PASV")
    r = d("RETR /dir/f.bin")
    assert r.of(OpenRead) == [OpenRead("/dir/f.bin", 0)]
    # The transfer consumed the passive setup (one per transfer) and is the running one.
    assert r.replies == [] and d.s.data is Data.NONE and d.s.transfer is r.transfer
    t = r.transfer
    assert (t.kind, t.vpath, t.offset, t.ascii, t.name) == ("RETR", "/dir/f.bin", 0, False, "f.bin")
    assert t.writer is None and "RETR" in repr(t)
    replies = d.finish(r)
    assert "(10 bytes)" in replies[0].text and "BINARY" in replies[0].text
    assert [x.code for x in replies] == [150, 226]
    assert d.s.data is Data.NONE and d.s.transfer is None


def test_retr_missing_file_is_550_and_keeps_listener(d: Drive) -> None:
    d("PASV")
    assert d("RETR nothere").code == 550
    assert d("RETR /").code == 550  # a directory
    assert d.s.data is Data.PASSIVE


def test_rest_applies_to_next_transfer_only(d: Drive) -> None:
    d.fs.files["/f"] = b"0123456789"
    d("TYPE I")
    d("REST 4")
    d("PASV")
    r = d("RETR f")
    assert r.transfer.offset == 4 and r.transfer.reader.pos == 4
    d.finish(r)
    assert d.s.rest == 0
    d("PASV")
    assert d("RETR f").transfer.offset == 0


def test_stor_and_appe(d: Drive) -> None:
    d("PASV")
    r = d("STOR new.txt")
    t = r.transfer
    assert t.kind == "STOR" and t.reader is None and t.ascii and t.writer.path == "/new.txt"
    assert not t.writer.append
    assert [x.code for x in d.finish(r)] == [150, 226]
    d("PASV")
    r = d("APPE log")
    assert r.transfer.writer.append and r.transfer.kind == "APPE"
    assert "ASCII" in d.finish(r)[0].text
    d.fs.files["/log"] = b"0123456789"
    d("TYPE I")
    d("REST 5")
    d("PASV")
    r = d("APPE log")  # REST + APPE resumes at the offset
    assert (r.transfer.writer.offset, r.transfer.writer.append) == (5, False)
    d.finish(r)
    d("REST 7")
    d("PASV")
    r = d("STOR log")
    assert r.transfer.writer.offset == 7
    d.finish(r)


def test_rest_beyond_end_of_file_is_554(d: Drive) -> None:
    d.fs.files["/f"] = b"0123456789"
    d("TYPE I")
    d("PASV")
    for cmd in ("RETR f", "STOR f", "APPE f"):
        d("REST 11")
        r = d(cmd)
        assert r.code == 554, cmd  # RFC 3659 §5.3: reported on the transfer command
        assert d.s.rest == 0 and d.s.data is Data.PASSIVE
    d("REST 10")
    d.finish(d("RETR f"))  # exactly at the end is fine


def test_stor_root_and_missing_dir(d: Drive) -> None:
    d("PASV")
    assert d("STOR /").code == 553
    assert d("STOR /nodir/x").code == 550
    assert d.s.data is Data.PASSIVE


def test_stou(d: Drive) -> None:
    d("PASV")
    r = d("STOU")
    t = r.transfer
    assert t.kind == "STOU" and t.vpath == "/ftpd.0" and t.name == "ftpd.0"
    assert d.finish(r)[0] == Reply(150, "FILE: ftpd.0")
    d.fs.dirs.add("/d")
    d("PASV")
    r = d("STOU /d/report")
    assert r.transfer.vpath == "/d/report.0"
    d.finish(r)
    d("TYPE I")
    d("REST 3")
    d("PASV")
    assert d("STOU").code == 550 and d.s.rest == 0


@pytest.mark.parametrize(
    ("outcome", "code"),
    [
        (Outcome.OK, 226),
        (Outcome.ABORTED, 426),
        (Outcome.LOST, 426),
        (Outcome.NO_CONNECTION, 425),
        (Outcome.TIMEOUT, 426),
        (Outcome.TLS_NO_REUSE, 522),
        (Outcome.TLS_FAILED, 522),
        (Outcome.LOCAL_ERROR, 451),
    ],
)
def test_transfer_outcomes(d: Drive, outcome: Outcome, code: int) -> None:
    d.fs.files["/f"] = b"abc"
    d("PASV")
    r = d("RETR f")
    t = r.transfer
    assert [x.code for x in d.s.transfer_finished(t, outcome)] == [code]
    assert d.s.data is Data.NONE


def test_transfer_local_error_uses_errno_table(d: Drive) -> None:
    d("PASV")
    r = d("STOR f")
    err = OSError(errno.ENOSPC, "full")
    assert d.finish(r, Outcome.LOCAL_ERROR, err)[-1].code == 452
    d("PASV")
    r = d("STOR f")
    assert d.finish(r, Outcome.LOCAL_ERROR, OSError(errno.EDQUOT, "q"))[-1].code == 552


def test_commands_during_a_transfer(d: Drive) -> None:
    d.fs.files["/f"] = b"abc"
    d("PASV")
    r = d("RETR f")
    t = r.transfer
    for cmd in ("ABOR", "STAT", "NOOP", "QUIT", "abor"):
        assert d.s.allowed_during_transfer(cmd)
    for cmd in ("RETR f", "LIST", "PASV", "USER x", "", "XYZ"):
        assert not d.s.allowed_during_transfer(cmd)
    assert "Data connection open: RETR /f" in d("STAT").text
    assert d("PASV").code == 503
    assert d("PORT 127,0,0,1,240,0").code == 503
    assert d("RETR f").code == 503  # the IO layer queues it; the session would refuse it anyway
    # One rule in the generic check: whatever is not answered during a transfer is 503 meanwhile.
    for cmd in ("TYPE I", "USER x", "REIN", "EPSV ALL", "CWD /", "HELP", "FEAT", "SITE HELP"):
        r2 = d(cmd)
        assert r2.replies == [Reply(503, "A transfer is in progress.")] and not r2.requests, cmd
    assert d.s.ascii and not d.s.epsv_all and d.s.logged_in
    with pytest.raises(BadSequence):
        begin_transfer(d.s, Transfer(TransferKind.RETR, "/f"))
    assert d("NOOP").code == 200
    # ABOR while running: ask the IO layer to abort; it sends the 426, then ABOR answers 226.
    r = d("ABOR")
    assert r.of(AbortTransfer) and r.code == 226
    assert [x.code for x in d.s.transfer_finished(t, Outcome.ABORTED)] == [426]


def test_quit_during_transfer_answers_at_once_and_closes_after_it(d: Drive) -> None:
    # Issue 17: 221 at once (file-like writers wait for it), the transfer's 226 later, then close.
    d.fs.files["/f"] = b"abc"
    d("PASV")
    r = d("RETR f")
    assert d("QUIT").code == 221 and not d.s.closing and d.s.quit_pending
    assert d("NOOP").replies == []  # nothing more is taken after QUIT
    assert [x.code for x in d.finish(r)] == [150, 226]
    assert d.s.closing


def test_begin_transfer_needs_data_setup(d: Drive) -> None:
    with pytest.raises(CannotOpenData) as exc:
        begin_transfer(d.s, Transfer(TransferKind.RETR, "/f"))
    assert exc.value.code == 425 and d.s.data is Data.NONE and d.s.transfer is None


def test_transfer_end_without_transfer_is_bad_sequence(d: Drive) -> None:
    t = Transfer(TransferKind.RETR, "/f")
    with pytest.raises(BadSequence) as exc:
        d.s.transfer_finished(t, Outcome.OK)
    assert exc.value.code == 503


def test_active_transfer_flow(d: Drive) -> None:
    d.fs.files["/f"] = b"abc"
    d("PORT 127,0,0,1,240,0")
    r = d("RETR f")
    assert d.s.transfer is r.transfer and d.s.active_addr == ("127.0.0.1", 61440)
    d.finish(r)
    assert d.s.data is Data.NONE and d.s.active_addr is None
    assert d("RETR f").code == 425  # the active address was good for one transfer


# ---------------------------------------------------------------------------------- listings
def test_list(d: Drive) -> None:
    d.fs.files.update({"/b.txt": b"12345", "/a.txt": b""})
    d.fs.dirs.add("/sub")
    d("PASV")
    r = d("LIST")
    t = r.transfer
    assert t.kind == "LIST"
    rows = body(t).decode().split("\r\n")
    assert rows[-1] == "" and len(rows) == 4
    assert [row.rsplit(" ", 1)[1] for row in rows[:-1]] == ["a.txt", "b.txt", "sub"]
    assert rows[2].startswith("drwxr-xr-x")
    assert d.finish(r)[-1] == Reply(226, "Directory send OK.")


def test_list_flags_and_file(d: Drive) -> None:
    d.fs.files["/x y"] = b"1"
    for arg in ("-la", "-la /", "-alF -R /"):
        d("PASV")
        r = d(f"LIST {arg}")
        assert r.transfer.vpath == "/", arg
        d.finish(r)
    d("PASV")
    r = d("LIST x y")  # a single file: its own line
    assert body(r.transfer).decode().rstrip("\r\n").endswith(" x y")
    d.finish(r)
    d("PASV")
    assert d("LIST nothere").code == 550


def test_nlst(d: Drive) -> None:
    d.fs.files.update({"/d/b": b"", "/d/a": b""})
    d.fs.dirs.add("/d")
    d("PASV")
    r = d("NLST -CF d")
    assert body(r.transfer) == b"a\r\nb\r\n"
    d.finish(r)
    d("PASV")
    r = d("NLST d/a")  # a file: the name as given (vsftpd)
    assert body(r.transfer) == b"d/a\r\n"
    d.finish(r)
    d("PASV")
    r = d("NLST -l d/a")  # ls flags are not part of the name
    assert body(r.transfer) == b"d/a\r\n"
    d.finish(r)


def test_mlsd(d: Drive) -> None:
    d.fs.files["/d/f"] = b"abc"
    d.fs.dirs.update({"/d", "/d/e"})
    d("PASV")
    r = d("MLSD d")
    rows = body(r.transfer).decode().split("\r\n")[:-1]
    assert rows[0].startswith("type=dir;") and rows[0].endswith("; e")
    assert rows[1].startswith("type=file;size=3;modify=20231114221320;") and rows[1].endswith("; f")
    d.finish(r)
    d("PASV")
    assert d("MLSD d/f").code == 501  # RFC 3659 §7.2.1
    assert d.s.data is Data.PASSIVE


def test_mlst(d: Drive) -> None:
    d.fs.files["/d/f g"] = b"abc"
    d.fs.dirs.add("/d")
    d("CWD /d")
    r = d("MLST f g")
    assert r.code == 250
    lines = r.replies[0].lines
    assert lines[1] == "type=file;size=3;modify=20231114221320;perm=rwadf;unix.mode=0644; /d/f g"
    wire = r.replies[0].encode().decode().split("\r\n")
    assert wire[1].startswith(" type=")  # RFC 3659 §7.2: one leading space
    assert d("MLST").replies[0].lines[1].endswith(" /d")
    assert d("MLST nothere").code == 550


def test_listing_names_with_crlf_cannot_inject(d: Drive) -> None:
    d.fs.files["/evil\r\n226 done"] = b""
    for cmd in ("LIST", "NLST", "MLSD"):
        d("PASV")
        r = d(cmd)
        payload = body(r.transfer)
        assert payload.count(b"\r\n") == 1 and b"\n226" not in payload, cmd
        d.finish(r)


# ---------------------------------------------------------------------------------- files
def test_cwd_cdup_pwd(d: Drive) -> None:
    d.fs.dirs.update({"/a", "/a/b c"})
    d.fs.files["/a/f"] = b""
    assert d("PWD").replies == [Reply(257, '"/" is the current directory.')]
    assert d("CWD a/b c").code == 250 and d.s.cwd == "/a/b c"
    assert d("XPWD").text.startswith('"/a/b c"')
    assert d("CDUP").code == 250 and d.s.cwd == "/a"
    assert d("XCUP").code == 250 and d.s.cwd == "/"
    assert d("CDUP").code == 250 and d.s.cwd == "/"  # at the top already
    assert d("CWD ../../..").code == 250 and d.s.cwd == "/"
    assert d("XCWD /a").code == 250
    assert d("CWD f").code == 550 and d.s.cwd == "/a"  # not a directory
    assert d("CWD nothere").code == 550
    assert d("CWD").code == 250 and d.s.cwd == "/"  # no argument: home (pyftpdlib, Pure-FTPd)


def test_pwd_quotes_doubled(d: Drive) -> None:
    d.fs.dirs.add('/say "hi"')
    d('CWD say "hi"')
    assert d("PWD").replies == [Reply(257, '"/say ""hi""" is the current directory.')]


def test_mkd_rmd(d: Drive) -> None:
    r = d('MKD new "q"')
    assert r.replies == [Reply(257, '"/new ""q""" directory created.')]
    assert d('XMKD new "q"').code == 550  # exists
    assert d("MKD /").code == 550
    assert d("MKD no/such/parent").code == 550
    d('CWD new "q"')
    assert d("MKD inner").code == 257 and '/new "q"/inner' in d.fs.dirs
    assert d('RMD /new "q"').code == 550  # not empty
    assert d("XRMD inner").code == 250
    assert d('RMD /new "q"').code == 250
    assert d.s.cwd == "/"  # the current directory was removed: back to its parent
    assert d("RMD /").code == 550
    assert d("RMD nothere").code == 550


def test_dele(d: Drive) -> None:
    d.fs.files["/f"] = b""
    d.fs.dirs.add("/d")
    assert d("DELE f").code == 250 and "/f" not in d.fs.files
    assert d("DELE f").code == 550
    assert d("DELE d").code == 550
    assert d("DELE /").code == 550


def test_rename(d: Drive) -> None:
    d.fs.files["/a"] = b"1"
    assert d("RNFR a").code == 350 and d.s.rename_from == "/a"
    assert d("RNTO b c").code == 250 and d.fs.files == {"/b c": b"1"}
    assert d.s.rename_from is None
    assert d("RNFR nothere").code == 550 and d.s.rename_from is None
    assert d("RNFR /").code == 550
    d("RNFR b c")
    assert d("RNTO /").code == 553


def test_size_mdtm_mfmt(d: Drive) -> None:
    d.fs.files["/f"] = b"12345"
    d.fs.dirs.add("/d")
    # TYPE A too: the stored size (ftplib's size() sends no TYPE I; vsftpd answers it).
    assert d("SIZE f").replies == [Reply(213, "5")]
    d("TYPE I")
    assert d("SIZE f").replies == [Reply(213, "5")]
    assert d("SIZE d").code == 550 and d("SIZE x").code == 550
    assert d("MDTM f").replies == [Reply(213, "20231114221320")]
    assert d("MDTM d").code == 550
    r = d("MFMT 20200102030405 f")
    assert r.replies == [Reply(213, "Modify=20200102030405; /f")]
    assert d.fs.mtimes["/f"] == 1577934245
    assert d("MDTM f").text == "20200102030405"
    assert d("MFMT 20201302030405 f").code == 501
    assert d("MFMT 2020 f").code == 501
    assert d("MFMT 20200102030405").code == 501
    assert d("MFMT 20200102030405 nothere").code == 550


def test_site(d: Drive) -> None:
    r = d("SITE HELP")
    assert r.code == 214 and "CHMOD" in r.text
    assert Drive()("SITE HELP").code == 214  # no login needed
    assert Drive()("SITE CHMOD 644 f").code == 530
    d.fs.files["/f"] = b""
    assert d("SITE CHMOD 755 f").code == 200 and d.fs.modes["/f"] == 0o755
    assert d("site chmod 600 /f").code == 200
    for bad in (
        "SITE CHMOD",
        "SITE CHMOD 999 f",
        "SITE CHMOD 644",
        "SITE CHMOD 1000 f",
        "SITE NOPE",
        "SITE CHMOD x f",
    ):
        assert d(bad).code == 501, bad
    assert d("SITE CHMOD 644 nothere").code == 550


def test_path_errors(d: Drive) -> None:
    assert d("RETR " + "x" * 256).code == 553  # a name over NAME_MAX
    assert d("CWD " + "a/" * 2100).code == 553  # over MAX_PATH
    assert d("CWD a\0b").code == 550


@pytest.mark.parametrize(
    ("err", "code"),
    [
        (errno.ENOENT, 550),
        (errno.EACCES, 550),
        (errno.ENOTDIR, 550),
        (errno.EISDIR, 550),
        (errno.ELOOP, 550),
        (errno.EEXIST, 550),
        (errno.ENOSPC, 452),
        (errno.EDQUOT, 552),
        (errno.EIO, 451),
        (errno.ENAMETOOLONG, 553),
    ],
)
def test_errno_table(d: Drive, err: int, code: int) -> None:
    def fail(*a: Any) -> None:
        raise OSError(err, "/real/secret/path")

    d.fs.mkdir = fail  # type: ignore[method-assign]
    r = d("MKD x")
    assert r.code == code
    assert "/real" not in r.text and "secret" not in r.text


# ---------------------------------------------------------------------------------- storage limits
def test_what_the_storage_cannot_do_is_refused_before_any_io() -> None:
    caps = Capabilities(resume_write=False, set_mtime=False, chmod=False)
    d = Drive(settings=SessionSettings(login_fail_delay=0, capabilities=caps)).login()
    d.fs.files["/f"] = b"abc"
    d("TYPE I")
    d("PASV")
    assert d("MFMT 20200101000000 f").code == 502
    assert d("SITE CHMOD 644 f").code == 504
    assert d("APPE f").code == 504
    assert d("REST 2").code == 350
    assert d("STOR f").code == 504 and d.s.rest == 0  # the marker is used up either way
    assert d.fs.calls == [] and d.s.data is Data.PASSIVE  # the listener is still there for STOR
    assert "MFMT" not in d("FEAT").text
    r = d("MLSD")
    assert b"perm=rwdf;" in body(r.transfer)  # no "a"


def test_forget_data_setup_after_a_data_timeout(d: Drive) -> None:
    d("PASV")
    d.s.forget_data_setup()
    assert d.s.data is Data.NONE
    assert d("RETR f").code == 425
    d("PORT 127,0,0,1,240,0")
    d.s.forget_data_setup()
    assert d.s.data is Data.NONE and d.s.active_addr is None
    d.s.forget_data_setup()  # nothing set up: nothing to forget
    assert d.s.data is Data.NONE
