"""What the machine offers, and what CI requires of it.

``FTPD_REQUIRE_CLIENTS=1`` (set by ``.ci/run``) turns "this machine lacks X" skips into failures:
a CI image without an interop client or without ``::1`` must go red, not quietly skip a fifth of
the suite.
"""

from __future__ import annotations

import os
import socket

import pytest

REQUIRE_ENV = "FTPD_REQUIRE_CLIENTS"


def clients_required() -> bool:
    """Whether a missing client or feature must fail (CI) rather than skip (a developer's box)."""
    return os.environ.get(REQUIRE_ENV, "").strip().lower() not in ("", "0", "no", "false")


def missing(msg: str) -> None:
    """Skip because ``msg``; or fail under ``FTPD_REQUIRE_CLIENTS``."""
    if clients_required():
        pytest.fail(f"{msg}; {REQUIRE_ENV} is set, so this is required", pytrace=False)
    pytest.skip(msg)


def ipv6_loopback_error() -> str | None:
    """Why ``::1`` cannot be used on this machine, or None when it can."""
    if not socket.has_ipv6:
        return "Python was built without IPv6"
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError as exc:
        return f"no IPv6 loopback on this machine: {exc}"
    return None


def require_ipv6() -> None:
    """Skip (fail in CI) when this machine has no IPv6 loopback."""
    why = ipv6_loopback_error()
    if why is not None:
        missing(why)


def require_host(host: str) -> None:
    """``require_ipv6`` for an IPv6 host, nothing for IPv4: call it before starting a server."""
    if ":" in host:
        require_ipv6()
