"""Edges of the protocol core that a mutation run found unchecked (docs/TESTING.md), driven
through the public session interface with the fakes of test_proto_session."""

from __future__ import annotations

import errno

from test_proto_session import Drive, body

from ftpd.proto.errors import reply_for_oserror
from ftpd.proto.requests import Sleep, Transfer
from ftpd.proto.session import SessionSettings


def test_oserror_without_errno_is_a_local_error() -> None:
    r = reply_for_oserror(OSError("no errno"))
    assert (r.code, r.text) == (451, "Local error in processing.")
    r = reply_for_oserror(OSError(errno.EPERM, "x"))
    assert (r.code, r.text) == (550, "Operation not permitted.")


def test_a_new_transfer_has_moved_nothing() -> None:
    """The IO layer counts bytes and flags on top of these: an xferlog line of a transfer that
    never connected says 0 bytes."""
    t = Transfer("RETR", "/f")
    assert (t.bytes, t.started, t.tls, t.connected, t.held) == (0, 0.0, False, False, None)


def test_a_login_delay_under_a_second_is_still_a_sleep() -> None:
    d = Drive(settings=SessionSettings(login_fail_delay=0.5))
    d("USER user")
    r = d("PASS bad")
    (sleep,) = r.of(Sleep)
    assert sleep.seconds == 0.5 and r.code == 530


def test_listing_escapes_names_that_are_not_utf8() -> None:
    """A Latin-1 name read from disk (a surrogate-escaped str) goes out as valid UTF-8: the
    undecodable byte as U+FFFD and its hex (proto/names.py), never the raw byte."""
    d = Drive().login()
    d.fs.files["/caf\udce9.txt"] = b"x"
    assert d("PASV").code == 227
    run = d("NLST")
    assert body(run.transfer) == "caf\ufffdE9.txt\r\n".encode()  # the streamed listing's bytes
    assert [r.code for r in d.finish(run)] == [150, 226]
