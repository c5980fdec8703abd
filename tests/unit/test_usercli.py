"""``ftpd user add|passwd|del|list`` on the users file (comments and layout kept, atomic) and on
the databases (SQLite, a real PostgreSQL), each change then read back the way the server reads it.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ftpd import cli
from ftpd.auth import hashing
from ftpd.auth.admin import open_target
from ftpd.auth.users import load_users

REPO = Path(__file__).resolve().parents[2]

COMMENTED = """\
# Our FTP accounts. Ask ops before adding one.

[[users]]
name = "alice"   # the boss
password_hash = "{hash}"
home = "alice"   # relative to this file
perms = "elr"
"""


def run(argv: list[str], stdin: str, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    return cli.main(["user", *argv])


@pytest.fixture
def users(tmp_path: Path) -> Path:
    (tmp_path / "alice").mkdir()
    path = tmp_path / "users.toml"
    path.write_text(COMMENTED.format(hash=hashing.hash_password("a", ln=4)))
    return path


def test_add_keeps_comments_and_layout(
    users: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    before = users.read_text()
    argv = ["add", "bob", "--home", str(tmp_path / "bob"), "--perms", "rle", "--max-sessions", "3"]
    argv += ["--quota-bytes", "10G", "--max-download-rate", "512K", "--users-file", str(users)]
    assert run(argv, "builder pw\n", monkeypatch) == 0
    out, err = capsys.readouterr()
    assert 'user "bob" added' in out and "created the home" in out
    assert "not enforced yet" in err
    text = users.read_text()
    assert text.startswith(before)  # every byte of the old file is still there, in place
    alice, bob = load_users(str(users))
    assert (bob.name, bob.home, bob.perms, bob.max_sessions) == (
        "bob", str((tmp_path / "bob").resolve()), "elr", 3)  # fmt: skip
    assert (bob.quota_bytes, bob.max_download_rate) == (10 << 30, 512 << 10)
    assert hashing.verify_password("builder pw", bob.password_hash)
    assert "builder pw" not in text and "builder pw" not in out + err
    assert oct(users.stat().st_mode & 0o777) == oct(0o644 & ~_umask())  # mode kept


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_passwd_and_del_keep_the_rest(
    users: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = str(tmp_path / "alice")
    assert run(["add", "bob", "--home", home, "--users-file", str(users)], "b\n", monkeypatch) == 0
    assert run(["passwd", "alice", "--users-file", str(users)], "new pw\n", monkeypatch) == 0
    text = users.read_text()
    assert '"alice"   # the boss' in text and "# relative to this file" in text
    alice = load_users(str(users))[0]
    assert hashing.verify_password("new pw", alice.password_hash)
    assert run(["del", "alice", "--users-file", str(users)], "", monkeypatch) == 0
    assert [e.name for e in load_users(str(users))] == ["bob"]
    assert users.read_text().startswith("# Our FTP accounts. Ask ops before adding one.\n")


@pytest.mark.parametrize(
    ("argv", "stdin", "message"),
    [(["add", "alice", "--home", "x"], "pw\n", 'user "alice" already exists'),
     (["add", "bob", "--home", "x", "--perms", "rwz"], "pw\n", 'invalid value for --perms: "rwz"'),
     (["add", "bob", "--home", "x", "--quota-bytes", "-1"], "pw\n", "--quota-bytes"),
     (["add", "bob", "--home", "x", "--max-upload-rate", "2T"], "pw\n", "--max-upload-rate"),
     (["add", "bob", "--home", "x", "--max-sessions", "two"], "pw\n", "--max-sessions"),
     (["add", "bo\x01b", "--home", "x"], "pw\n", "invalid value for name"),
     (["add", "bob", "--home", "x"], "\n", "empty password"),
     (["passwd", "mallory"], "pw\n", 'no user "mallory"'),
     (["del", "mallory"], "", 'no user "mallory"')],
)  # fmt: skip
def test_refusals_are_one_line_and_change_nothing(
    users: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    stdin: str,
    message: str,
) -> None:
    before = users.read_text()
    monkeypatch.chdir(users.parent)
    assert run([*argv, "--users-file", str(users)], stdin, monkeypatch) == 1
    err = capsys.readouterr().err
    assert err.startswith("ftpd: error: ") and err.count("\n") == 1 and message in err, err
    assert users.read_text() == before
    assert not (users.parent / "x").exists()  # no home made for a refused user
    assert [p.name for p in users.parent.iterdir() if p.name.startswith(".ftpd-")] == []


def test_list_shows_no_hashes(
    users: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["list", "--users-file", str(users)], "", monkeypatch) == 0
    out = capsys.readouterr().out
    assert out.split()[:2] == ["alice", "elr"] and "$scrypt$" not in out


def test_target_from_config_and_no_target(
    users: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FTPD_USERS_FILE", str(users))
    assert run(["list"], "", monkeypatch) == 0
    assert "alice" in capsys.readouterr().out
    monkeypatch.delenv("FTPD_USERS_FILE")
    assert run(["list"], "", monkeypatch) == 2
    assert "give --users-file FILE or --users-db URL" in capsys.readouterr().err


def test_add_help_says_limits_are_not_enforced_yet() -> None:
    proc = subprocess.run([sys.executable, "-m", "ftpd", "user", "add", "--help"],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    assert "limits (not enforced yet)" in text and "--quota-bytes" in text
    assert "--max-download-rate" in text and "standard input" in text


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_the_same_commands_on_a_database(
    kind: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> None:
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'users.db'}"
    else:
        url = request.getfixturevalue("postgres").new_database()
    home = str(tmp_path / "h")
    db = ["--users-db", url]
    assert run(["add", "alice", "--home", home, "--perms", "elr", *db], "a1\n", monkeypatch) == 0
    assert (
        run(["add", "bob", "--home", home, "--quota-files", "100", *db], "b1\n", monkeypatch) == 0
    )
    assert run(["add", "bob", "--home", home, *db], "b2\n", monkeypatch) == 1
    assert 'user "bob" already exists' in capsys.readouterr().err
    assert run(["passwd", "bob", *db], "b2\n", monkeypatch) == 0
    rows = {row["name"]: row for row in open_target("", url).rows()}
    assert hashing.verify_password("b2", rows["bob"]["password_hash"])
    assert rows["bob"]["quota_files"] == 100 and rows["alice"]["perms"] == "elr"
    capsys.readouterr()
    assert run(["list", *db], "", monkeypatch) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == ["alice", "bob"]
    assert run(["del", "alice", *db], "", monkeypatch) == 0
    assert run(["del", "alice", *db], "", monkeypatch) == 1
    assert list({row["name"] for row in open_target("", url).rows()}) == ["bob"]
    if kind == "postgres":
        assert url.split("@")[0].split(":")[-1] not in capsys.readouterr().out  # no password shown
    else:
        assert oct((tmp_path / "users.db").stat().st_mode & 0o777) == oct(0o600)
