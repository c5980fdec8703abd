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

import ftplib
import io
import os
import socket
from pathlib import Path
from typing import Any

import pytest
from integ_helpers import TIMEOUT, Raw, abort_socket, ftp_connect, uniq, wait_for

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
