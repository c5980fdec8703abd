"""Where a ``Config`` comes from: the TOML file, the ``FTPD_*`` environment and the flags.

``load_config`` reads the three sources (a flag wins over the environment, which wins over the
file, which wins over the defaults in ``config.Config``), converts each raw value to its field's
type with an error that names the key, the value and the source, and validates the result
(``config.validate``). Split from ``config.py``, which keeps the ``Config`` itself and its checks.
"""

from __future__ import annotations

import argparse
import difflib
import tomllib
import typing
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

from ftpd.config import (
    _EXPECTED,
    _FALSE,
    _FLOAT_RE,
    _INT_RE,
    _METAVARS,
    _PASV_EXPECTED,
    _SIZE_EXPECTED,
    _TRUE,
    AUTO_KEYS,
    CONFIG_ENV,
    FIELD_NAMES,
    FIELD_TYPES,
    LOG_LEVELS,
    LOOPS,
    PROXY_MODES,
    SIZE_KEYS,
    STORAGES,
    Config,
    ConfigError,
    _invalid,
    _parse_pasv,
    _type_ok,
    env_name,
    flag_name,
    show,
    validate,
)
from ftpd.sizes import parse_size
from ftpd.version import __version__

# --- converting raw values -------------------------------------------------------------------


def parse_bool(text: str) -> bool:
    """true/false/yes/no/1/0/on/off, case-insensitive; ValueError otherwise."""
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError(text)


def _from_text(key: str, text: str, source: str) -> Any:
    """Convert a string from the environment or a flag to the field's type (strictly)."""
    kind = FIELD_TYPES[key]
    if key in AUTO_KEYS and text.strip().lower() == "auto":
        return 0
    if kind is bool:
        try:
            return parse_bool(text)
        except ValueError:
            raise _invalid(key, text, "true/false, yes/no, on/off or 1/0", source) from None
    if key in SIZE_KEYS:
        return _size(key, text, source)
    if kind is int:
        # int() alone would also take "1_000", " 12" and non-ASCII digits.
        if not _INT_RE.fullmatch(text.strip()):
            raise _invalid(key, text, "an integer", source)
        return int(text.strip())
    if kind is float:
        if not _FLOAT_RE.fullmatch(text.strip()):
            raise _invalid(key, text, "a number", source)
        return float(text.strip())
    return _normalise(key, text)


def _size(key: str, value: object, source: str) -> int:
    try:
        return parse_size(value)
    except ValueError:
        raise _invalid(key, value, _SIZE_EXPECTED, source) from None


def _from_toml(key: str, value: Any, source: str) -> Any:
    """Check a TOML value against the field's type; TOML has real types, so no string coercion."""
    kind = FIELD_TYPES[key]
    if key in AUTO_KEYS and isinstance(value, str) and value.strip().lower() == "auto":
        return 0
    if key in SIZE_KEYS:
        return _size(key, value, source)
    if not _type_ok(kind, value):
        raise _invalid(key, value, _EXPECTED[kind], source)
    if kind is float:
        return float(value)
    return _normalise(key, value) if kind is str else value


def _normalise(key: str, value: str) -> str:
    # Enumerated values are matched case-insensitively ("INFO" is as good as "info"); anything
    # else is kept as typed so that the error message shows it.
    choices = {
        "log_level": LOG_LEVELS,
        "loop": LOOPS,
        "storage": STORAGES,
        "proxy_protocol": PROXY_MODES,
    }.get(key)
    if choices and value.strip().lower() in choices:
        return value.strip().lower()
    return value


# --- the three sources -----------------------------------------------------------------------


def read_toml(path: str) -> dict[str, Any]:
    """Read a config file into ``{key: typed value}``; unknown keys and wrong types are errors."""
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {show(path)}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        reason = " ".join(str(exc).split())
        raise ConfigError(f"config file {show(path)} is not valid TOML: {reason}") from None
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in FIELD_TYPES:
            raise ConfigError(f"unknown key {show(key)} in config file {show(path)}{_hint(key)}")
        values[key] = _from_toml(key, value, path)
    return values


def _hint(key: str) -> str:
    close = difflib.get_close_matches(key.replace("-", "_"), FIELD_NAMES, n=1)
    return f" (did you mean {show(close[0])}?)" if close else ""


# Names that the popular FTP images use (fauria/vsftpd, garethflowers/ftp-server: see
# docs/DOCKER.md), accepted so that an existing `docker run -e ...` line keeps working.
ENV_ALIASES: dict[str, str] = {
    "FTP_USER": "user",
    "FTP_PASS": "password",
    "PASV_ADDRESS": "pasv_address",
}
PASV_MIN_ENV = "PASV_MIN_PORT"
PASV_MAX_ENV = "PASV_MAX_PORT"


