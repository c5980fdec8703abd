"""Password hashing, the users file and the Authenticator."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import argon2
import pytest

from ftpd.auth import (
    NEED_CACHE_MISS,
    Account,
    Authenticator,
    CachedAuthenticator,
    ConfigAuthenticator,
    Credentials,
    Peer,
    hashing,
    single_user_enabled,
)
from ftpd.auth.users import UsersFileError, load_users
from ftpd.config import Config, ConfigError

REPO = Path(__file__).resolve().parents[2]
FAST_LN = 4  # hashes for tests: the parameters travel in the string, so verify is fast too


def fast_hash(password: str) -> str:
    return hashing.hash_password(password, ln=FAST_LN)


def users_toml(path: Path, *tables: dict[str, object]) -> Path:
    lines = []
    for table in tables:
        lines.append("[[users]]")
        for key, value in table.items():
            text = str(value) if isinstance(value, int) else '"' + str(value) + '"'
            lines.append(f"{key} = {text}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def homes(tmp_path: Path) -> Path:
    for name in ("alice", "bob", "root", "pub"):
        (tmp_path / name).mkdir()
    return tmp_path


@pytest.fixture
def users_file(homes: Path) -> Path:
    return users_toml(
        homes / "users.toml",
        {"name": "alice", "password_hash": fast_hash("wonderland"), "home": "alice",
         "perms": "elr", "max_sessions": 2},
        {"name": "bob", "password_hash": fast_hash("builder"), "home": str(homes / "bob")},
    )  # fmt: skip


class CountingVerify:
    """Wraps hashing.verify_password to count calls and record the thread they ran in."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.real: Callable[[str, str], bool] = hashing.verify_password

    def __call__(self, password: str, encoded: str) -> bool:
        self.calls.append((encoded, threading.get_ident()))
        return self.real(password, encoded)


@pytest.fixture
def verify(monkeypatch: pytest.MonkeyPatch) -> CountingVerify:
    counter = CountingVerify()
    monkeypatch.setattr(hashing, "verify_password", counter)
    return counter


# --- hashing ---------------------------------------------------------------------------------


def test_hash_format_and_round_trip() -> None:
    encoded = hashing.hash_password("correct horse")
    assert re.fullmatch(
        rf"\$scrypt\$ln={hashing.SCRYPT_LN},r=8,p=1\$[A-Za-z0-9+/]{{22}}\$[A-Za-z0-9+/]{{43}}",
        encoded,
    )
    assert hashing.verify_password("correct horse", encoded)
    assert not hashing.verify_password("correct horse ", encoded)
    assert not hashing.verify_password("", encoded)
    assert hashing.hash_password("correct horse") != encoded  # fresh salt every time


def test_non_ascii_and_surrogate_passwords() -> None:
    for password in ("pässwörd", "\udcff\udc80raw bytes", "\ud800lone"):
        encoded = fast_hash(password)
        assert hashing.verify_password(password, encoded)
        assert not hashing.verify_password(password[1:], encoded)


def test_passlib_alphabet_is_accepted() -> None:
    # passlib writes "." for "+" in its base64; both spellings name the same bytes.
    for _ in range(20):
        encoded = fast_hash("pw")
        if "+" in encoded:
            break
    assert "+" in encoded
    assert hashing.verify_password("pw", encoded.replace("+", "."))


@pytest.mark.parametrize(
    "encoded",
    ["", "plain", "$scrypt$", "$scrypt$ln=4,r=8,p=1$c2FsdA$", "$scrypt$ln=4,r=8,p=1$!!!$aGFzaA",
     "$scrypt$ln=40,r=8,p=1$c2FsdHNhbHQ$" + "A" * 43, "$scrypt$ln=4,r=0,p=1$c2FsdA$" + "A" * 43,
     "$scrypt$ln=4,r=8,p=1$c2FsdA$QUFB", "$md5$abc", "$argon2id$garbage"],
)  # fmt: skip
def test_malformed_hashes_verify_false_and_fail_the_check(encoded: str) -> None:
    assert hashing.verify_password("pw", encoded) is False
    with pytest.raises(ValueError):
        hashing.check_hash(encoded)


def test_argon2_hashes() -> None:
    hasher = argon2.PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)
    encoded = hasher.hash("s3cret")
    hashing.check_hash(encoded)
    assert hashing.verify_password("s3cret", encoded)
    assert not hashing.verify_password("s3cret!", encoded)


def test_argon2_without_the_package(monkeypatch: pytest.MonkeyPatch, homes: Path) -> None:
    encoded = argon2.PasswordHasher(time_cost=1, memory_cost=64, parallelism=1).hash("x")
    monkeypatch.setattr(hashing, "_argon2", lambda: None)
    assert hashing.verify_password("x", encoded) is False
    path = users_toml(homes / "u.toml", {"name": "carol", "password_hash": encoded, "home": "."})
    with pytest.raises(UsersFileError) as info:
        load_users(str(path))
    message = str(info.value)
    assert '"carol"' in message and "password_hash" in message and "argon2-cffi" in message


