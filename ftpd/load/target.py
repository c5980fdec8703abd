"""The server to load, from a URL as ``ftpd`` prints it: ``ftp://user:password@host:port/``.

``ftp://`` is plain FTP, ``ftpes://`` explicit FTPS (AUTH TLS, RFC 4217) and ``ftps://`` implicit
FTPS (TLS from the first byte, port 990 by default), the schemes curl and lftp use. User and
password are percent-decoded (``ftpd`` quotes them). Without a URL the defaults match a default
``ftpd``: 127.0.0.1, port 2121, user ``user``.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 2121  # ftpd's default control port
DEFAULT_USER = "user"  # ftpd's default single user
ANONYMOUS_PASSWORD = "ftpd-load@"

# scheme -> (default port, explicit TLS, implicit TLS)
_SCHEMES: dict[str, tuple[int, bool, bool]] = {
    "ftp": (21, False, False),
    "ftpes": (21, True, False),
    "ftps": (990, False, True),
}


@dataclass(frozen=True, slots=True)
class Target:
    """Where to connect and how to log in (fields left None were not in the URL)."""

    host: str | None = None
    port: int | None = None
    user: str | None = None
    password: str | None = None
    tls: bool = False
    implicit_tls: bool = False


def parse_url(url: str) -> Target:
    """A :class:`Target` from ``ftp://``, ``ftpes://`` or ``ftps://`` URLs; ValueError if bad."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise ValueError(
            f"not an FTP URL: {url!r} (use ftp://, ftpes:// for explicit or ftps:// for "
            "implicit TLS, e.g. ftp://user:password@127.0.0.1:2121/)"
        )
    default_port, tls, implicit = _SCHEMES[scheme]
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"bad port in {url!r}") from None
    if not parts.hostname:
        raise ValueError(f"no host in {url!r}")
    return Target(
        host=parts.hostname,
        port=port if port is not None else default_port,
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        tls=tls,
        implicit_tls=implicit,
    )


def display_url(host: str, port: int, user: str, tls: bool, implicit: bool) -> str:
    """The target as a URL without the password (for titles and reports)."""
    scheme = "ftps" if implicit else "ftpes" if tls else "ftp"
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{user}@{shown}:{port}/"
