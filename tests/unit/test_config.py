"""Config loading: precedence flag > env > file > default, strict parsing, one-line errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ftpd.config import (
    FIELD_NAMES,
    FIELD_TYPES,
    Config,
    ConfigError,
    env_name,
    flag_name,
    pasv_range,
    show,
    validate,
)
from ftpd.config_load import load_config, read_toml

REPO = Path(__file__).resolve().parents[2]

# A valid non-default value for every field; test_every_field_has_an_alternative keeps it complete.
ALTERNATIVES: dict[str, object] = {
    "host": "::1",
    "port": 2222,
    "root": "/srv/ftp",
    "user": "bob",
    "password": "s3cret pw",
    "users_file": "users.toml",
    "users_db": "sqlite:///users.db",
    "users_cache_seconds": 0.5,
    "anonymous": True,
    "anonymous_root": "/srv/pub",
    "anonymous_write": True,
    "pasv_ports": "62000-62010",
    "pasv_address": "203.0.113.7",
    "pasv_promiscuous": True,
    "port_promiscuous": True,
    "max_sessions": 7,
    "max_per_ip": 0,
    "idle_timeout": 12.5,
    "data_timeout": 3.0,
    "login_timeout": 9.0,
    "max_login_attempts": 5,
    "login_fail_delay": 0.0,
    "banner": "Hello there",
    "log_level": "debug",
    "loop": "asyncio",
    "backlog": 16,
    "io_threads": 4,
    "atomic_uploads": False,
    "io_inline": False,
    "fsync_uploads": False,
    "workers": 2,
    "shutdown_grace": 2.5,
    "tls": "explicit",
    "tls_cert": "/etc/ftpd/cert.pem",
    "tls_key": "/etc/ftpd/key.pem",
    "implicit_tls_port": 990,
    "tls_min_version": "1.3",
    "tls_require_session_reuse": False,
    "tls_handshake_timeout": 3.0,
    "log_format": "json",
    "xferlog_file": "/var/log/xferlog",
    "metrics_port": 9102,
    "metrics_host": "0.0.0.0",
    "ban_after": 5,
    "per_ip_ipv6_prefix": 56,
    "ban_seconds": 60.0,
    "storage": "s3",
    "s3_endpoint": "http://127.0.0.1:9000",
    "s3_bucket": "ftpd-data",
    "s3_prefix": "ftp/homes",
    "s3_region": "eu-west-1",
    "proxy_protocol": "required",
    "proxy_trusted": "10.0.0.0/8,fd00::/8",
    "proxy_timeout": 3.0,
    "max_download_rate": 2 << 20,
    "max_upload_rate": 512 << 10,
    "max_total_download_rate": 100 << 20,
    "max_total_upload_rate": 50 << 20,
    "user_quota_bytes": 1 << 30,
    "user_quota_files": 1000,
    "on_upload": "/usr/local/bin/scan --quiet",
    "on_download": "logger downloaded",
    "on_delete": "logger deleted",
    "on_rename": "logger renamed",
    "on_login": "logger login",
    "hook_timeout": 5.0,
    "hook_concurrency": 8,
    "webhook_url": "https://hooks.example.com/ftp",
    "webhook_events": "all",
    "webhook_timeout": 3.0,
    "webhook_retries": 2,
    "webhook_queue": 50,
    "pid_file": "/run/ftpd.pid",
}
# Values that need another key to validate, given through the environment (the lowest source).
COMPANIONS: dict[str, dict[str, str]] = {
    "storage": {"FTPD_S3_BUCKET": "ftpd-data"},
    "proxy_protocol": {"FTPD_PROXY_TRUSTED": "10.0.0.5/32"},  # no default trusted range
}


def as_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def as_toml(value: object) -> str:
    if isinstance(value, bool | int | float):
        return as_text(value)
    return show(value)  # JSON string syntax is TOML basic-string syntax for these values


def write_toml(path: Path, values: dict[str, object]) -> Path:
    path.write_text("".join(f"{k} = {as_toml(v)}\n" for k, v in values.items()))
    return path


def test_every_field_has_an_alternative() -> None:
    assert set(ALTERNATIVES) == set(FIELD_NAMES)
    for name, value in ALTERNATIVES.items():
        assert value != getattr(Config(), name), name


def test_no_sources_gives_defaults() -> None:
    assert load_config([], {}) == Config()


@pytest.mark.parametrize("name", FIELD_NAMES)
def test_every_field_settable_from_file_env_and_flag(name: str, tmp_path: Path) -> None:
    value = ALTERNATIVES[name]
    env = COMPANIONS.get(name, {})
    path = write_toml(tmp_path / "ftpd.toml", {name: value})
    assert getattr(load_config(["--config", str(path)], env), name) == value
    assert getattr(load_config([], {**env, env_name(name): as_text(value)}), name) == value
    assert getattr(load_config([f"{flag_name(name)}={as_text(value)}"], env), name) == value
    # The TOML spelling of a flag is accepted as well.
    assert getattr(load_config([f"--{name}", as_text(value)], env), name) == value


def test_precedence_flag_over_env_over_file_over_default(tmp_path: Path) -> None:
    path = write_toml(
        tmp_path / "ftpd.toml",
        {"port": 2001, "anonymous": True, "banner": "from file", "idle_timeout": 10.0,
         "max_per_ip": 9, "atomic_uploads": False},
    )  # fmt: skip
    env = {
        "FTPD_CONFIG": str(path),
        "FTPD_PORT": "2002",
        "FTPD_ANONYMOUS": "no",
        "FTPD_MAX_PER_IP": "8",
        "FTPD_LOG_LEVEL": "warning",
    }
    config = load_config(["--port", "2003", "--max-per-ip=7", "--atomic-uploads"], env)
    assert config.port == 2003  # flag > env > file
    assert config.max_per_ip == 7  # flag > env > file
    assert config.atomic_uploads is True  # flag > file
    assert config.anonymous is False  # env > file
    assert config.log_level == "warning"  # env > default
    assert config.banner == "from file"  # file > default
    assert config.idle_timeout == 10.0
    assert config.user == "user"  # default


def test_config_flag_wins_over_config_env(tmp_path: Path) -> None:
    a = write_toml(tmp_path / "a.toml", {"port": 1111})
    b = write_toml(tmp_path / "b.toml", {"port": 2222})
    assert load_config([], {"FTPD_CONFIG": str(a)}).port == 1111
    assert load_config(["--config", str(b)], {"FTPD_CONFIG": str(a)}).port == 2222


@pytest.mark.parametrize(
    ("text", "expected"),
    [("true", True), ("FALSE", False), ("Yes", True), ("no", False), ("1", True), ("0", False),
     ("On", True), ("oFF", False)],
)  # fmt: skip
def test_bool_words_in_env_and_flags(text: str, expected: bool) -> None:
    assert load_config([], {"FTPD_ANONYMOUS": text}).anonymous is expected
    assert load_config([f"--anonymous={text}"], {}).anonymous is expected
    assert load_config(["--anonymous", text], {}).anonymous is expected


def test_bool_flag_forms() -> None:
    env = {"FTPD_ANONYMOUS": "true", "FTPD_ATOMIC_UPLOADS": "true"}
    assert load_config(["--anonymous"], {}).anonymous is True
    assert load_config(["--no-anonymous"], env).anonymous is False
    assert load_config(["--no-atomic-uploads"], env).atomic_uploads is False
    # The last mention wins, as usual for flags.
    assert load_config(["--anonymous", "--no-anonymous"], {}).anonymous is False
    assert load_config(["--no-anonymous", "--anonymous"], {}).anonymous is True


@pytest.mark.parametrize(
    ("env", "key", "value"),
    [
        ({"FTPD_ANONYMOUS": "maybe"}, "anonymous", "maybe"),
        ({"FTPD_ANONYMOUS": ""}, "anonymous", ""),
        ({"FTPD_PORT": "1_000"}, "port", "1_000"),
        ({"FTPD_PORT": "21.0"}, "port", "21.0"),
        ({"FTPD_PORT": "0x15"}, "port", "0x15"),
        ({"FTPD_PORT": "\u0662\u0661"}, "port", "\u0662\u0661"),  # Arabic-Indic digits
        ({"FTPD_PORT": ""}, "port", ""),
        ({"FTPD_IDLE_TIMEOUT": "inf"}, "idle_timeout", "inf"),
        ({"FTPD_IDLE_TIMEOUT": "nan"}, "idle_timeout", "nan"),
        ({"FTPD_IDLE_TIMEOUT": "5s"}, "idle_timeout", "5s"),
    ],
)
def test_strict_parsing_errors_name_key_and_value(
    env: dict[str, str], key: str, value: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_config([], env)
    message = str(info.value)
    assert message.startswith(f"invalid value for {key} ")
    assert show(value) in message
    assert "\n" not in message


def test_numbers_accept_plain_forms() -> None:
    config = load_config([], {"FTPD_PORT": "+21", "FTPD_IDLE_TIMEOUT": "1e2", "FTPD_BACKLOG": "8"})
    assert (config.port, config.idle_timeout, config.backlog) == (21, 100.0, 8)
    assert load_config(["--data-timeout", ".5"], {}).data_timeout == 0.5


def test_enumerations_are_case_insensitive() -> None:
    config = load_config(["--log-level", "DEBUG"], {"FTPD_LOOP": "AsyncIO"})
    assert (config.log_level, config.loop) == ("debug", "asyncio")


def test_flag_errors_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unrecognized arguments: --prot"):
        load_config(["--prot", "21"], {})
    with pytest.raises(ConfigError, match="--port"):
        load_config(["--port"], {})
    with pytest.raises(ConfigError, match="unrecognized"):
        load_config(["--po", "21"], {})  # no abbreviations: --po must not mean --port


def test_unknown_toml_key(tmp_path: Path) -> None:
    path = tmp_path / "ftpd.toml"
    path.write_text('port = 2121\npasv_port = "61000-61010"\n')
    with pytest.raises(ConfigError) as info:
        load_config(["--config", str(path)], {})
    assert str(info.value) == (
        f'unknown key "pasv_port" in config file {show(str(path))} (did you mean "pasv_ports"?)'
    )
    path.write_text("[server]\nport = 2121\n")
    with pytest.raises(ConfigError, match='unknown key "server"'):
        read_toml(str(path))


@pytest.mark.parametrize(
    ("line", "key"),
    [('port = "2121"', "port"), ('anonymous = "yes"', "anonymous"),
     ("idle_timeout = true", "idle_timeout"), ("banner = 5", "banner"), ("port = 21.0", "port")],
)  # fmt: skip
def test_toml_types_are_strict(tmp_path: Path, line: str, key: str) -> None:
    path = tmp_path / "ftpd.toml"
    path.write_text(line + "\n")
    with pytest.raises(ConfigError, match=f"^invalid value for {key} "):
        read_toml(str(path))


def test_toml_int_for_float_field(tmp_path: Path) -> None:
    path = write_toml(tmp_path / "ftpd.toml", {"idle_timeout": 30})
    config = load_config(["--config", str(path)], {})
    assert config.idle_timeout == 30.0 and isinstance(config.idle_timeout, float)


def test_unreadable_or_invalid_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(["--config", str(tmp_path / "missing.toml")], {})
    bad = tmp_path / "bad.toml"
    bad.write_text("port = \n")
    with pytest.raises(ConfigError, match="is not valid TOML") as info:
        load_config([], {"FTPD_CONFIG": str(bad)})
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("port", 65536, "1-65535"),
        ("port", -1, "1-65535"),
        ("pasv_ports", "70000-1", "FIRST-LAST with 1024 <= FIRST <= LAST <= 65535"),
        ("pasv_ports", "1023-2000", "FIRST-LAST"),
        ("pasv_ports", "62000-61000", "FIRST-LAST"),
        ("pasv_ports", "62000", "FIRST-LAST"),
        ("pasv_ports", "a-b", "FIRST-LAST"),
        ("log_level", "verbose", "debug, info, warning, error"),
        ("loop", "trio", "auto, uvloop, asyncio"),
        ("idle_timeout", 0.0, "> 0"),
        ("data_timeout", -1.0, "> 0"),
        ("login_timeout", float("inf"), "> 0"),
        ("login_fail_delay", -0.5, ">= 0"),
        ("max_sessions", -1, ">= 0"),
        ("max_per_ip", -5, ">= 0"),
        ("max_login_attempts", -1, ">= 0"),
        ("io_threads", 0, ">= 1"),
        ("backlog", 0, ">= 1"),
        ("pasv_address", "not_a_host!", "IPv4 address or a host name"),
        ("pasv_address", "2001:db8::1", "IPv4 address"),
        ("pasv_address", "1.2.3.256", "host name"),
        ("host", "", "IP address or a host name"),
        ("host", "bad host", "IP address or a host name"),
        ("user", "", "non-empty"),
        ("banner", "two\r\nlines", "one line"),
        ("root", "", "directory"),
    ],
)
def test_validation_errors_name_key_and_value(key: str, value: object, expected: str) -> None:
    config = dataclasses.replace(Config(), **{key: value})
    with pytest.raises(ConfigError) as info:
        validate(config)
    message = str(info.value)
    assert message.startswith(f"invalid value for {key}: {show(value)} (expected ")
    assert expected in message
    assert "\n" not in message


def test_exact_message_for_pasv_ports() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(["--pasv-ports", "70000-1"], {})
    assert str(info.value) == (
        'invalid value for pasv_ports: "70000-1" '
        "(expected FIRST-LAST with 1024 <= FIRST <= LAST <= 65535)"
    )


def test_password_error_does_not_echo_the_password() -> None:
    with pytest.raises(ConfigError) as info:
        validate(Config(password="hunter2\r\nSITE x"))
    assert "hunter2" not in str(info.value) and "password" in str(info.value)


def test_wrong_python_type_in_code_built_config() -> None:
    with pytest.raises(ConfigError, match='^invalid value for port: "2121"'):
        validate(Config(port="2121"))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="^invalid value for anonymous: 1 "):
        validate(Config(anonymous=1))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("key", "value"),
    [("port", 0), ("port", 65535), ("pasv_ports", "1024-1024"), ("pasv_ports", "65535-65535"),
     ("pasv_ports", " 61000 - 61010 "), ("pasv_address", ""), ("pasv_address", "203.0.113.5"),
     ("pasv_address", "ftp.example.com"), ("pasv_address", "localhost."), ("host", "::"),
     ("host", "0.0.0.0"), ("host", "localhost"), ("login_fail_delay", 0.0), ("max_sessions", 0),
     ("log_level", "error"), ("loop", "uvloop"), ("idle_timeout", 0.001)],
)  # fmt: skip
def test_validation_accepts_edge_values(key: str, value: object) -> None:
    validate(dataclasses.replace(Config(), **{key: value}))


def test_pasv_range() -> None:
    assert pasv_range(Config()) == (61000, 61999)
    assert pasv_range(Config(pasv_ports=" 62000 - 62005 ")) == (62000, 62005)
    with pytest.raises(ConfigError, match="pasv_ports"):
        pasv_range(Config(pasv_ports="5-4"))


def test_example_config_file_lists_every_key_with_its_default() -> None:
    path = REPO / "config" / "ftpd.toml"
    values = read_toml(str(path))
    assert set(values) == set(FIELD_NAMES)
    assert Config(**values) == Config()
    assert load_config(["--config", str(path)], {}) == Config()
    for name, value in values.items():
        assert type(value) is FIELD_TYPES[name], name
