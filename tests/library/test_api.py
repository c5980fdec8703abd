"""ftpd.api.Server inside the test's own event loop, driven by ftplib in a thread: lifecycle,
pluggable authentication and storage, and events (including callbacks that fail)."""

from __future__ import annotations

import asyncio
import ftplib
import io
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import ftpd
from ftpd import (
    ALL_PERMS,
    Account,
    Config,
    Credentials,
    Event,
    EventKind,
    LoginResult,
    MemoryFS,
    Peer,
    Refusal,
    Server,
    StorageError,
)
from ftpd.auth import ConfigAuthenticator
from ftpd.events import EventBus


def config(tmp_path: Path, **overrides: Any) -> Config:
    base: dict[str, Any] = dict(
        host="127.0.0.1", port=0, root=str(tmp_path), password="pw", login_fail_delay=0.0
    )
    base.update(overrides)
    return Config(**base)


def client(server: Server, user: str = "user", password: str = "pw") -> ftplib.FTP:
    ftp = ftplib.FTP(timeout=10)
    ftp.connect(server.host, server.port)
    ftp.login(user, password)
    return ftp


async def in_thread(fn: Callable[[], Any]) -> Any:
    return await asyncio.to_thread(fn)


def test_public_surface_is_importable_and_lazy() -> None:
    for name in ftpd.__all__:
        assert getattr(ftpd, name) is not None, name
    assert (Path(ftpd.__file__).parent / "py.typed").is_file()


async def test_lifecycle(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_bytes(b"local file")
    server = Server(config(tmp_path))
    with pytest.raises(RuntimeError):
        _ = server.port  # not started
    async with server:
        assert server.host == "127.0.0.1" and server.port > 0
        assert server.url == f"ftp://127.0.0.1:{server.port}/"

        def use() -> bytes:
            ftp = client(server)
            out = io.BytesIO()
            ftp.retrbinary("RETR f.txt", out.write)
            ftp.quit()
            return out.getvalue()

        assert await in_thread(use) == b"local file"
        port = server.port
    # Closed: nothing listens any more, and close() again is harmless.
    await server.close()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)


async def test_close_says_421_to_idle_sessions_and_serve_forever_returns(tmp_path: Path) -> None:
    server = Server(config(tmp_path))
    await server.start()
    ftp = await in_thread(lambda: client(server))
    forever = asyncio.create_task(server.serve_forever())
    await server.close(grace=1.0)
    await asyncio.wait_for(forever, 5)
    with pytest.raises(ftplib.error_temp, match="^421"):
        await in_thread(lambda: ftp.voidcmd("NOOP"))


async def test_the_loop_is_left_as_found(tmp_path: Path) -> None:
    """Embedded: the application's default executor is not replaced (nor shut down)."""
    loop = asyncio.get_running_loop()
    async with Server(config(tmp_path)):
        pass
    assert await loop.run_in_executor(None, lambda: 42) == 42


class TableAuth:
    """A user table in a dict: the shape of a Django or SQLAlchemy authenticator."""

    def __init__(self) -> None:
        self.peers: list[Peer] = []

    async def authenticate(self, credentials: Credentials, peer: Peer) -> LoginResult:
        self.peers.append(peer)
        if credentials.user == "broken":
            raise RuntimeError("database is down")
        if credentials.user == "disabled":
            return Refusal("Account disabled.")
        if (credentials.user, credentials.password) == ("alice", "wonderland"):
            return Account("alice", perms=ALL_PERMS)
        return None


async def test_custom_authenticator_and_memory_storage(tmp_path: Path) -> None:
    auth = TableAuth()
    store = MemoryFS()
    server = Server(
        config(tmp_path, max_login_attempts=0),
        authenticator=auth,
        filesystem=lambda account: store.subtree("/" + account.name),
    )

    def session() -> list[str]:
        ftp = client(server, "alice", "wonderland")
        ftp.storbinary("STOR in.txt", io.BytesIO(b"hello"))
        names = ftp.nlst()
        ftp.quit()
        outcomes = []
        for user in ("alice", "broken", "disabled"):
            other = ftplib.FTP(timeout=10)
            other.connect(server.host, server.port)
            try:
                other.login(user, "nope" if user == "alice" else "x")
            except ftplib.Error as exc:
                outcomes.append(str(exc)[:3])
        return names + outcomes

    async with server:
        assert await in_thread(session) == ["in.txt", "530", "530", "421"]
    assert store.read_bytes("/alice/in.txt") == b"hello"
    assert auth.peers[0].ip == "127.0.0.1" and auth.peers[0].port > 0
    assert not auth.peers[0].secure


