"""The objects behind the pytest fixtures (``ftpd.testing.plugin``): a running test server with
its credentials, its home on disk, its faults and the events it has seen.

``start_test_server(home, tls=..., anonymous=..., ipv6=...)`` starts one in a thread
(``ThreadedServer``) in a few milliseconds: a single user with a random password whose home is
``home`` (all permissions), anonymous logins into the same home if asked, and for FTPS a server
certificate from a throw-away CA made with trustme once per process.
"""

from __future__ import annotations

import secrets
import socket
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ftpd.auth.builtin import ConfigAuthenticator
from ftpd.config import Config
from ftpd.events import Event, EventKind
from ftpd.testing.faults import FaultAuthenticator, FaultFS, Faults
from ftpd.testing.threaded import ThreadedServer

__all__ = ["TestCA", "TestServer", "start_test_server", "test_ca"]

USER = "user"


@dataclass(frozen=True)
class TestCA:
    """A throw-away certificate authority and a server certificate it signed (PEM files)."""

    __test__ = False  # not a test class, whatever its name

    ca_file: Path  # give it to clients: ssl.create_default_context(cafile=...)
    cert_file: Path
    key_file: Path


_ca_lock = threading.Lock()
_ca: TestCA | None = None


def test_ca(directory: Path) -> TestCA:
    """The process's test CA, made on first use (ECDSA keys: ~30 ms instead of RSA's ~200)."""
    global _ca
    with _ca_lock:
        if _ca is None or not _ca.ca_file.exists():
            import trustme  # the test extra; only FTPS fixtures need it

            ca = trustme.CA(key_type=trustme.KeyType.ECDSA)
            cert = ca.issue_cert("localhost", "127.0.0.1", "::1", key_type=trustme.KeyType.ECDSA)
            directory.mkdir(parents=True, exist_ok=True)
            made = TestCA(directory / "ca.pem", directory / "server.pem", directory / "server.key")
            ca.cert_pem.write_to_path(str(made.ca_file))
            cert.cert_chain_pems[0].write_to_path(str(made.cert_file))
            for extra in cert.cert_chain_pems[1:]:
                extra.write_to_path(str(made.cert_file), append=True)
            cert.private_key_pem.write_to_path(str(made.key_file))
            _ca = made
        return _ca


test_ca.__test__ = False  # type: ignore[attr-defined]


@dataclass
class TestServer:
    """A running ftpd for one test (or one module/session, by the fixture's scope)."""

    __test__ = False

    host: str
    port: int
    user: str
    password: str
    home: Path  # the user's home on disk (anonymous logins share it)
    anonymous: bool
    tls: bool  # explicit FTPS (AUTH TLS) offered
    ca_file: Path | None  # the CA that signed the server's certificate (FTPS), for clients
    faults: Faults
    threaded: ThreadedServer = field(repr=False)
    startup_seconds: float = 0.0
    _events: list[Event] = field(default_factory=list, repr=False)

    @property
    def url(self) -> str:
        """``ftp://user:password@host:port/`` (explicit FTPS uses the same scheme)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        creds = (
            f"{urllib.parse.quote(self.user, safe='')}:{urllib.parse.quote(self.password, safe='')}"
        )
        return f"ftp://{creds}@{host}:{self.port}/"

    def client_context(self) -> ssl.SSLContext:
        """A client SSL context that trusts the test CA (and verifies the host name)."""
        if self.ca_file is None:
            raise RuntimeError("a plain FTP server has no CA; use the ftps_server fixture")
        return ssl.create_default_context(cafile=str(self.ca_file))

    # ------------------------------------------------------------------ events
    def events(self, *kinds: EventKind) -> list[Event]:
        """The events so far (of ``kinds``, if given), once every one has been delivered."""
        self.threaded.call(self.threaded.server.wait_events)
        return [e for e in list(self._events) if not kinds or e.kind in kinds]

    def wait_for(self, kind: EventKind, timeout: float = 5.0, **match: Any) -> Event:
        """The first event of ``kind`` whose fields equal ``match`` (e.g. ``path="/a.txt"``),
        waiting up to ``timeout`` seconds for it."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events(kind):
                if all(getattr(event, k) == v for k, v in match.items()):
                    return event
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {kind.value} event matching {match} in {timeout} s")
            time.sleep(0.01)  # events come from the server's thread; poll with a deadline

    def stop(self) -> None:
        self.threaded.stop()


def ipv6_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


def start_test_server(
    home: Path,
    *,
    tls: bool = False,
    anonymous: bool = False,
    ipv6: bool = False,
    ca_dir: Path | None = None,
    password: str | None = None,
    **config: Any,
) -> TestServer:
    """Start a server for tests (see the module docstring); ``config`` overrides ``Config``."""
    began = time.perf_counter()
    home.mkdir(parents=True, exist_ok=True)
    password = password if password is not None else secrets.token_urlsafe(12)
    ca = test_ca(ca_dir or home.parent / ".ftpd-test-ca") if tls else None
    if ipv6 and not ipv6_available():
        raise RuntimeError("IPv6 requested, but ::1 cannot be bound on this machine")
    cfg = Config(
        host="::1" if ipv6 else "127.0.0.1",
        port=0,
        root=str(home),
        user=USER,
        password=password,
        anonymous=anonymous,
        anonymous_write=False,
        login_fail_delay=0.0,
        max_per_ip=0,
        log_level="warning",
        tls="explicit" if tls else "off",
        tls_cert=str(ca.cert_file) if ca else "",
        tls_key=str(ca.key_file) if ca else "",
        # Stock ftplib.FTP_TLS never resumes the TLS session on data connections: a test server
        # that required it would refuse the client most tests are written with.
        tls_require_session_reuse=False,
        shutdown_grace=1.0,
    )
    cfg = replace(cfg, **config)
    faults = Faults()
    events: list[Event] = []

    def setup(server: Any) -> None:
        server.add_layer(lambda fs, session: FaultFS(fs, faults, session.abort))

        async def record(event: Event) -> None:
            events.append(event)

        server.subscribe(record)

    auth = FaultAuthenticator(ConfigAuthenticator.from_config(cfg), faults)
    threaded = ThreadedServer(cfg, authenticator=auth, setup=setup).start()
    faults.attach(lambda: threaded.call(threaded.server.drop_sessions))
    return TestServer(
        host=threaded.host,
        port=threaded.port,
        user=USER,
        password=password,
        home=home,
        anonymous=anonymous,
        tls=tls,
        ca_file=ca.ca_file if ca else None,
        faults=faults,
        threaded=threaded,
        startup_seconds=time.perf_counter() - began,
        _events=events,
    )
