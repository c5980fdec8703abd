"""Fixtures of the hardening suite: figures collected across tests, and the server log on failure.

Tests record what they measured (fuzz iterations, connections survived, fd and memory before and
after) with ``figures.record(name, **values)``. The figures are printed at the end of the run
under "hardening figures", and written as JSON to ``$FTPD_HARDENING_FIGURES`` when it is set, so
that docs/HARDENING.md can be refreshed from a real run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

_FIGURES: dict[str, dict[str, Any]] = {}
_FAILED = pytest.StashKey[bool]()


class Figures:
    def record(self, name: str, **values: Any) -> None:
        _FIGURES.setdefault(name, {}).update(values)


@pytest.fixture(scope="session")
def figures() -> Figures:
    return Figures()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


@pytest.fixture
def servers(
    request: pytest.FixtureRequest, ftpd_factory: Callable[..., Any]
) -> Iterator[Callable[..., Any]]:
    """``ftpd_factory``, plus the tail of each server's log printed when the test fails."""
    started: list[Any] = []

    def start(**overrides: object) -> Any:
        srv = ftpd_factory(**overrides)
        started.append(srv)
        return srv

    yield start
    if request.node.stash.get(_FAILED, False):
        for srv in started:
            print(f"--- ftpd log (pid {srv.pid}, last 40 lines) ---")
            print("\n".join(srv.log().splitlines()[-40:]))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _FIGURES:
        return
    terminalreporter.section("hardening figures")
    for name, values in sorted(_FIGURES.items()):
        terminalreporter.write_line(f"{name}: " + ", ".join(f"{k}={v}" for k, v in values.items()))
    path = os.environ.get("FTPD_HARDENING_FIGURES")
    if path:
        with open(path, "w") as fh:
            json.dump(_FIGURES, fh, indent=2, sort_keys=True)
