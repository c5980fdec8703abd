"""Fixtures for the integration tests: a real ``python -m ftpd`` process (see tests/conftest.py).

- ``srv``: one server per address family (``127.0.0.1`` and ``::1``) for the whole run, shared by
  every test that needs no special config; tests create files under unique names (``uniq``).
- ``module_factory(**overrides)``: more servers that live as long as the module.
- ``factory(**overrides)``: a server for one test (``ftpd_factory`` with fast-failure defaults).
- ``ftp``: an ftplib client logged in to ``srv``; ``raw``: a logged-in ``support.client.Ctl``.
"""

from __future__ import annotations

import ftplib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from integ_helpers import FAMILIES, SERVER_DEFAULTS, ftp_connect
from support.client import Ctl
from support.server import start_ftpd


def _factory(tmp: pytest.TempPathFactory, started: list[Any]) -> Any:
    def factory(**overrides: object) -> Any:
        p = start_ftpd(tmp.mktemp("srv"), **{**SERVER_DEFAULTS, **overrides})
        started.append(p)
        return p

    return factory


@pytest.fixture(scope="session")
def session_factory(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., Any]]:
    started: list[Any] = []
    yield _factory(tmp_path_factory, started)
    for p in started:
        p.stop()


@pytest.fixture(scope="module")
def module_factory(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., Any]]:
    started: list[Any] = []
    yield _factory(tmp_path_factory, started)
    for p in started:
        p.stop()


@pytest.fixture(scope="session", params=FAMILIES)
def srv(request: pytest.FixtureRequest, session_factory: Callable[..., Any]) -> Any:
    """The shared server of one address family (default config; unique file names please)."""
    return session_factory(host=request.param)


@pytest.fixture
def factory(ftpd_factory: Callable[..., Any]) -> Callable[..., Any]:
    """``ftpd_factory`` with the fast-failure defaults."""

    def start(**overrides: object) -> Any:
        return ftpd_factory(**{**SERVER_DEFAULTS, **overrides})

    return start


@pytest.fixture
def ftp(srv: Any) -> Iterator[ftplib.FTP]:
    f = ftp_connect(srv)
    yield f
    try:
        f.quit()
    except (OSError, EOFError, ftplib.Error):
        f.close()


@pytest.fixture
def raw(srv: Any) -> Iterator[Ctl]:
    c = Ctl(srv.host, srv.port).login(srv.user, srv.password)
    yield c
    c.close()
