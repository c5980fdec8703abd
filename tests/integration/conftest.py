"""Fixtures for the integration tests: a real ``python -m ftpd`` process (see tests/conftest.py).

- ``srv``: one server per address family (``127.0.0.1`` and ``::1``) for the whole run, shared by
  every test that needs no special config; tests create files under unique names (``uniq``).
- ``module_factory(**overrides)``: more servers that live as long as the module.
- ``factory(**overrides)``: a server for one test (``ftpd_factory`` with fast-failure defaults).
- ``ftp``: an ftplib client logged in to ``srv``; ``raw``: a logged-in ``integ_helpers.Raw``.
"""

from __future__ import annotations

import ftplib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from integ_helpers import FAMILIES, SERVER_DEFAULTS, Raw, ftp_connect


def _root_conftest(config: pytest.Config) -> Any:
    """tests/conftest.py as pytest loaded it (importing it by name would find this file)."""
    root = (Path(__file__).resolve().parent.parent / "conftest.py").resolve()
    for plugin in config.pluginmanager.get_plugins():
        f = getattr(plugin, "__file__", None)
        if f and Path(f).resolve() == root:
            return plugin
    raise RuntimeError("tests/conftest.py is not loaded")


def _factory(config: pytest.Config, tmp: pytest.TempPathFactory, started: list[Any]) -> Any:
    start = _root_conftest(config).start_ftpd

    def factory(**overrides: object) -> Any:
        p = start(tmp.mktemp("srv"), **{**SERVER_DEFAULTS, **overrides})
        started.append(p)
        return p

    return factory


@pytest.fixture(scope="session")
def session_factory(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., Any]]:
    started: list[Any] = []
    yield _factory(request.config, tmp_path_factory, started)
    for p in started:
        p.stop()


@pytest.fixture(scope="module")
def module_factory(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., Any]]:
    started: list[Any] = []
    yield _factory(request.config, tmp_path_factory, started)
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
def raw(srv: Any) -> Iterator[Raw]:
    c = Raw(srv.host, srv.port).login(srv.user, srv.password)
    yield c
    c.close()
