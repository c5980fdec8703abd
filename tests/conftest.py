"""Shared fixtures: a real ftpd process on a loopback port (``support.server.start_ftpd``).

``ftpd_factory(**overrides)`` starts ``python -m ftpd`` with Config fields as flags
(``--max-per-ip 3``), a fresh home in tmp_path, port 0 and a free passive block, and stops the
process (SIGTERM, by PID) at the end of the test. ``ftpd_server`` is one with the defaults tests
want: no failed-login delay, unlimited per-IP sessions.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.env import require_ipv6
from support.server import FtpdProcess, start_ftpd

__all__ = ["FtpdProcess", "start_ftpd"]

# pytester drives tests/library's tests of the pytest plugin; the plugin itself is loaded as its
# pytest11 entry point does where ftpd is installed (the same name: no double registration).
pytest_plugins = ["pytester", "ftpd.testing.plugin"]


@pytest.fixture
def ftpd_factory(tmp_path: Path) -> Iterator[object]:
    started: list[FtpdProcess] = []
    counter = itertools.count()

    def factory(**overrides: object) -> FtpdProcess:
        d = tmp_path / f"srv{next(counter)}"
        d.mkdir()
        p = start_ftpd(d, **overrides)
        started.append(p)
        return p

    yield factory
    for p in started:
        p.stop()


@pytest.fixture
def ftpd_server(ftpd_factory: object) -> FtpdProcess:
    return ftpd_factory()  # type: ignore[operator]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test parametrized with the host ``::1`` needs the IPv6 loopback: skip without it, or
    fail under ``FTPD_REQUIRE_CLIENTS`` (CI), before any fixture starts a server on it."""
    callspec = getattr(item, "callspec", None)
    if callspec is not None and "::1" in callspec.params.values():
        require_ipv6()
