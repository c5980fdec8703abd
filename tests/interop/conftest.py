"""Fixtures of the interop suite: a seeded ftpd on 127.0.0.1 or ::1 and a client work directory.

``pytest.mark.client("lftp")`` on a module or test checks that the client is installed before any
fixture runs (see ``support.require``).

When a test fails, the tail of the server's log is printed with the report (the client's own
transcript is in the failure message), so that a failure shows both sides of the conversation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.env import require_ipv6

from .support import require, seed


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "client(program, package=None): the test runs this FTP client program"
    )


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    # Before any fixture: a missing client skips (or, in CI, fails) without starting a server.
    for mark in item.iter_markers("client"):
        require(*mark.args, **mark.kwargs)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


_FAILED = pytest.StashKey[bool]()


def _serve(
    request: pytest.FixtureRequest, factory: Callable[..., Any], **overrides: object
) -> Iterator[Any]:
    srv = factory(**overrides)
    seed(srv.root)
    yield srv
    if request.node.stash.get(_FAILED, False):
        print(f"--- ftpd log (pid {srv.pid}, last 60 lines) ---")
        print("\n".join(srv.log().splitlines()[-60:]))


@pytest.fixture
def srv(request: pytest.FixtureRequest, ftpd_factory: Callable[..., Any]) -> Iterator[Any]:
    """An ftpd on 127.0.0.1 whose home holds the SEED files; commands logged at debug level."""
    yield from _serve(request, ftpd_factory, log_level="debug")


@pytest.fixture
def srv6(request: pytest.FixtureRequest, ftpd_factory: Callable[..., Any]) -> Iterator[Any]:
    """The same on ::1 (skipped where the machine has no IPv6 loopback)."""
    require_ipv6()
    yield from _serve(request, ftpd_factory, host="::1", log_level="debug")


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    """The client's working directory, also its HOME."""
    d = tmp_path / "client"
    d.mkdir()
    return d
