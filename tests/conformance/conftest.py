"""One pyftpdlib + ftpd pair for the conformance module.

Each scenario gets its own fresh directory (``/<scenario id>``) in both homes and its own login,
so sharing the two servers is safe and keeps the suite fast. ftpd is started with the shared
``support.server.start_ftpd``; both servers get passive blocks allocated free.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from support.server import pasv_block, start_ftpd

from .harness import RefServer


@dataclass
class Pair:
    ref: RefServer
    ftpd: Any  # support.server.FtpdProcess


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    logging.getLogger("pyftpdlib").setLevel(logging.WARNING)
    base = tmp_path_factory.mktemp("conformance")
    ref_home = base / "ref-home"
    ref_home.mkdir()
    with contextlib.ExitStack() as stack:
        ref = RefServer(ref_home, stack.enter_context(pasv_block()))
        stack.callback(ref.stop)
        ftpd = start_ftpd(
            base / "ftpd",
            login_fail_delay=0,
            max_login_attempts=3,
            anonymous=True,
            log_level="debug",
        )
        stack.callback(ftpd.stop)
        yield Pair(ref, ftpd)