def read_env(env: Mapping[str, str]) -> dict[str, Any]:
    """Collect ``FTPD_<KEY>`` variables, and their aliases, into ``{key: typed value}``.

    An alias (``ENV_ALIASES``, ``PASV_MIN_PORT``/``PASV_MAX_PORT``) counts only when the
    ``FTPD_<KEY>`` variable of the same key is absent, and an empty alias counts as unset (compose
    files pass unset variables through as empty strings).
    """
    values: dict[str, Any] = {}
    for alias, key in ENV_ALIASES.items():
        if env.get(alias, "") != "" and env_name(key) not in env:
            values[key] = _from_text(key, env[alias], alias)
    if env_name("pasv_ports") not in env:
        pasv = _pasv_from_aliases(env)
        if pasv is not None:
            values["pasv_ports"] = pasv
    for key in FIELD_NAMES:
        name = env_name(key)
        if name in env:
            values[key] = _from_text(key, env[name], name)
    return values


def _pasv_from_aliases(env: Mapping[str, str]) -> str | None:
    """``pasv_ports`` from PASV_MIN_PORT and PASV_MAX_PORT (both or neither)."""
    low, high = env.get(PASV_MIN_ENV, "").strip(), env.get(PASV_MAX_ENV, "").strip()
    if not low and not high:
        return None
    source = f"{PASV_MIN_ENV}/{PASV_MAX_ENV}"
    if not (low and high):
        given = PASV_MIN_ENV if low else PASV_MAX_ENV
        raise ConfigError(
            f"invalid value for pasv_ports ({source}): {given} is set without the other "
            "(set both, or FTPD_PASV_PORTS=FIRST-LAST)"
        )
    text = f"{low}-{high}"
    if not (_INT_RE.fullmatch(low) and _INT_RE.fullmatch(high)) or _parse_pasv(text) is None:
        raise _invalid("pasv_ports", text, _PASV_EXPECTED, source)
    return text


class StrictParser(argparse.ArgumentParser):
    """argparse, but a usage error is a ConfigError (one line, exit 2) instead of a usage dump."""

    def error(self, message: str) -> typing.NoReturn:
        raise ConfigError(message)


def build_parser(prog: str = "ftpd") -> argparse.ArgumentParser:
    """The serving command line: ``--config FILE`` plus one flag per Config field.

    Values are kept as strings (``argparse.SUPPRESS`` as default, so absent flags are absent) and
    converted by ``load_config``; that gives flags the same strict parsing and the same one-line
    errors as environment variables.
    """
    parser = StrictParser(
        prog=prog,
        usage="%(prog)s [serve] [--config FILE] [--KEY VALUE ...]\n"
        "       %(prog)s user {add,passwd,del,list} ...\n"
        "       %(prog)s passwd | healthcheck [--host H] [--port P] [--timeout S]",
        description="An asyncio FTP server.\n\n"
        "Every option below is also an FTPD_<KEY> environment variable and a key of the TOML\n"
        "file given by --config; a flag wins over the environment, which wins over the file.\n"
        "Booleans take true/false, yes/no, on/off or 1/0; a bare --flag means true.",
        epilog="other commands:\n"
        "  serve         the default: `ftpd serve --port 21` is `ftpd --port 21`\n"
        "  user          add, passwd, del, list: manage the users file or database\n"
        "                (`ftpd user add --help`)\n"
        "  passwd        read a password (stdin, or prompt twice) and print its hash\n"
        "                for the password_hash key of the users file\n"
        "  healthcheck   connect, expect a 220 greeting, QUIT; exit 0 if healthy, else 1",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        argument_default=argparse.SUPPRESS,
        allow_abbrev=False,
    )
    parser.add_argument(
        "--config", metavar="FILE", help=f"TOML file with any of the keys below (env {CONFIG_ENV})"
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    for f in fields(Config):
        kind, flag = FIELD_TYPES[f.name], flag_name(f.name)
        text = f.metadata.get("help", f.name)
        if kind is bool:
            text += f"; --no-{flag[2:]} for false"
        text += f" (default: {show(f.default)}; env {env_name(f.name)})"
        # Flags take strings; load_config converts them like environment values.
        extra: dict[str, Any] = (
            {"nargs": "?", "const": "true", "metavar": "BOOL"}
            if kind is bool
            else {"metavar": _METAVARS.get(kind, "TEXT")}
        )
        parser.add_argument(flag, dest=f.name, help=text, **extra)
        if "_" in f.name:
            # The TOML spelling (--users_file) is accepted too, without cluttering --help.
            parser.add_argument("--" + f.name, dest=f.name, help=argparse.SUPPRESS, **extra)
        if kind is bool:
            parser.add_argument(
                f"--no-{flag[2:]}",
                dest=f.name,
                action="store_const",
                const="false",
                help=argparse.SUPPRESS,
            )
    return parser


def load_config(argv: Sequence[str] | None, env: Mapping[str, str]) -> Config:
    """Build and validate the Config from flags, environment and TOML file (in that precedence)."""
    ns = vars(build_parser().parse_args(list(argv or [])))
    config_path: str | None = ns.pop("config", None)
    if config_path is None:
        config_path = env.get(CONFIG_ENV) or None
    values: dict[str, Any] = read_toml(config_path) if config_path else {}
    values.update(read_env(env))
    for key, text in ns.items():
        values[key] = _from_text(key, text, flag_name(key))
    config = Config(**values)
    validate(config)
    return config
