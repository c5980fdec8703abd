"""The pytest plugin (entry point ``pytest11: ftpd``): fixtures for testing FTP client code.

Fixtures (each a ``ftpd.testing.fixtures.TestServer``: ``host``, ``port``, ``user``,
``password``, ``home`` (a ``pathlib.Path``), ``url``, ``faults``, ``events()``...):

- ``ftp_server``: plain FTP;
- ``ftps_server``: explicit FTPS (AUTH TLS) with a certificate from a throw-away CA;
  ``ca_file`` / ``client_context()`` let clients verify it properly;
- ``ftp_server_factory``: ``factory(tls=False, anonymous=False, ipv6=False, **config)`` for
  several servers or settings per test, each stopped at the end of the test.

Options: the marker ``@pytest.mark.ftpd(anonymous=True, ipv6=True, **config)`` on a test (with
the default function scope), the ini keys ``ftpd_anonymous`` / ``ftpd_ipv6`` (true/false) for
all, and the scope of ``ftp_server``/``ftps_server``: ``--ftpd-scope`` or the ini key
``ftpd_scope`` (function, module, package or session). A server shared beyond one test has its
faults cleared before every test that uses it.

Loading the plugin costs nothing: ftpd is imported when a fixture is first used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import pytest

if TYPE_CHECKING:
    from ftpd.testing.fixtures import TestServer

Scope = Literal["session", "package", "module", "class", "function"]
SCOPES = ("function", "class", "module", "package", "session")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ftpd", "ftpd test servers (ftp_server, ftps_server)")
    group.addoption(
        "--ftpd-scope",
        dest="ftpd_scope",
        default=None,
        choices=SCOPES,
        help="scope of the ftp_server and ftps_server fixtures (default: function)",
    )
    parser.addini(
        "ftpd_scope", "scope of the ftp_server and ftps_server fixtures", default="function"
    )
    parser.addini(
        "ftpd_anonymous",
        "allow anonymous logins on ftp_server/ftps_server",
        type="bool",
        default=False,
    )
    parser.addini("ftpd_ipv6", "serve ftp_server/ftps_server on ::1", type="bool", default=False)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "ftpd(anonymous=False, ipv6=False, **config): settings of this test's ftp_server / "
        "ftps_server (function scope)",
    )


def _scope(fixture_name: str, config: pytest.Config) -> Scope:
    scope = config.getoption("ftpd_scope") or config.getini("ftpd_scope")
    if scope not in SCOPES:
        raise pytest.UsageError(f"ftpd_scope must be one of {', '.join(SCOPES)}, not {scope!r}")
    return cast(Scope, scope)


def _settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "anonymous": request.config.getini("ftpd_anonymous"),
        "ipv6": request.config.getini("ftpd_ipv6"),
    }
    marker = request.node.get_closest_marker("ftpd")
    if marker is not None:
        if marker.args:
            raise pytest.UsageError("@pytest.mark.ftpd takes keyword arguments only")
        settings.update(marker.kwargs)
    return settings


def _start(
    request: pytest.FixtureRequest, factory: pytest.TempPathFactory, tls: bool
) -> TestServer:
    from ftpd.testing.fixtures import start_test_server

    base = factory.mktemp("ftps" if tls else "ftp")
    return start_test_server(
        base / "home", tls=tls, ca_dir=factory.getbasetemp() / "ftpd-ca", **_settings(request)
    )


@pytest.fixture(scope=_scope)
def _ftpd_plain(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestServer]:
    server = _start(request, tmp_path_factory, tls=False)
    yield server
    server.stop()


@pytest.fixture(scope=_scope)
def _ftpd_tls(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestServer]:
    server = _start(request, tmp_path_factory, tls=True)
    yield server
    server.stop()


@pytest.fixture
def ftp_server(_ftpd_plain: TestServer) -> TestServer:
    """A running plain FTP server (see the module docstring)."""
    _ftpd_plain.faults.clear()
    return _ftpd_plain


@pytest.fixture
def ftps_server(_ftpd_tls: TestServer) -> TestServer:
    """A running explicit-FTPS server whose certificate ``ca_file`` verifies."""
    _ftpd_tls.faults.clear()
    return _ftpd_tls


@pytest.fixture
def ftp_server_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., TestServer]]:
    """``factory(tls=False, anonymous=False, ipv6=False, home=None, **config)`` starts a server;
    all are stopped when the test ends."""
    from ftpd.testing.fixtures import start_test_server

    started: list[TestServer] = []

    def factory(*, home: Path | None = None, **options: Any) -> TestServer:
        home = home if home is not None else tmp_path_factory.mktemp("ftp") / "home"
        server = start_test_server(
            home, ca_dir=tmp_path_factory.getbasetemp() / "ftpd-ca", **options
        )
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()
