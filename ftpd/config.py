"""One frozen ``Config`` for the whole server, its defaults and its validation.

Every key can be set in a TOML file (``--config FILE`` or ``FTPD_CONFIG``), as an ``FTPD_<KEY>``
environment variable and as a ``--key`` command-line flag; a flag wins over the environment, which
wins over the file, which wins over the defaults below. Invalid values stop start-up with one line
naming the key, the value and what is allowed (``ConfigError``). Reading the three sources is
``config_load.py``'s job.

Relative paths (``root``, ``users_file``, ``anonymous_root``) are relative to the current
directory wherever they come from, so a value means the same thing in a flag and in the file.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
import typing
import urllib.parse
from dataclasses import dataclass, field, fields


class ConfigError(ValueError):
    """A configuration value is invalid; the message is one line meant for the operator."""


@dataclass(frozen=True, slots=True)
class Config:
    """All server settings. Field docs are the ``--help`` texts."""

    host: str = field(
        default="127.0.0.1", metadata={"help": "address to listen on ('::' or '0.0.0.0' for all)"}
    )
    port: int = field(default=2121, metadata={"help": "control port"})
    root: str = field(
        default="./ftp-root", metadata={"help": "home of the single user (created if missing)"}
    )
    user: str = field(default="user", metadata={"help": "name of the single user"})
    password: str = field(
        default="",
        metadata={"help": "password of the single user (empty: generate one and print it)"},
    )
    users_file: str = field(
        default="", metadata={"help": "TOML file of users with hashed passwords"}
    )
    users_db: str = field(default="", metadata={"help": "users in a database instead: "
                          "sqlite:///FILE or postgresql://USER:PASSWORD@HOST/DB (`ftpd user`)"})
    users_cache_seconds: float = field(default=5.0, metadata={"help": "how long a login "
                                       "reuses an account read from users_file or users_db"})
    anonymous: bool = field(default=False, metadata={"help": "allow anonymous logins (read-only)"})
    anonymous_root: str = field(
        default="", metadata={"help": "home of anonymous users (empty: the same as root)"}
    )
    anonymous_write: bool = field(
        default=False, metadata={"help": "let anonymous users upload and modify"}
    )
    pasv_ports: str = field(
        default="61000-61999",
        metadata={"help": "passive port range FIRST-LAST (keep it outside the ephemeral range)"},
    )
    pasv_address: str = field(
        default="",
        metadata={
            "help": "IP or hostname advertised in PASV replies (NAT/Docker; empty: the control connection's local address)"
        },
    )
    pasv_promiscuous: bool = field(
        default=False,
        metadata={"help": "accept passive data connections from any IP (for NAT'ed proxies)"},
    )
    port_promiscuous: bool = field(
        default=False,
        metadata={"help": "allow PORT/EPRT to foreign IPs and ports below 1024 (FXP; unsafe)"},
    )
    max_sessions: int = field(
        default=10000, metadata={"help": "maximum simultaneous sessions (0: unlimited)"}
    )
    max_per_ip: int = field(
        default=50, metadata={"help": "maximum simultaneous sessions per client IP (0: unlimited)"}
    )
    idle_timeout: float = field(
        default=300.0, metadata={"help": "seconds a logged-in session may stay idle"}
    )
    data_timeout: float = field(
        default=300.0,
        metadata={"help": "seconds a transfer may stall, and to wait for a data connection"},
    )
    login_timeout: float = field(
        default=60.0, metadata={"help": "seconds allowed from connect to a successful login"}
    )
    max_login_attempts: int = field(
        default=3, metadata={"help": "failed logins before the session is closed"}
    )
    login_fail_delay: float = field(
        default=1.0, metadata={"help": "seconds to wait before answering a failed login"}
    )
    banner: str = field(default="ftpd ready.", metadata={"help": "text of the 220 greeting"})
    log_level: str = field(default="info", metadata={"help": "debug, info, warning or error"})
    loop: str = field(
        default="auto",
        metadata={"help": "event loop: auto (uvloop when installed), uvloop or asyncio"},
    )
    backlog: int = field(default=1024, metadata={
        "help": "listen backlog of the control sockets; also the most connections that may wait "
                "for their PROXY header on the implicit FTPS port"})
    io_threads: int = field(
        default=32, metadata={"help": "most threads for file IO (started only while file calls "
                                      "stall, e.g. on a slow disk; one or two on a fast one) and "
                                      "for password hashing"}
    )
    atomic_uploads: bool = field(
        default=True, metadata={"help": "STOR writes a temporary file that takes the target's name only when complete"}
    )
    io_inline: bool = field(
        default=True,
        metadata={"help": "answer file calls on the event loop when the page and dentry caches "
                          "can (Linux: openat2, preadv2/pwritev2 RWF_NOWAIT, cachestat), and all "
                          "calls of a home on tmpfs/ramfs without swap; false sends every file "
                          "call to the IO threads"},
    )
    fsync_uploads: bool = field(
        default=True,
        metadata={"help": "an upload's data (and its directory entry) are on disk before its 226"},
    )
    workers: int = field(
        default=1,
        metadata={
            "help": "worker processes sharing the port (SO_REUSEPORT); limits hold across them. "
            "auto (or 0): one per core, and more if max_sessions needs more file descriptors "
            "than one process may open"
        },
    )
    shutdown_grace: float = field(
        default=10.0,
        metadata={"help": "seconds running transfers may take to finish after SIGTERM"},
    )
    tls: str = field(
        default="off",
        metadata={
            "help": "FTPS: off, explicit (AUTH TLS allowed) or required (TLS for login and data)"
        },
    )
    tls_cert: str = field(default="", metadata={"help": "PEM certificate (chain) file for FTPS"})
    tls_key: str = field(default="", metadata={"help": "PEM private key file for FTPS"})
    implicit_tls_port: int = field(
        default=0,
        metadata={
            "help": "port of a second listener speaking TLS from the first byte (0: none; conventionally 990)"
        },
    )
    tls_min_version: str = field(
        default="1.2", metadata={"help": "lowest TLS version accepted: 1.2 or 1.3"}
    )
    tls_require_session_reuse: bool = field(
        default=True,
        metadata={
            "help": "PROT P data connections must resume the control connection's TLS session (as vsftpd); stock ftplib.FTP_TLS never resumes and needs this off"
        },
    )
    tls_handshake_timeout: float = field(
        default=10.0, metadata={"help": "seconds allowed for a TLS handshake"}
    )
    log_format: str = field(
        default="text", metadata={"help": "log lines as text or json (one object per line)"}
    )
    xferlog_file: str = field(
        default="",
        metadata={"help": "also write transfers to this file in the standard xferlog format"},
    )
    metrics_port: int = field(
        default=0,
        metadata={
            "help": "serve Prometheus metrics on this port (0: off; needs prometheus-client)"
        },
    )
    metrics_host: str = field(
        default="127.0.0.1", metadata={"help": "address of the metrics endpoint"}
    )
    ban_after: int = field(
        default=10,
        metadata={"help": "ban a client IP after this many failed logins within ban_seconds, "
                          "counted across workers (0: never)"},
    )
    ban_seconds: float = field(
        default=600.0, metadata={"help": "how long a ban lasts, and the window failures count in"}
    )
    per_ip_ipv6_prefix: int = field(
        default=64,
        metadata={"help": "IPv6 clients count as one address per prefix of this length for "
                          "max_per_ip and bans (64: one /64; 128: exact)"},
    )
    storage: str = field(
        default="local",
        metadata={"help": "where homes live: local (directories) or s3 (key prefixes in a bucket)"},
    )
    s3_endpoint: str = field(
        default="",
        metadata={"help": "S3 endpoint URL for MinIO, Ceph and others (empty: AWS)"},
    )
    s3_bucket: str = field(default="", metadata={"help": "S3 bucket (required when storage = s3)"})
    s3_prefix: str = field(
        default="", metadata={"help": "key prefix in the bucket; each user's home is PREFIX/NAME/"}
    )
    s3_region: str = field(
        default="", metadata={"help": "S3 region (empty: from the AWS environment or config files)"}
    )
    proxy_protocol: str = field(
        default="off",
        metadata={
            "help": "PROXY protocol v1/v2 header from a load balancer: off, optional or required"
        },
    )
    proxy_trusted: str = field(
        default="",
        metadata={"help": "comma-separated CIDRs whose PROXY headers are honoured (must be set "
                          "when proxy_protocol is on: none is trusted otherwise)"},
    )
    proxy_timeout: float = field(
        default=5.0, metadata={"help": "seconds to wait for a PROXY header from a trusted peer"}
    )
    # Bandwidth (README "Bandwidth limits"): bytes per second, 0 = unlimited, K/M/G suffixes.
    max_download_rate: int = field(default=0, metadata={"help": "per-session download rate "
                                   "(bytes/s; K, M, G suffixes; 0: unlimited; users file overrides)"})
    max_upload_rate: int = field(default=0, metadata={"help": "per-session upload rate "
                                 "(bytes/s; 0: unlimited; users file overrides)"})
    max_total_download_rate: int = field(default=0, metadata={
        "help": "download rate of the whole server, shared by its transfers (0: unlimited)"})
    max_total_upload_rate: int = field(default=0, metadata={
        "help": "upload rate of the whole server, shared by its transfers (0: unlimited)"})
    # Quotas (README "Quotas"): defaults for users without quota_bytes/quota_files of their own.
    user_quota_bytes: int = field(default=0, metadata={
        "help": "bytes each user may store in their home (K, M, G suffixes; 0: no quota)"})
    user_quota_files: int = field(default=0, metadata={
        "help": "files each user may store in their home (0: no quota)"})
    # Hooks (README "Hooks"): a command line, split like a shell would but run without one.
    on_upload: str = field(default="", metadata={"help": "command run after each upload"})
    on_download: str = field(default="", metadata={"help": "command run after each download"})
    on_delete: str = field(default="", metadata={"help": "command run after each DELE"})
    on_rename: str = field(default="", metadata={"help": "command run after each rename"})
    on_login: str = field(default="", metadata={"help": "command run after each login"})
    hook_timeout: float = field(default=30.0, metadata={
        "help": "seconds a hook command may run before it is killed"})
    hook_concurrency: int = field(default=4, metadata={
        "help": "hook commands running at once (more wait in a bounded queue)"})
    webhook_url: str = field(default="", metadata={
        "help": "http(s) URL that each event is POSTed to as JSON (needs the hooks extra)"})
    webhook_events: str = field(default="login,upload,download,delete,rename", metadata={
        "help": "comma-separated events for webhook_url, or 'all'"})
    webhook_timeout: float = field(default=10.0, metadata={"help": "seconds per webhook POST"})
    webhook_retries: int = field(default=5, metadata={
        "help": "retries of a failed webhook POST (exponential backoff)"})
    webhook_queue: int = field(default=1000, metadata={
        "help": "events waiting for the webhook before the oldest are dropped"})
    pid_file: str = field(default="", metadata={
        "help": "file holding the server's pid (`ftpd reload` signals it)"})


FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in fields(Config))
FIELD_TYPES: dict[str, type] = {
    name: hint for name, hint in typing.get_type_hints(Config).items() if name in FIELD_NAMES
}
ENV_PREFIX = "FTPD_"
CONFIG_ENV = "FTPD_CONFIG"

_METAVARS: dict[type, str] = {int: "N", float: "SECONDS", str: "TEXT"}
_TRUE = frozenset({"true", "yes", "1", "on"})
_FALSE = frozenset({"false", "no", "0", "off"})
_INT_RE = re.compile(r"[+-]?[0-9]+")
_FLOAT_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_PASV_RE = re.compile(r"\s*([0-9]{1,5})\s*-\s*([0-9]{1,5})\s*")
_LABEL_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_EXPECTED = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
# Integer keys that also take a size with a K/M/G suffix (ftpd/sizes.py), in TOML as a string.
SIZE_KEYS = frozenset({"max_download_rate", "max_upload_rate", "max_total_download_rate",
                       "max_total_upload_rate", "user_quota_bytes"})
_SIZE_EXPECTED = "bytes >= 0, e.g. 1048576 or 512K, 2M, 1G"

LOG_LEVELS = ("debug", "info", "warning", "error")
LOOPS = ("auto", "uvloop", "asyncio")
TLS_MODES = ("off", "explicit", "required")
TLS_VERSIONS = ("1.2", "1.3")
LOG_FORMATS = ("text", "json")
STORAGES = ("local", "s3")
PROXY_MODES = ("off", "optional", "required")
AUTO_KEYS = frozenset({"workers"})  # integer keys that also take "auto" (stored as 0)


def show(value: object) -> str:
    """Render a value for an error message: strings quoted (JSON style, so it stays one line)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False, default=str)


