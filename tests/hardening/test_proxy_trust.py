"""Issue 16 item 9: the PROXY protocol never trusts a default range.

With 127.0.0.0/8 trusted by default, any local process could send a PROXY header claiming any
client address (limits, bans, logs and the passive-connection check would believe it). The
trusted list must be explicit: turning the protocol on without one is a one-line start-up error.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def _run(tmp_path: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FTPD_")}
    argv = [
        sys.executable,
        "-m",
        "ftpd",
        "--root",
        str(tmp_path),
        "--port",
        "0",
        "--password",
        "x",
        *flags,
    ]
    try:
        return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=10)
    except subprocess.TimeoutExpired as exc:  # it started serving: the defect
        raise AssertionError(f"ftpd started with {flags} and no trusted list") from exc


@pytest.mark.parametrize("mode", ["optional", "required"])
def test_proxy_protocol_without_trusted_list_is_a_start_up_error(tmp_path: Path, mode: str) -> None:
    done = _run(tmp_path, "--proxy-protocol", mode)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("ftpd: error: ") and "proxy_trusted" in lines[0], lines


def test_no_default_trusted_range() -> None:
    from ftpd.config import Config

    assert Config().proxy_trusted == ""
    from ftpd.proto.proxy import ProxyPolicy

    off = ProxyPolicy.from_text("off", Config().proxy_trusted, 5.0)
    assert not off.trusts("127.0.0.1") and not off.trusts("::1")
