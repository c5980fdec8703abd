"""Python's ftplib against ftpd: the file workflow with PASV and PORT on 127.0.0.1 and EPSV and EPRT
on ::1 (ftplib picks the extended commands on IPv6), and the client quirks seen in the field,
replayed command for command: FileZilla's and curl's AUTH probing before USER, lftp's pre-login
sequence with CLNT, ncftp's ``NLST -CF``, WinSCP's / basic-ftp's ``LIST -a``, rclone's MLSD + MDTM +
MFMT, ``OPTS UTF8 ON`` and names with spaces and UTF-8. Results are checked on the server's disk.
"""

from __future__ import annotations

import calendar
import ftplib
import io
from pathlib import Path
from typing import Any

import pytest

from .support import (
    NET_TIMEOUT,
    PAYLOAD,
    SMALL,
    SPACE_DIR,
    SPACE_NAME,
    UTF8_NAME,
    assert_absent,
    assert_dir,
    assert_file,
    listing_names,
    top_names,
    tree,
    upload_payload,
)

pytestmark = pytest.mark.interop


class RecordingFTP(ftplib.FTP):
    """ftplib.FTP that remembers every command line it sent."""

    def __init__(self) -> None:
        super().__init__(timeout=NET_TIMEOUT, encoding="utf-8")
        self.sent: list[str] = []

    def putcmd(self, line: str) -> None:
        self.sent.append(line)
        super().putcmd(line)

    def verbs(self) -> set[str]:
        return {line.split()[0].upper() for line in self.sent if line}


def connect(srv: Any, *, passive: bool = True) -> RecordingFTP:
    ftp = RecordingFTP()
    ftp.connect(srv.host, srv.port)
    ftp.set_pasv(passive)
    return ftp


def answer(ftp: ftplib.FTP, cmd: str) -> str:
    """The reply to ``cmd``, whatever its code (ftplib raises on 4xx/5xx)."""
    try:
        return ftp.sendcmd(cmd)
    except (ftplib.error_perm, ftplib.error_temp, ftplib.error_reply) as exc:
        return str(exc)


def retr(ftp: ftplib.FTP, path: str) -> bytes:
    buf = io.BytesIO()
    ftp.retrbinary(f"RETR {path}", buf.write)
    return buf.getvalue()


def list_lines(ftp: ftplib.FTP, cmd: str = "LIST") -> str:
    lines: list[str] = []
    ftp.retrlines(cmd, lines.append)
    return "\n".join(lines)


def workflow(srv: Any, passive: bool, data_cmd: str) -> None:
    root: Path = srv.root
    ftp = connect(srv, passive=passive)
    try:
        assert ftp.login(srv.user, srv.password).startswith("230")
        assert set(ftp.nlst()) == top_names(root)
        assert listing_names(list_lines(ftp)) == top_names(root)
        entries = {name: facts for name, facts in ftp.mlsd("docs")}
        assert {n for n, f in entries.items() if f["type"] in ("file", "dir")} == {"readme.txt"}
        assert entries["readme.txt"]["size"] == str(len(SMALL))

        assert retr(ftp, "hello.txt") == PAYLOAD

        assert ftp.mkd("made") == "/made"
        assert_dir(root, "made")
        up = upload_payload(data_cmd)
        ftp.storbinary("STOR made/new.bin", io.BytesIO(up))
        assert_file(root, "made/new.bin", up)
        assert ftp.size("made/new.bin") == len(up)

        ftp.rename("made/new.bin", "made/renamed.bin")
        assert_absent(root, "made/new.bin")
        assert_file(root, "made/renamed.bin", up)
        ftp.delete("docs/readme.txt")
        ftp.rmd("docs")
        assert_absent(root, "docs")

        ftp.cwd("made")
        assert ftp.pwd() == "/made"
        assert retr(ftp, "renamed.bin") == up
        ftp.quit()
    finally:
        ftp.close()
    assert data_cmd in ftp.verbs(), ftp.sent
    assert tree(root) == {"hello.txt", "made/", "made/renamed.bin"}


@pytest.mark.parametrize(("passive", "data_cmd"), [(True, "PASV"), (False, "PORT")])
def test_ftplib_workflow_ipv4(srv: Any, passive: bool, data_cmd: str) -> None:
    workflow(srv, passive, data_cmd)


@pytest.mark.parametrize(("passive", "data_cmd"), [(True, "EPSV"), (False, "EPRT")])
def test_ftplib_workflow_ipv6(srv6: Any, passive: bool, data_cmd: str) -> None:
    workflow(srv6, passive, data_cmd)


@pytest.mark.parametrize(
    "order",
    [("AUTH TLS", "AUTH SSL"), ("AUTH SSL", "AUTH TLS")],
    ids=["filezilla-tls-then-ssl", "curl-ssl-then-tls"],
)
def test_auth_probing_before_user_is_refused_without_dropping(
    srv: Any, order: tuple[str, str]
) -> None:
    """FileZilla tries AUTH TLS then AUTH SSL (curl the reverse) and carries on in plaintext only
    if both are refused with an error and the connection stays up (protocol-and-clients.md §3.1)."""
    ftp = connect(srv)
    try:
        for cmd in order:
            with pytest.raises(ftplib.error_perm) as info:  # 5xx; a 421 would be error_temp
                ftp.sendcmd(cmd)
            assert str(info.value)[:3] in {"500", "502", "504", "534"}, info.value
        assert ftp.login(srv.user, srv.password).startswith("230")
        assert set(ftp.nlst()) == top_names(srv.root)
        ftp.quit()
    finally:
        ftp.close()