# --- users file ------------------------------------------------------------------------------


def test_load_users(users_file: Path, homes: Path) -> None:
    alice, bob = load_users(str(users_file))
    assert (alice.name, alice.home, alice.perms, alice.max_sessions) == (
        "alice", os.path.realpath(homes / "alice"), "elr", 2
    )  # fmt: skip
    assert (bob.name, bob.home, bob.perms, bob.max_sessions) == (
        "bob", os.path.realpath(homes / "bob"), "elradfmwMT", 0
    )  # fmt: skip


def test_relative_home_is_relative_to_the_file(
    homes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (homes / "etc").mkdir()
    path = users_toml(
        homes / "etc" / "users.toml",
        {"name": "a", "password_hash": fast_hash("x"), "home": "../alice"},
    )
    monkeypatch.chdir(homes / "bob")  # the current directory must not matter
    assert load_users(str(path))[0].home == os.path.realpath(homes / "alice")


def test_perms_are_canonicalised(homes: Path) -> None:
    path = users_toml(
        homes / "u.toml",
        {"name": "a", "password_hash": fast_hash("x"), "home": ".", "perms": "rle"},
    )
    assert load_users(str(path))[0].perms == "elr"


GOOD = {"name": "dave", "password_hash": "$scrypt$ln=4,r=8,p=1$c2FsdA$" + "A" * 43, "home": "."}


@pytest.mark.parametrize(
    ("table", "fragments"),
    [
        ({k: v for k, v in GOOD.items() if k != "name"}, ["users[0]", 'missing key "name"']),
        ({k: v for k, v in GOOD.items() if k != "password_hash"}, ['"dave"', "password_hash"]),
        ({k: v for k, v in GOOD.items() if k != "home"}, ['"dave"', 'missing key "home"']),
        ({**GOOD, "shell": "/bin/sh"}, ['"dave"', 'unknown key "shell"']),
        ({**GOOD, "perms": "elrx"}, ['"dave"', "perms", '"elrx"', 'unknown: "x"']),
        ({**GOOD, "perms": 7}, ['"dave"', "perms"]),
        ({**GOOD, "home": "nope"}, ['"dave"', "home", '"nope"', "not a directory"]),
        ({**GOOD, "home": "users.toml"}, ['"dave"', "home", "not a directory"]),
        (
            {**GOOD, "password_hash": "plaintext"},
            ['"dave"', "password_hash", "unknown hash format"],
        ),
        ({**GOOD, "max_sessions": -1}, ['"dave"', "max_sessions", "-1"]),
        ({**GOOD, "name": ""}, ['""', "name"]),
        ({**GOOD, "name": 5}, ["users[0]", "name"]),
    ],
)
def test_users_file_errors(homes: Path, table: dict[str, object], fragments: list[str]) -> None:
    path = users_toml(homes / "users.toml", table)
    with pytest.raises(UsersFileError) as info:
        load_users(str(path))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f'users file "{path}": ')
    for fragment in fragments:
        assert fragment in message


def test_users_file_structure_errors(homes: Path) -> None:
    path = homes / "users.toml"
    users_toml(path, GOOD, {**GOOD, "home": "alice"})
    with pytest.raises(UsersFileError, match='user "dave": duplicate name'):
        load_users(str(path))
    path.write_text('[[user]]\nname = "x"\n')
    with pytest.raises(UsersFileError, match='unknown key "user"'):
        load_users(str(path))
    path.write_text('users = ["x"]\n')
    with pytest.raises(UsersFileError, match="array of tables"):
        load_users(str(path))
    path.write_text("[[users]\n")
    with pytest.raises(UsersFileError, match="not valid TOML"):
        load_users(str(path))
    with pytest.raises(UsersFileError, match="cannot read"):
        load_users(str(homes / "missing.toml"))
    path.write_text("")
    assert load_users(str(path)) == []
    assert issubclass(UsersFileError, ConfigError)


def test_example_users_file_has_a_real_hash_for_change_me(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "ftp-root").mkdir()  # the example's home is ../ftp-root, relative to the file
    path = tmp_path / "config" / "users.toml"
    shutil.copy(REPO / "config" / "users.example.toml", path)
    (entry,) = load_users(str(path))
    assert entry.home == os.path.realpath(tmp_path / "ftp-root")
    assert hashing.verify_password("change-me", entry.password_hash)
    assert not hashing.verify_password("change-me!", entry.password_hash)


# --- Authenticator ---------------------------------------------------------------------------


