"""One pyftpdlib + ftpd pair for the conformance module.

Each scenario gets its own fresh directory (``/<scenario id>``) in both homes and its own login,
so sharing the two servers is safe and keeps the suite fast. ftpd is started with the shared
``start_ftpd`` helper of tests/conftest.py (loaded by path: that conftest is not a package module).
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .harness import RefServer

REF_PASSIVE_PORTS = range(65000, 65500)  # outside the ephemeral range and ftpd's 61000-64999


def _start_ftpd() -> Any:
    path = Path(__file__).resolve().parents[1] / "conftest.py"
    spec = importlib.util.spec_from_file_location("_ftpd_tests_conftest", path)
    assert spec is not None and spec.loader is not None
    mod = sys.modules.get(spec.name)
    if mod is None:
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod  # dataclasses look their module up while it executes
        spec.loader.exec_module(mod)
    return mod.start_ftpd


@dataclass
class Pair:
    ref: RefServer
    ftpd: Any  # tests/conftest.py FtpdProcess


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    logging.getLogger("pyftpdlib").setLevel(logging.WARNING)
    base = tmp_path_factory.mktemp("conformance")
    ref_home = base / "ref-home"
    ref_home.mkdir()
    ref = RefServer(ref_home, REF_PASSIVE_PORTS)
    try:
        ftpd = _start_ftpd()(
            base / "ftpd",
            login_fail_delay=0,
            max_login_attempts=3,
            anonymous=True,
            log_level="debug",
        )
    except BaseException:
        ref.stop()
        raise
    try:
        yield Pair(ref, ftpd)
    finally:
        ftpd.stop()
        ref.stop()