def test_lftp_prelogin_sequence_with_clnt(srv: Any) -> None:
    """lftp's order before USER: FEAT, AUTH TLS, CLNT, OPTS UTF8 ON, HOST (CLNT only when FEAT
    offers it, so the real lftp does not send it here; FileZilla and ncftp send it too)."""
    ftp = connect(srv)
    try:
        feat = answer(ftp, "FEAT")
        assert feat.startswith("211"), feat
        assert " UTF8" in feat.splitlines() and " HOST" in feat.splitlines(), feat
        assert answer(ftp, "AUTH TLS")[0] == "5"
        assert answer(ftp, "CLNT lftp/4.9.2")[:3] == "200"
        assert answer(ftp, "OPTS UTF8 ON")[:3] == "200"
        assert answer(ftp, f"HOST {srv.host}")[:3] == "220"
        assert ftp.login(srv.user, srv.password).startswith("230")
        assert ftp.pwd() == "/"
        assert retr(ftp, "hello.txt") == PAYLOAD
        ftp.quit()
    finally:
        ftp.close()


def test_nlst_cf(srv: Any) -> None:
    """ncftp's ``NLST -CF``: ls flags, not a path; the names of the current directory."""
    ftp = connect(srv)
    try:
        ftp.login(srv.user, srv.password)
        assert {n.rstrip("/*@") for n in ftp.nlst("-CF")} == top_names(srv.root)
        ftp.cwd("docs")
        assert {n.rstrip("/*@") for n in ftp.nlst("-CF")} == {"readme.txt"}
        ftp.quit()
    finally:
        ftp.close()


def test_list_a(srv: Any) -> None:
    """WinSCP and basic-ftp send ``LIST -a``: the full listing, dot files included, never an empty
    reply or a 'no such file -a'."""
    (srv.root / ".hidden").write_bytes(b"x")
    ftp = connect(srv)
    try:
        ftp.login(srv.user, srv.password)
        assert listing_names(list_lines(ftp, "LIST -a")) == {".hidden", "hello.txt", "docs"}
        assert listing_names(list_lines(ftp, "LIST -a docs")) >= {"readme.txt"}
        ftp.quit()
    finally:
        ftp.close()


def test_mlsd_mdtm_mfmt_agree(srv: Any) -> None:
    """What rclone sync relies on: MFMT sets the mtime on disk, MDTM and MLSD's ``modify`` report
    it back, all in UTC (RFC 3659 §2.3); an invalid time is a 501 (draft-somers-ftp-mfxx)."""
    stamp = "20200102030405"
    epoch = calendar.timegm((2020, 1, 2, 3, 4, 5))
    ftp = connect(srv)
    try:
        ftp.login(srv.user, srv.password)
        assert answer(ftp, f"MFMT {stamp} hello.txt") == f"213 Modify={stamp}; /hello.txt"
        assert (srv.root / "hello.txt").stat().st_mtime == epoch
        assert answer(ftp, "MDTM hello.txt") == f"213 {stamp}"
        facts = dict(ftp.mlsd())["hello.txt"]
        assert facts["modify"][:14] == stamp
        assert answer(ftp, "MFMT 20201341000000 hello.txt")[:3] == "501"
        assert (srv.root / "hello.txt").stat().st_mtime == epoch
        ftp.quit()
    finally:
        ftp.close()


def test_opts_utf8_on_is_200(srv: Any) -> None:
    """rclone (jlaffaye/ftp) fails its login unless OPTS UTF8 ON gets 200/202/501/504; FileZilla
    and lftp send it before or after login, so both must work."""
    ftp = connect(srv)
    try:
        assert answer(ftp, "OPTS UTF8 ON")[:3] == "200"
        ftp.login(srv.user, srv.password)
        assert answer(ftp, "OPTS UTF8 ON")[:3] == "200"
        ftp.quit()
    finally:
        ftp.close()


def test_names_with_spaces_and_utf8(srv: Any) -> None:
    root: Path = srv.root
    ftp = connect(srv)
    try:
        ftp.login(srv.user, srv.password)
        assert ftp.mkd(SPACE_DIR) == f"/{SPACE_DIR}"
        ftp.cwd(SPACE_DIR)
        assert ftp.pwd() == f"/{SPACE_DIR}"
        ftp.storbinary(f"STOR {SPACE_NAME}", io.BytesIO(SMALL))
        ftp.storbinary(f"STOR {UTF8_NAME}", io.BytesIO(PAYLOAD))
        assert_file(root, f"{SPACE_DIR}/{SPACE_NAME}", SMALL)
        assert_file(root, f"{SPACE_DIR}/{UTF8_NAME}", PAYLOAD)
        assert set(ftp.nlst()) == {SPACE_NAME, UTF8_NAME}
        assert {n for n, f in ftp.mlsd() if f["type"] == "file"} == {SPACE_NAME, UTF8_NAME}
        assert listing_names(list_lines(ftp)) == {SPACE_NAME, UTF8_NAME}
        assert retr(ftp, UTF8_NAME) == PAYLOAD
        assert ftp.size(SPACE_NAME) == len(SMALL)
        ftp.rename(SPACE_NAME, f"/{UTF8_NAME}")
        assert_file(root, UTF8_NAME, SMALL)
        ftp.delete(UTF8_NAME)
        assert_absent(root, f"{SPACE_DIR}/{UTF8_NAME}")
        ftp.cwd("/")
        ftp.rmd(SPACE_DIR)
        ftp.quit()
    finally:
        ftp.close()
    assert tree(root) == {"hello.txt", "docs/", "docs/readme.txt", UTF8_NAME}