async def test_single_user_fast_path(homes: Path, verify: CountingVerify) -> None:
    auth = ConfigAuthenticator.from_config(Config(root=str(homes / "root"), password="pw"))
    account = await auth.lookup("user", "pw")
    assert account == Account("user", os.path.realpath(homes / "root"), "elradfmwMT")
    assert await auth.lookup("user", "pw ") is None
    assert await auth.lookup("user", "") is None
    assert await auth.lookup("User", "pw") is None  # names are case-sensitive
    assert await auth.lookup("nobody", "pw") is None
    assert verify.calls == []  # no hashing in single-user mode, not even for unknown names


@pytest.mark.parametrize("password", ["pässwörd", "\udcff\udc80raw bytes", "\ud800lone"])
def test_single_user_password_beyond_utf8(homes: Path, password: str) -> None:
    """Undecodable wire bytes (surrogate escapes) and a lone surrogate compare as themselves."""
    auth = ConfigAuthenticator.from_config(Config(root=str(homes / "root"), password=password))
    assert isinstance(auth.lookup_cached("user", password), Account)
    assert auth.lookup_cached("user", password[1:]) is None
    assert auth.lookup_cached("user", password + "\ud800") is None


async def test_single_user_with_empty_password_never_matches(homes: Path) -> None:
    auth = ConfigAuthenticator.from_config(Config(root=str(homes / "root"), password=""))
    assert await auth.lookup("user", "") is None
    assert not auth.is_known_fast("user")


async def test_users_file_good_bad_unknown(
    homes: Path, users_file: Path, verify: CountingVerify
) -> None:
    auth = ConfigAuthenticator.from_config(
        Config(root=str(homes / "root"), users_file=str(users_file))
    )
    assert not single_user_enabled(Config(users_file=str(users_file)))
    account = await auth.lookup("alice", "wonderland")
    assert account == Account("alice", os.path.realpath(homes / "alice"), "elr", False, 2)
    assert await auth.lookup("bob", "wonderland") is None
    assert await auth.lookup("alice", "WONDERLAND") is None
    # The single user is off (users file, no password): "user" is just an unknown name.
    assert await auth.lookup("user", "") is None
    assert await auth.lookup("mallory", "wonderland") is None
    # Every attempt hashed (unknown names too: no timing oracle), off the event loop's thread.
    assert len(verify.calls) == 5
    assert all(ident != threading.get_ident() for _, ident in verify.calls)


async def test_successful_verification_is_cached(
    homes: Path, users_file: Path, verify: CountingVerify
) -> None:
    auth = ConfigAuthenticator.from_config(
        Config(root=str(homes / "root"), users_file=str(users_file))
    )
    assert (await auth.lookup("bob", "builder")) is not None
    assert len(verify.calls) == 1
    for _ in range(3):
        account = await auth.lookup("bob", "builder")
        assert account is not None and account.name == "bob"
    assert len(verify.calls) == 1  # cache hits: the hasher was not called again
    # A wrong password is never cached, and a cached pair does not help another name.
    assert await auth.lookup("bob", "builder!") is None
    assert await auth.lookup("alice", "builder") is None
    assert len(verify.calls) == 3


async def test_authenticate_cached_answers_without_hashing(
    homes: Path, users_file: Path, verify: CountingVerify
) -> None:
    config = Config(
        root=str(homes / "root"), users_file=str(users_file), password="pw", anonymous=True
    )
    auth = ConfigAuthenticator.from_config(config)
    assert auth.lookup_cached("user", "pw") == Account(
        "user", os.path.realpath(homes / "root"), "elradfmwMT"
    )
    # Next to a users file, the single user's wrong password takes the hashed path like any
    # other name's, so its answer time does not reveal the name (issue 16 item 8).
    assert auth.lookup_cached("user", "nope") is NEED_CACHE_MISS
    anonymous = auth.lookup_cached("ftp", "")
    assert isinstance(anonymous, Account) and anonymous.anonymous
    # Users-file names (known or not) need a verification until one has succeeded.
    assert auth.lookup_cached("bob", "builder") is NEED_CACHE_MISS
    assert auth.lookup_cached("mallory", "x") is NEED_CACHE_MISS
    assert verify.calls == []
    assert (await auth.lookup("bob", "builder")) is not None
    cached = auth.lookup_cached("bob", "builder")
    assert isinstance(cached, Account) and cached.name == "bob"
    assert auth.lookup_cached("bob", "builder2") is NEED_CACHE_MISS
    assert len(verify.calls) == 1
    # Single-user mode has nothing to hash: unknown names are answered at once.
    single = ConfigAuthenticator.from_config(Config(root=str(homes / "root"), password="pw"))
    assert single.lookup_cached("mallory", "x") is None


