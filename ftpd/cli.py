"""The ``ftpd`` command (also ``python -m ftpd``): argv/env/TOML -> Config -> ``server.run``.

::

    ftpd [--key VALUE ...]          serve (the default; ``ftpd serve ...`` works too)
    ftpd passwd                     read a password, print its hash for the users file
    ftpd user add|passwd|del|list   manage the accounts of the users file or database
    ftpd quota rescan|show NAME     recompute or show a user's recorded disk usage
    ftpd reload [--pid-file FILE]   SIGHUP to the running server: re-read config, users, TLS
    ftpd healthcheck [--host H] [--port P] [--timeout S]

The subcommand is recognised only as the first argument, so ``ftpd --port 2121`` serves without
a ``serve`` word. Configuration problems print ``ftpd: error: <one line>`` and exit 2, never a
traceback. No protocol logic lives here; the healthcheck is plain socket code so that it works
in a container even when the server package would not import.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from urllib.parse import quote

from ftpd.auth import ConfigAuthenticator, single_user_enabled
from ftpd.auth.hashing import hash_password
from ftpd.auth.store_file import FileStore
from ftpd.config import Config, ConfigError, show
from ftpd.config_load import StrictParser, load_config
from ftpd.startup import startup_warnings

OnReady = Callable[[list[tuple[str, int]]], None]

_WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args and args[0] == "passwd":
            return passwd(args[1:])
        if args and args[0] == "healthcheck":
            return healthcheck(args[1:], os.environ)
        if args and args[0] == "user":
            from ftpd.usercli import user_command

            return user_command(args[1:], os.environ)
        if args and args[0] == "reload":
            return reload_command(args[1:], os.environ)
        if args and args[0] == "quota":
            from ftpd.quotacli import quota_command

            return quota_command(args[1:], os.environ)
        if args and args[0] == "serve":
            args = args[1:]
        return serve(args, os.environ)
    except ConfigError as exc:
        _error(str(exc))
        return 2
    except SystemExit as exc:  # argparse --help / --version, or sys.exit() inside run()
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        _error(str(exc.code))
        return 1
    except KeyboardInterrupt:
        return 130


def _error(message: str) -> None:
    # One line whatever the message holds: the contract for scripts and container logs.
    print(f"ftpd: error: {' '.join(message.split())}", file=sys.stderr, flush=True)


# --- serve -----------------------------------------------------------------------------------


def serve(argv: Sequence[str], env: Mapping[str, str]) -> int:
    """Load the config, prepare the homes, then run the server until it shuts down."""
    config = load_config(argv, env)
    single = single_user_enabled(config)
    generated = single and not config.password
    if generated:
        config = replace(config, password=secrets.token_urlsafe(12))
    # Only the homes that someone logs into: with a users file alone, ./ftp-root serves no one.
    if single or (config.anonymous and not config.anonymous_root):
        _make_dir("root", config.root)
    if config.anonymous and config.anonymous_root:
        _make_dir("anonymous_root", config.anonymous_root)
    # Read the users file (or reach the database) now so that its errors are one line and exit
    # 2, like config errors. (run() builds its own Authenticator; this costs milliseconds.)
    auth = ConfigAuthenticator.from_config(config)
    if auth.store is not None:
        auth.store.check()
    for warning in startup_warnings(config, auth, env):
        print(f"ftpd: warning: {warning}", file=sys.stderr, flush=True)

    def reload() -> Config:
        # SIGHUP: the same flags and environment, the file read again; a generated password
        # stays the one announced at start-up.
        new = load_config(argv, env)
        if generated and not new.password:
            new = replace(new, password=config.password)
        return new

    return _server_run(config, announcer(config, show_password=generated, auth=auth), reload)


def _make_dir(key: str, path: str) -> None:
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError(
            f"invalid value for {key}: {show(path)} (cannot create the directory: {reason})"
        ) from None


def _server_run(config: Config, on_ready: OnReady, reload: Callable[[], Config]) -> int:
    """Call the server (imported late: `--help` and config errors need none of it)."""
    from ftpd.server.server import run

    return run(config, on_ready=on_ready, reload=reload)


# --- reload ----------------------------------------------------------------------------------


def reload_command(argv: Sequence[str], env: Mapping[str, str]) -> int:
    """``ftpd reload [--config FILE] [--pid-file FILE]``: SIGHUP to the server of the pid file."""
    parser = StrictParser(prog="ftpd reload", description="Make the running server re-read its "
                          "configuration, users and TLS files (SIGHUP through its pid_file).")
    parser.add_argument("--config", metavar="FILE", help="the server's TOML configuration")
    parser.add_argument("--pid-file", metavar="FILE", help="default: pid_file of the config")
    args = parser.parse_args(list(argv))
    path = args.pid_file
    if not path:
        path = load_config(["--config", args.config] if args.config else [], env).pid_file
    if not path:
        raise ConfigError("no pid_file: give --pid-file or set pid_file in the configuration")
    from ftpd.server.reload import signal_reload

    pid = signal_reload(path)
    print(f"ftpd: reload signalled to process {pid}; its log says whether it was applied")
    return 0


def announcer(
    config: Config, show_password: bool = True, auth: ConfigAuthenticator | None = None
) -> OnReady:
    """The ``on_ready`` callback: tell the operator what is served, where, and how to log in."""
    served, hint = _what_is_served(config, auth)

    def on_ready(addresses: list[tuple[str, int]]) -> None:
        bound = [(str(a[0]), int(a[1])) for a in addresses] or [(config.host, config.port)]
        listening = ", ".join(_hostport(host, port) for host, port in bound)
        print(f"ftpd serving {served} on {listening}", flush=True)
        # A password the operator chose never goes to the logs (docker logs); a generated one must.
        url = connect_url(config, bound, show_password, hint[0])
        print(f"connect with: {url}{hint[1]}", flush=True)

    return on_ready


def _what_is_served(
    config: Config, auth: ConfigAuthenticator | None
) -> tuple[str, tuple[str, str]]:
    """(what the first line names, (user for the URL, note after the URL))."""
    parts: list[str] = []
    if single_user_enabled(config):
        parts.append(os.path.abspath(config.root))
    store = auth.store if auth is not None else None
    user, note = "", ""
    if store is not None:
        names = [entry.name for entry in store.initial()]
        if isinstance(store, FileStore):
            parts.append(f"the homes of {len(names)} user(s) of the {store.description}")
        else:
            parts.append(f"the homes of the users in the {store.description}")
        if not single_user_enabled(config):
            user = names[0] if names else ""
            where = store.description
            if names:
                note = f" (or another user of the {where}, with the password set there)"
            elif isinstance(store, FileStore):
                note = f" (the {where} has no users yet: add one with `ftpd user add`)"
            else:
                note = f" (as a user of the {where}: `ftpd user list` shows them)"
    if config.anonymous:
        anon = os.path.abspath(config.anonymous_root or config.root)
        parts.append(f"{anon} to anonymous users")
        if not user and not (single_user_enabled(config) and config.password):
            more = ""
            if store is not None and not isinstance(store, FileStore):
                more = f"; users of the {store.description} add NAME@"
            note = f" (anonymous login{more})"
    return " and ".join(parts) or "nothing", (user, note)


def connect_url(
    config: Config,
    addresses: Sequence[tuple[str, int]],
    show_password: bool = True,
    store_user: str = "",
) -> str:
    """An ``ftp://`` URL a local client can use: the single user with its password (when shown),
    else ``store_user`` from the users file or database, else none (anonymous)."""
    # Prefer an IPv4 listener: every client handles it; a wildcard becomes loopback.
    host, port = next((a for a in addresses if ":" not in a[0]), addresses[0])
    host = _WILDCARDS.get(host, host)
    userinfo = ""
    if single_user_enabled(config) and config.password:
        secret = f":{quote(config.password, safe='')}" if show_password else ""
        userinfo = f"{quote(config.user, safe='')}{secret}@"
    elif store_user:
        userinfo = f"{quote(store_user, safe='')}@"
    return f"ftp://{userinfo}{_hostport(host, port)}/"


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# --- passwd ----------------------------------------------------------------------------------


def passwd(argv: Sequence[str]) -> int:
    """``ftpd passwd``: read a password and print its hash (for ``password_hash`` in users_file)."""
    StrictParser(
        prog="ftpd passwd",
        description="Read a password (from stdin when it is not a terminal, else prompt twice) "
        "and print its scrypt hash for the password_hash key of the users file.",
    ).parse_args(list(argv))
    from ftpd.usercli import read_password  # the prompt `ftpd user` uses too

    password = read_password()
    if password is None:
        _error("passwords do not match")
        return 1
    if not password:
        _error("empty password")
        return 1
    print(hash_password(password), flush=True)
    return 0


# --- healthcheck -----------------------------------------------------------------------------

_REPLY_RE = re.compile(rb"([0-9]{3})([ -]|\r?$)")
_MAX_GREETING = 16384


def healthcheck(argv: Sequence[str], env: Mapping[str, str]) -> int:
    """``ftpd healthcheck``: exit 0 if the server greets with 220, else 1 (for Docker)."""
    host, port = _default_target(env)
    parser = StrictParser(
        prog="ftpd healthcheck",
        description="Connect, expect a 220 greeting, send QUIT. Exit 0 if healthy, else 1. "
        "Host and port default to the server's own settings (FTPD_HOST, FTPD_PORT, "
        "FTPD_CONFIG), with a wildcard address replaced by loopback.",
    )
    parser.add_argument("--host", default=host, help=f"default: {host}")
    parser.add_argument("--port", type=int, default=port, help=f"default: {port}")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds (default: 5)")
    args = parser.parse_args(list(argv))
    ok, detail = probe(args.host, args.port, args.timeout)
    if ok:
        print(f"ftpd healthcheck: ok ({detail})", flush=True)
        return 0
    print(f"ftpd healthcheck: {_hostport(args.host, args.port)}: {detail}", file=sys.stderr)
    return 1


def _default_target(env: Mapping[str, str]) -> tuple[str, int]:
    try:
        config = load_config([], env)
    except ConfigError:
        config = Config()  # a broken config is the server's problem to report, not ours
    host = _WILDCARDS.get(config.host, config.host)
    return host, config.port or Config().port


def probe(host: str, port: int, timeout: float) -> tuple[bool, str]:
    """Read the greeting (RFC 959 4.2: possibly multi-line) and QUIT; (healthy, what we saw)."""
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            data = b""
            while True:
                verdict = _greeting(data)
                if verdict is not None:
                    break
                if len(data) > _MAX_GREETING:
                    return False, "greeting too long"
                sock.settimeout(max(0.001, deadline - time.monotonic()))
                chunk = sock.recv(4096)
                if not chunk:
                    return False, "connection closed before the greeting"
                data += chunk
            code, line = verdict
            try:
                sock.sendall(b"QUIT\r\n")
            except OSError:
                pass  # the greeting is what we check; a reset after it does not matter
    except TimeoutError:
        return False, "timed out"
    except OSError as exc:
        return False, exc.strerror or str(exc)
    if code != b"220":
        return False, f"unexpected greeting {show(line)}"
    return True, line


def _greeting(data: bytes) -> tuple[bytes, str] | None:
    """The (code, first line) of a complete reply in ``data``, or None if more is needed."""
    lines = data.split(b"\n")[:-1]  # complete lines only
    if not lines:
        return None
    first = _REPLY_RE.match(lines[0])
    text = lines[0].rstrip(b"\r").decode("utf-8", "replace")
    if first is None:
        return b"", text
    if first.group(2) != b"-":
        return first.group(1), text
    # Multi-line reply: it ends with a line starting with the same code and a space.
    end = first.group(1) + b" "
    if any(line.startswith(end) for line in lines[1:]):
        return first.group(1), text
    return None


__all__ = ["announcer", "connect_url", "healthcheck", "main", "passwd", "probe", "serve"]