async def test_a_subclass_of_the_builtin_authenticator_is_asked(tmp_path: Path) -> None:
    """The server answers the built-in store's logins by name and password alone; a subclass
    that overrides ``authenticate_cached`` is asked through it, with the Credentials and Peer."""
    seen: list[tuple[str, Peer]] = []

    class Blocklist(ConfigAuthenticator):
        def authenticate_cached(self, credentials: Credentials, peer: Peer) -> Any:
            seen.append((credentials.user, peer))
            if peer.ip == "127.0.0.1" and credentials.user == "user":
                return Refusal("Not from here.")
            return super().authenticate_cached(credentials, peer)

    cfg = config(tmp_path)
    server = Server(cfg, authenticator=Blocklist.from_config(cfg))

    def login() -> str:
        try:
            client(server).quit()
        except ftplib.Error as exc:
            return str(exc)
        return "logged in"

    async with server:
        assert await in_thread(login) == "421 Not from here."
    assert [(user, peer.ip) for user, peer in seen] == [("user", "127.0.0.1")]
    # The same configuration with the built-in class itself logs in.
    plain = Server(cfg)
    async with plain:
        assert (await in_thread(lambda: client(plain).quit())).startswith("221")


async def test_event_kinds_wanted_are_those_of_the_subscribers() -> None:
    bus = EventBus()
    assert not any(bus.wants(kind) for kind in EventKind)
    bus.subscribe(lambda event: None, [EventKind.UPLOAD])
    assert bus.wants(EventKind.UPLOAD) and not bus.wants(EventKind.LOGIN)
    bus.subscribe(lambda event: None, [EventKind.LOGIN, EventKind.LOGOUT])
    assert {kind for kind in EventKind if bus.wants(kind)} == {
        EventKind.UPLOAD, EventKind.LOGIN, EventKind.LOGOUT
    }  # fmt: skip
    bus.subscribe(lambda event: None)  # no kinds named: all of them
    assert all(bus.wants(kind) for kind in EventKind)


async def test_events_with_their_fields(tmp_path: Path) -> None:
    got: list[Event] = []
    server = Server(config(tmp_path, max_login_attempts=0))

    @server.on()
    async def record(event: Event) -> None:
        got.append(event)

    def session() -> None:
        try:
            client(server, "user", "wrong")
        except ftplib.error_perm:
            pass
        ftp = client(server)
        ftp.storbinary("STOR a.txt", io.BytesIO(b"12345"))
        ftp.retrbinary("RETR a.txt", lambda b: None)
        ftp.mkd("d")
        ftp.rename("a.txt", "d/b.txt")
        ftp.delete("d/b.txt")
        ftp.rmd("d")
        ftp.quit()

    async with server:
        await in_thread(session)
        await server.wait_events()
        kinds = [e.kind for e in got]
        assert kinds == [
            EventKind.LOGIN_FAILED,
            EventKind.LOGIN,
            EventKind.UPLOAD,
            EventKind.DOWNLOAD,
            EventKind.MKDIR,
            EventKind.RENAME,
            EventKind.DELETE,
            EventKind.RMDIR,
            EventKind.LOGOUT,
        ], kinds
    by_kind = {e.kind: e for e in got}
    up = by_kind[EventKind.UPLOAD]
    assert (up.user, up.path, up.size, up.outcome) == ("user", "/a.txt", 5, "ok")
    assert up.real_path == str(tmp_path / "a.txt") and up.remote_ip == "127.0.0.1"
    rename = by_kind[EventKind.RENAME]
    assert (rename.path, rename.target) == ("/a.txt", "/d/b.txt")
    assert rename.real_target == str(tmp_path / "d" / "b.txt")
    assert by_kind[EventKind.LOGIN_FAILED].user == "user"
    assert len({e.session_id for e in got[1:]}) == 1


