"""Integration-only helpers; the raw client, waits and socket helpers are in ``tests/support``.

- ``FAMILIES``: the address families every shared-server test runs on (127.0.0.1 and ::1; on a
  machine without ``::1`` the IPv6 cases skip, or fail under ``FTPD_REQUIRE_CLIENTS``: see
  ``pytest_runtest_setup`` in tests/conftest.py).
- ``SERVER_DEFAULTS``: the fast-failure limits of the shared servers.
- ``uniq``: file names no other test uses; ``ftp_connect``: an ftplib client, logged in.
"""

from __future__ import annotations

import itertools
import uuid
from pathlib import Path

import pytest
from support.client import TIMEOUT, connect_ftplib

__all__ = ["FAMILIES", "SERVER_DEFAULTS", "TIMEOUT", "ftp_connect", "uniq", "write_file"]

_names = itertools.count()

FAMILIES = [pytest.param("127.0.0.1", id="ipv4"), pytest.param("::1", id="ipv6")]

# Fast failure when something hangs; the module server is shared, so keep its limits generous.
SERVER_DEFAULTS: dict[str, object] = {"data_timeout": 10, "idle_timeout": 60, "login_timeout": 30}

ftp_connect = connect_ftplib


def uniq(prefix: str = "f") -> str:
    """A file name no other test uses."""
    return f"{prefix}-{next(_names)}-{uuid.uuid4().hex[:6]}"


def write_file(root: Path, name: str, data: bytes) -> Path:
    p = root / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p