def redact_url(url: str) -> str:
    """``url`` without its password (``users_db``), for messages and logs."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)).geturl()


def _invalid(key: str, value: object, expected: str, source: str = "") -> ConfigError:
    where = f" ({source})" if source else ""
    return ConfigError(f"invalid value for {key}{where}: {show(value)} (expected {expected})")


def env_name(key: str) -> str:
    """The environment variable that sets ``key``."""
    return ENV_PREFIX + key.upper()


def flag_name(key: str) -> str:
    """The command-line flag that sets ``key``."""
    return "--" + key.replace("_", "-")


def _type_ok(kind: type, value: object) -> bool:
    if kind is bool or isinstance(value, bool):
        return kind is bool and isinstance(value, bool)
    if kind is float:
        return isinstance(value, int | float)
    return isinstance(value, kind)



# --- validation ------------------------------------------------------------------------------


def is_hostname(text: str) -> bool:
    """RFC 1123 host name syntax (not resolved); an all-numeric last label is not a name."""
    name = text[:-1] if text.endswith(".") else text
    if not name or len(name) > 253:
        return False
    labels = name.split(".")
    return all(_LABEL_RE.fullmatch(label) for label in labels) and not labels[-1].isdigit()


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _parse_pasv(text: str) -> tuple[int, int] | None:
    match = _PASV_RE.fullmatch(text)
    if not match:
        return None
    first, last = int(match.group(1)), int(match.group(2))
    if not 1024 <= first <= last <= 65535:
        return None
    return first, last


def pasv_range(config: Config) -> tuple[int, int]:
    """The passive port range as ``(first, last)``, both inclusive."""
    parsed = _parse_pasv(config.pasv_ports)
    if parsed is None:
        raise _invalid("pasv_ports", config.pasv_ports, _PASV_EXPECTED)
    return parsed


_PASV_EXPECTED = "FIRST-LAST with 1024 <= FIRST <= LAST <= 65535"


def validate(config: Config) -> None:
    """Raise ConfigError (one line naming key and value) for the first invalid setting."""
    c = config
    for f in fields(Config):
        # Config(...) built in code bypasses the parsers; catch a wrong type here too.
        if not _type_ok(FIELD_TYPES[f.name], getattr(c, f.name)):
            raise _invalid(f.name, getattr(c, f.name), _EXPECTED[FIELD_TYPES[f.name]])

    if not (c.host and (_is_ip(c.host) or is_hostname(c.host))):
        raise _invalid("host", c.host, "an IP address or a host name")
    if not 0 <= c.port <= 65535:
        raise _invalid("port", c.port, "1-65535, or 0 for any free port")
    if not c.root.strip():
        raise _invalid("root", c.root, "a directory path")
    if not c.user or _CONTROL_RE.search(c.user):
        raise _invalid("user", c.user, "a non-empty name without control characters")
    if _CONTROL_RE.search(c.password):
        # A password with CR/LF could never be sent in a PASS command.
        raise ConfigError("invalid value for password: (hidden) (expected no control characters)")
    if _parse_pasv(c.pasv_ports) is None:
        raise _invalid("pasv_ports", c.pasv_ports, _PASV_EXPECTED)
    if c.pasv_address:
        # PASV (RFC 959 4.1.2) can only carry an IPv4 address; EPSV (RFC 2428) carries none.
        if _is_ip(c.pasv_address):
            if ipaddress.ip_address(c.pasv_address).version != 4:
                raise _invalid("pasv_address", c.pasv_address, _PASV_ADDR_EXPECTED)
        elif not is_hostname(c.pasv_address):
            raise _invalid("pasv_address", c.pasv_address, _PASV_ADDR_EXPECTED)
    for key in ("max_sessions", "max_per_ip", "max_login_attempts"):
        if getattr(c, key) < 0:
            raise _invalid(key, getattr(c, key), "an integer >= 0 (0: unlimited)")
    for key in ("idle_timeout", "data_timeout", "login_timeout"):
        value = getattr(c, key)
        if not (math.isfinite(value) and value > 0):
            raise _invalid(key, value, "a number of seconds > 0")
    if c.users_file and c.users_db:
        raise _invalid("users_db", redact_url(c.users_db), "users_file or users_db, not both")
    if c.users_db and not re.match(r"(?i)(sqlite:///.|postgres(ql)?://)", c.users_db):
        raise _invalid("users_db", redact_url(c.users_db),
                       "sqlite:///FILE or postgresql://USER@HOST/DB")
    if not (math.isfinite(c.users_cache_seconds) and c.users_cache_seconds >= 0):
        raise _invalid("users_cache_seconds", c.users_cache_seconds, "a number of seconds >= 0")
    if not (math.isfinite(c.login_fail_delay) and c.login_fail_delay >= 0):
        raise _invalid("login_fail_delay", c.login_fail_delay, "a number of seconds >= 0")
    if _CONTROL_RE.search(c.banner):
        # The banner goes into the 220 reply; a CR/LF would forge extra reply lines.
        raise _invalid("banner", c.banner, "one line without control characters")
    if c.log_level not in LOG_LEVELS:
        raise _invalid("log_level", c.log_level, "one of " + ", ".join(LOG_LEVELS))
    if c.loop not in LOOPS:
        raise _invalid("loop", c.loop, "one of " + ", ".join(LOOPS))
    if c.backlog < 1:
        raise _invalid("backlog", c.backlog, "an integer >= 1")
    if c.io_threads < 1:
        raise _invalid("io_threads", c.io_threads, "an integer >= 1")
    if not 0 <= c.workers <= 64:
        raise _invalid("workers", c.workers, "an integer from 1 to 64, or auto (0)")
    for key in ("shutdown_grace", "ban_seconds"):
        value = getattr(c, key)
        if not (math.isfinite(value) and value >= 0):
            raise _invalid(key, value, "a number of seconds >= 0")
    if not (math.isfinite(c.tls_handshake_timeout) and c.tls_handshake_timeout > 0):
        raise _invalid("tls_handshake_timeout", c.tls_handshake_timeout, "a number of seconds > 0")
    if c.tls not in TLS_MODES:
        raise _invalid("tls", c.tls, "one of " + ", ".join(TLS_MODES))
    if c.tls_min_version not in TLS_VERSIONS:
        raise _invalid("tls_min_version", c.tls_min_version, "one of " + ", ".join(TLS_VERSIONS))
    for key in ("implicit_tls_port", "metrics_port"):
        if not 0 <= getattr(c, key) <= 65535:
            raise _invalid(key, getattr(c, key), "0 (off) or a port 1-65535")
    if c.log_format not in LOG_FORMATS:
        raise _invalid("log_format", c.log_format, "one of " + ", ".join(LOG_FORMATS))
    if not (_is_ip(c.metrics_host) or is_hostname(c.metrics_host)):
        raise _invalid("metrics_host", c.metrics_host, "an IP address or a host name")
    if c.ban_after < 0:
        raise _invalid("ban_after", c.ban_after, "an integer >= 0 (0: never)")
    for key in (*SIZE_KEYS, "user_quota_files", "webhook_retries"):
        if getattr(c, key) < 0:
            raise _invalid(key, getattr(c, key), _SIZE_EXPECTED if key in SIZE_KEYS else "an integer >= 0")
    for key in ("hook_concurrency", "webhook_queue"):
        if getattr(c, key) < 1:
            raise _invalid(key, getattr(c, key), "an integer >= 1")
    for key in ("hook_timeout", "webhook_timeout"):
        if not (math.isfinite(getattr(c, key)) and getattr(c, key) > 0):
            raise _invalid(key, getattr(c, key), "a number of seconds > 0")
    if not 16 <= c.per_ip_ipv6_prefix <= 128:
        raise _invalid("per_ip_ipv6_prefix", c.per_ip_ipv6_prefix, "a prefix length 16-128")
    _validate_storage(c)
    _validate_proxy(c)


def _validate_proxy(c: Config) -> None:
    if c.proxy_protocol not in PROXY_MODES:
        raise _invalid("proxy_protocol", c.proxy_protocol, "one of " + ", ".join(PROXY_MODES))
    parts = [p.strip() for p in c.proxy_trusted.split(",") if p.strip()]
    try:
        for part in parts:
            ipaddress.ip_network(part, strict=False)
    except ValueError:
        raise _invalid("proxy_trusted", c.proxy_trusted,
                       "comma-separated CIDRs such as 10.0.0.0/8,::1/128") from None
    if c.proxy_protocol != "off" and not parts:
        # No default range: with 127.0.0.0/8 trusted, any local process could claim any client
        # address (limits, bans, the passive-connection check). The balancers must be named.
        raise _invalid("proxy_trusted", c.proxy_trusted,
                       "the balancers' CIDRs (no default) when proxy_protocol is on")
    if not (math.isfinite(c.proxy_timeout) and c.proxy_timeout > 0):
        raise _invalid("proxy_timeout", c.proxy_timeout, "a number of seconds > 0")


# S3 bucket names (AWS: 3-63 of [a-z0-9.-]; S3-compatible servers allow a little more).
_BUCKET_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,253}[A-Za-z0-9]")
_ENDPOINT_RE = re.compile(r"https?://[^\s/?#]+(/[^\s?#]*)?")
_REGION_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _validate_storage(c: Config) -> None:
    if c.storage not in STORAGES:
        raise _invalid("storage", c.storage, "one of " + ", ".join(STORAGES))
    if c.storage == "s3" and not c.s3_bucket:
        raise _invalid("s3_bucket", c.s3_bucket, 'a bucket name when storage is "s3"')
    if c.s3_bucket and not _BUCKET_RE.fullmatch(c.s3_bucket):
        raise _invalid("s3_bucket", c.s3_bucket, "a bucket name: 3-255 of A-Z a-z 0-9 . _ -")
    if c.s3_endpoint and not _ENDPOINT_RE.fullmatch(c.s3_endpoint):
        raise _invalid("s3_endpoint", c.s3_endpoint, "empty or an http:// or https:// URL")
    if _CONTROL_RE.search(c.s3_prefix) or ".." in c.s3_prefix.split("/"):
        raise _invalid("s3_prefix", c.s3_prefix, "a key prefix without control characters or ..")
    if c.s3_region and not _REGION_RE.fullmatch(c.s3_region):
        raise _invalid("s3_region", c.s3_region, "empty or a region name such as eu-west-1")


_PASV_ADDR_EXPECTED = "empty, an IPv4 address or a host name"