async def test_concurrent_logins(homes: Path, users_file: Path) -> None:
    auth = ConfigAuthenticator.from_config(
        Config(root=str(homes / "root"), users_file=str(users_file))
    )
    results = await asyncio.gather(
        *(auth.lookup("alice" if i % 2 else "bob", "wonderland") for i in range(10))
    )
    assert [r is not None for r in results] == [i % 2 == 1 for i in range(10)]


@pytest.mark.parametrize("name", ["anonymous", "ftp", "ANONYMOUS", "Ftp"])
@pytest.mark.parametrize("password", ["", "guest@example.com"])
async def test_anonymous(homes: Path, name: str, password: str) -> None:
    config = Config(root=str(homes / "root"), password="pw", anonymous=True)
    account = await ConfigAuthenticator.from_config(config).lookup(name, password)
    assert account == Account("anonymous", os.path.realpath(homes / "root"), "elr", True)


async def test_anonymous_root_and_write(homes: Path) -> None:
    config = Config(
        root=str(homes / "root"),
        password="pw",
        anonymous=True,
        anonymous_root=str(homes / "pub"),
        anonymous_write=True,
    )
    account = await ConfigAuthenticator.from_config(config).lookup("anonymous", "")
    assert account == Account("anonymous", os.path.realpath(homes / "pub"), "elradfmwMT", True)


async def test_anonymous_disabled(homes: Path, users_file: Path, verify: CountingVerify) -> None:
    auth = ConfigAuthenticator.from_config(Config(root=str(homes / "root"), password="pw"))
    assert await auth.lookup("anonymous", "") is None
    assert await auth.lookup("ftp", "x@y") is None
    assert not auth.is_known_fast("anonymous")
    auth = ConfigAuthenticator.from_config(
        Config(root=str(homes / "root"), users_file=str(users_file))
    )
    assert await auth.lookup("anonymous", "") is None
    assert len(verify.calls) == 1  # an unknown name: the dummy verification ran


async def test_anonymous_only_server(homes: Path) -> None:
    path = homes / "empty.toml"
    path.write_text("users = []\n")
    config = Config(root=str(homes / "root"), users_file=str(path), anonymous=True)
    auth = ConfigAuthenticator.from_config(config)
    assert await auth.lookup("user", "") is None
    assert await auth.lookup("someone", "x") is None
    assert (await auth.lookup("ftp", "")) is not None
    assert [a.name for a in auth.accounts] == ["anonymous"]


async def test_single_user_and_users_file_together(homes: Path, users_file: Path) -> None:
    config = Config(root=str(homes / "root"), users_file=str(users_file), password="pw")
    auth = ConfigAuthenticator.from_config(config)
    assert [a.name for a in auth.accounts] == ["user", "alice", "bob"]
    assert (await auth.lookup("user", "pw")) is not None
    assert (await auth.lookup("bob", "builder")) is not None
    assert auth.is_known_fast("alice") and not auth.is_known_fast("mallory")


def test_name_clashes(homes: Path, users_file: Path) -> None:
    with pytest.raises(ConfigError, match='user "alice" is both the single user'):
        ConfigAuthenticator.from_config(
            Config(root=str(homes), users_file=str(users_file), user="alice", password="x")
        )
    with pytest.raises(ConfigError, match='user "FTP" clashes with anonymous'):
        ConfigAuthenticator.from_config(
            Config(root=str(homes), user="FTP", password="x", anonymous=True)
        )
    # Without anonymous logins the name "ftp" is an ordinary user name.
    ConfigAuthenticator.from_config(Config(root=str(homes), user="ftp", password="x"))


def test_users_file_errors_surface_from_from_config(homes: Path) -> None:
    with pytest.raises(UsersFileError, match="cannot read"):
        ConfigAuthenticator.from_config(Config(users_file=str(homes / "missing.toml")))


async def test_config_authenticator_implements_the_protocol(homes: Path, users_file: Path) -> None:
    """The built-in store is an ``Authenticator`` (credentials and peer in) with the fast path."""
    config = Config(root=str(homes / "root"), users_file=str(users_file), password="pw")
    auth = ConfigAuthenticator.from_config(config)
    assert isinstance(auth, Authenticator) and isinstance(auth, CachedAuthenticator)
    peer = Peer("127.0.0.1", 40000)
    account = await auth.authenticate(Credentials("bob", "builder"), peer)
    assert isinstance(account, Account) and account.name == "bob"
    assert await auth.authenticate(Credentials("bob", "nope"), peer) is None
    assert auth.authenticate_cached(Credentials("user", "pw"), peer) == Account(
        "user", os.path.realpath(homes / "root"), "elradfmwMT"
    )
    assert "builder" not in repr(Credentials("bob", "builder"))  # never in a log line