async def test_failed_upload_event_and_kind_filter(tmp_path: Path) -> None:
    """Only the kinds asked for; a failed upload is UPLOAD_FAILED with its outcome."""
    got: list[Event] = []

    async def record(event: Event) -> None:
        got.append(event)

    class QuotaWriter:
        """A writer whose commit is refused with a reply of the storage's choosing."""

        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def write(self, data: bytes | memoryview) -> Any:
            return self.inner.write(data)

        def blocking_write(self) -> None:
            return None

        async def commit(self, tail: bytes | memoryview = b"") -> None:
            raise StorageError(452, "Quota exceeded.")

        def abort(self) -> Any:
            return self.inner.abort()

    class Failing(MemoryFS):
        async def open_write(self, vpath: str, offset: int = 0, append: bool = False) -> Any:
            return QuotaWriter(await super().open_write(vpath, offset, append))

    store = Failing()
    server = Server(config(tmp_path), filesystem=lambda account: store)
    server.subscribe(record, EventKind.UPLOAD, EventKind.UPLOAD_FAILED)

    def upload() -> str:
        ftp = client(server)
        try:
            ftp.storbinary("STOR x", io.BytesIO(b"abc"))
        except ftplib.error_temp as exc:
            return str(exc)
        return "no error"

    async with server:
        assert await in_thread(upload) == "452 Quota exceeded."
    assert [(e.kind, e.outcome) for e in got] == [(EventKind.UPLOAD_FAILED, "local-error")]


async def test_a_failing_callback_is_logged_and_breaks_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[EventKind] = []
    server = Server(config(tmp_path))

    async def broken(event: Event) -> None:
        raise ValueError("bug in the application")

    async def slow(event: Event) -> None:
        await asyncio.sleep(0.05)
        seen.append(event.kind)

    server.subscribe(broken)
    server.subscribe(slow, EventKind.UPLOAD)

    def session() -> bytes:
        ftp = client(server)
        for i in range(3):
            ftp.storbinary(f"STOR f{i}", io.BytesIO(b"x"))
        out = io.BytesIO()
        ftp.retrbinary("RETR f2", out.write)
        ftp.quit()
        return out.getvalue()

    with caplog.at_level(logging.ERROR, logger="ftpd.events"):
        async with server:
            assert await in_thread(session) == b"x"
    # close() delivered what was queued; every failure was logged, with its traceback.
    assert seen == [EventKind.UPLOAD] * 3
    failures = [r for r in caplog.records if "event callback" in r.getMessage()]
    assert len(failures) >= 6 and all(r.exc_info for r in failures)


async def test_drop_sessions(tmp_path: Path) -> None:
    async with Server(config(tmp_path)) as server:
        ftp = await in_thread(lambda: client(server))
        assert server.sessions == 1
        assert server.drop_sessions() == 1
        with pytest.raises((EOFError, OSError)):
            await in_thread(lambda: ftp.voidcmd("NOOP"))


def test_serve_blocks_until_a_signal(tmp_path: Path) -> None:
    """``serve(config)`` in a child process: ready, serving, and exit 0 on SIGTERM."""
    import os
    import signal
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from ftpd import Config, serve\n"
        f"cfg = Config(host='127.0.0.1', port=0, root={str(tmp_path)!r}, password='pw')\n"
        "sys.exit(serve(cfg, on_ready=lambda s: print('READY', s.port, flush=True)))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env={**os.environ}
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("READY"), line
        port = int(line.split()[1])
        ftp = ftplib.FTP(timeout=10)
        ftp.connect("127.0.0.1", port)
        ftp.login("user", "pw")
        ftp.quit()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


async def test_a_storage_bug_is_a_451_and_the_session_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A FileSystem that raises something other than OSError (a bug, a driver's own exception):
    logged with its traceback, answered 451, and the session keeps working."""

    class Buggy(MemoryFS):
        async def mkdir(self, vpath: str) -> None:
            raise KeyError("oops")

        def delete(self, vpath: str) -> Any:  # fails before returning an awaitable
            raise ZeroDivisionError("sync oops")

    store = Buggy()
    store.write_bytes("/f", b"f")

    def session() -> list[str]:
        ftp = client(server)
        replies = []
        for call in (lambda: ftp.mkd("d"), lambda: ftp.delete("f")):
            try:
                call()
            except ftplib.error_temp as exc:
                replies.append(str(exc)[:3])
        replies.append(ftp.voidcmd("NOOP")[:3])
        return replies

    server = Server(config(tmp_path), filesystem=lambda account: store)
    with caplog.at_level(logging.ERROR):
        async with server:
            assert await in_thread(session) == ["451", "451", "200"]
    assert sum(1 for r in caplog.records if r.exc_info) >= 2
