"""The ftpd command: help, errors, passwd, healthcheck and the start-up announcement."""

from __future__ import annotations

import getpass
import io
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import pytest

from ftpd import cli
from ftpd.auth import hashing
from ftpd.config import FIELD_NAMES, Config, env_name, flag_name, show

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """main() reads os.environ: keep the caller's FTPD_* settings out of these tests."""
    for name in list(os.environ):
        if name.startswith("FTPD_"):
            monkeypatch.delenv(name)


def run_module(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FTPD_")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-m", "ftpd", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


class FakeRun:
    """Stands in for ftpd.server.server.run: records the config, announces, returns 0."""

    def __init__(self, addresses: list[tuple[str, int]], result: int = 0) -> None:
        self.addresses = addresses
        self.result = result
        self.config: Config | None = None

    def __call__(self, config: Config, on_ready: cli.OnReady) -> int:
        self.config = config
        on_ready(self.addresses)
        return self.result


def serve(monkeypatch: pytest.MonkeyPatch, addresses: list[tuple[str, int]], *argv: str) -> FakeRun:
    fake = FakeRun(addresses)
    monkeypatch.setattr(cli, "_server_run", fake)
    assert cli.main(list(argv)) == 0
    return fake


# --- help and errors -------------------------------------------------------------------------


def test_help_lists_every_field(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in FIELD_NAMES:
        assert flag_name(name) in out, name
        assert env_name(name) in out, name
    assert "--config FILE" in out and "passwd" in out and "healthcheck" in out
    flat = " ".join(out.split())  # argparse wraps the help column
    assert '(default: "61000-61999"; env FTPD_PASV_PORTS)' in flat  # defaults are shown
    assert "(default: true; env FTPD_ATOMIC_UPLOADS)" in flat


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("ftpd 0.")


def test_config_error_in_a_subprocess_is_one_line_and_exit_2() -> None:
    result = run_module("--port", "99999")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr == (
        "ftpd: error: invalid value for port: 99999 (expected 1-65535, or 0 for any free port)\n"
    )
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--pasv-ports", "70000-1"], 'pasv_ports: "70000-1"'),
        (["--anonymous=perhaps"], '"perhaps"'),
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["--users-file", "/nonexistent/users.toml"], "cannot read users file"),
        (["--config", "/nonexistent/ftpd.toml"], "cannot read config file"),
    ],
)
def test_errors_exit_2_with_one_line(
    argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert cli.main([*argv, "--root", str(tmp_path / "r")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("ftpd: error: ") and captured.err.count("\n") == 1
    assert fragment in captured.err


def test_unusable_root_is_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("x")
    assert cli.main(["--root", str(tmp_path / "file" / "sub")]) == 2
    assert capsys.readouterr().err.startswith("ftpd: error: invalid value for root: ")


def test_env_reaches_main(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FTPD_PORT", "abc")
    assert cli.main([]) == 2
    assert 'port (FTPD_PORT): "abc"' in capsys.readouterr().err


# --- serving ---------------------------------------------------------------------------------


def test_serve_generates_a_password_and_announces(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    root = tmp_path / "ftp-root"
    fake = serve(monkeypatch, [("127.0.0.1", 2121)], "--root", str(root), "--port", "2121")
    assert root.is_dir()  # created
    assert fake.config is not None
    password = fake.config.password
    assert len(password) == 16  # secrets.token_urlsafe(12)
    assert fake.config.port == 2121
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"ftpd serving {root} on 127.0.0.1:2121",
        f"connect with: ftp://user:{password}@127.0.0.1:2121/",
    ]
    # A second start generates a different password.
    fake2 = serve(monkeypatch, [("127.0.0.1", 2121)], "--root", str(root))
    assert fake2.config is not None and fake2.config.password != password


def test_serve_word_and_relative_root(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    serve(monkeypatch, [("127.0.0.1", 0)], "serve", "--password", "pw")
    assert (tmp_path / "ftp-root").is_dir()  # the default root, relative to the cwd
    assert f"ftpd serving {tmp_path / 'ftp-root'} on" in capsys.readouterr().out


def test_given_password_is_never_printed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # A password the operator chose must not land in the logs (docker logs); the user name is
    # still shown, URL-quoted.
    password, user = "p@ss:w/rd %?#", "us er"
    serve(
        monkeypatch,
        [("::1", 2121)],
        *("--root", str(tmp_path), "--host", "::1", "--password", password, "--user", user),
    )
    out = capsys.readouterr().out
    assert password not in out and quote(password, safe="") not in out
    url = out.splitlines()[1].removeprefix("connect with: ")
    parts = urlsplit(url)
    assert (unquote(parts.username or ""), parts.password) == (user, None)
    assert (parts.hostname, parts.port) == ("::1", 2121)
    assert "@[::1]:2121/" in url


def test_generated_password_is_printed_url_quoted() -> None:
    from ftpd.cli import connect_url
    from ftpd.config import Config

    config = Config(user="us er", password="p@ss:w/rd %?#")
    url = connect_url(config, [("::1", 2121)], show_password=True)
    parts = urlsplit(url)
    assert (unquote(parts.username or ""), unquote(parts.password or "")) == (
        "us er",
        "p@ss:w/rd %?#",
    )


@pytest.mark.parametrize(
    ("host", "bound", "shown"),
    [("0.0.0.0", [("0.0.0.0", 2121)], "127.0.0.1:2121"),
     ("::", [("::", 2121)], "[::1]:2121"),
     ("localhost", [("::1", 2121), ("127.0.0.1", 2121)], "127.0.0.1:2121")],
)  # fmt: skip
def test_wildcards_become_loopback_in_the_url(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    host: str,
    bound: list[tuple[str, int]],
    shown: str,
) -> None:
    serve(monkeypatch, bound, "--root", str(tmp_path), "--host", host, "--password", "pw")
    serving, connect = capsys.readouterr().out.splitlines()
    assert connect == f"connect with: ftp://user@{shown}/"  # a chosen password is not shown
    assert serving.endswith(" on " + ", ".join(cli._hostport(h, p) for h, p in bound))


def test_no_credentials_in_url_without_single_user(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    users = tmp_path / "users.toml"
    users.write_text("users = []\n")
    pub = tmp_path / "pub"
    fake = serve(
        monkeypatch,
        [("127.0.0.1", 2121)],
        *("--root", str(tmp_path / "r"), "--users-file", str(users), "--anonymous"),
        *("--anonymous-root", str(pub)),
    )
    assert fake.config is not None and fake.config.password == ""  # none generated
    assert pub.is_dir()
    serving, connect = capsys.readouterr().out.splitlines()
    assert connect == "connect with: ftp://127.0.0.1:2121/ (anonymous login)"
    assert serving == (
        f"ftpd serving the homes of 0 user(s) of the users file {show(str(users))}"
        f" and {pub} to anonymous users on 127.0.0.1:2121"
    )
    assert not (tmp_path / "r").exists()  # the single user's root serves no one: not created


def test_users_db_start_up_names_the_database_and_how_to_log_in(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from ftpd.auth.admin import NewUser, open_target

    url = f"sqlite:///{tmp_path / 'users.db'}"
    open_target("", url).add(
        NewUser("alice", hashing.hash_password("pw", ln=4), str(tmp_path), "elr")
    )
    serve(monkeypatch, [("127.0.0.1", 2121)], "--users-db", url, "--root", str(tmp_path / "r"))
    serving, connect = capsys.readouterr().out.splitlines()
    assert (
        serving
        == f"ftpd serving the homes of the users in the users database {url} on 127.0.0.1:2121"
    )
    assert connect == ("connect with: ftp://127.0.0.1:2121/ (as a user of the users database "
                       f"{url}: `ftpd user list` shows them)")  # fmt: skip
    assert not (tmp_path / "r").exists()
    serve(monkeypatch, [("127.0.0.1", 2121)], "--users-db", url, "--anonymous", "--root",
          str(tmp_path / "pub"))  # fmt: skip
    connect = capsys.readouterr().out.splitlines()[1]
    assert connect == (f"connect with: ftp://127.0.0.1:2121/ (anonymous login; users of the users "
                       f"database {url} add NAME@)")  # fmt: skip


def test_exit_code_of_run_is_returned(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(cli, "_server_run", FakeRun([("127.0.0.1", 1)], result=3))
    assert cli.main(["--root", str(tmp_path)]) == 3

    def interrupted(config: Config, on_ready: cli.OnReady) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_server_run", interrupted)
    assert cli.main(["--root", str(tmp_path)]) == 130


# --- passwd ----------------------------------------------------------------------------------


def test_passwd_round_trip_in_a_subprocess() -> None:
    result = run_module("passwd", stdin="s3cret pass\n")
    assert result.returncode == 0, result.stderr
    encoded = result.stdout.strip()
    assert encoded.startswith("$scrypt$") and result.stdout.count("\n") == 1
    assert hashing.verify_password("s3cret pass", encoded)
    assert not hashing.verify_password("s3cret pass\n", encoded)


def test_passwd_from_stdin_keeps_spaces(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(" spaced out \r\nsecond line\n"))
    assert cli.main(["passwd"]) == 0
    assert hashing.verify_password(" spaced out ", capsys.readouterr().out.strip())


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("answers", "code"), [(["pw1", "pw1"], 0), (["pw1", "pw2"], 1), (["", ""], 1)]
)
def test_passwd_prompts_twice_on_a_tty(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    answers: list[str],
    code: int,
) -> None:
    replies = iter(answers)
    prompts: list[str] = []

    def fake_getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return next(replies)

    monkeypatch.setattr(sys, "stdin", FakeTty())
    monkeypatch.setattr(getpass, "getpass", fake_getpass)
    assert cli.main(["passwd"]) == code
    assert len(prompts) == 2
    captured = capsys.readouterr()
    if code == 0:
        assert hashing.verify_password("pw1", captured.out.strip())
    else:
        assert captured.out == "" and captured.err.startswith("ftpd: error: ")


def test_passwd_rejects_empty_stdin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert cli.main(["passwd"]) == 1
    assert capsys.readouterr().err == "ftpd: error: empty password\n"


# --- healthcheck -----------------------------------------------------------------------------


class TinyServer:
    """One-connection TCP server on 127.0.0.1 that sends ``greeting`` and records what it gets."""

    def __init__(self, greeting: bytes) -> None:
        self.greeting = greeting
        self.received = b""
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(10)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(5)
            if self.greeting:
                conn.sendall(self.greeting)
                try:
                    while chunk := conn.recv(1024):
                        self.received += chunk
                        if b"\n" in self.received:
                            conn.sendall(b"221 bye\r\n")
                            break
                except OSError:
                    pass
            else:
                try:
                    conn.recv(1024)  # say nothing until the client gives up
                except OSError:
                    pass

    def close(self) -> None:
        self.thread.join(10)
        self.sock.close()


@pytest.fixture
def tiny_server(request: pytest.FixtureRequest) -> Iterator[TinyServer]:
    server = TinyServer(request.param)
    yield server
    server.close()


@pytest.mark.parametrize(
    "tiny_server", [b"220 hi\r\n", b"220-welcome\r\n to the\r\n220 server\r\n"], indirect=True
)
def test_healthcheck_ok(tiny_server: TinyServer, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["healthcheck", "--port", str(tiny_server.port), "--timeout", "5"]
    assert cli.main(argv) == 0
    tiny_server.close()
    assert tiny_server.received == b"QUIT\r\n"
    assert capsys.readouterr().out.startswith("ftpd healthcheck: ok (220")


@pytest.mark.parametrize("tiny_server", [b"421 too many\r\n", b"SSH-2.0-x\r\n"], indirect=True)
def test_healthcheck_wrong_greeting(
    tiny_server: TinyServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["healthcheck", "--port", str(tiny_server.port)]) == 1
    assert "unexpected greeting" in capsys.readouterr().err


@pytest.mark.parametrize("tiny_server", [b""], indirect=True)
def test_healthcheck_silent_server_times_out(tiny_server: TinyServer) -> None:
    argv = ["healthcheck", "--port", str(tiny_server.port), "--timeout", "0.3"]
    assert cli.main(argv) == 1


def test_healthcheck_closed_port_in_a_subprocess() -> None:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        port = sock.getsockname()[1]
    result = run_module("healthcheck", "--host", "127.0.0.1", "--port", str(port))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("tiny_server", [b"220 from env\r\n"], indirect=True)
def test_healthcheck_defaults_follow_the_server_settings(tiny_server: TinyServer) -> None:
    # In a container the server listens on 0.0.0.0; the probe must use loopback.
    env = {"FTPD_HOST": "0.0.0.0", "FTPD_PORT": str(tiny_server.port)}
    assert cli.healthcheck([], env) == 0
