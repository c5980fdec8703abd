"""Cause and fix for the errors a load run commonly meets, shown beside the server's own words.

One table, :data:`HINTS`, matched in order against an error's key (``"<op> <reply code>"`` or
``"<op> <exception>"``) and the text kept with it (the reply text, or the exception's message).
The first match wins; an error with no match is shown with its text alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Hint:
    """An error pattern and what to tell the operator about it."""

    what: re.Pattern[str]  # matched against the part of the key after the op name
    text: re.Pattern[str] | None  # matched against the kept text (None: any)
    cause: str
    fix: str


def _h(what: str, text: str | None, cause: str, fix: str) -> Hint:
    return Hint(re.compile(what), re.compile(text, re.I) if text else None, cause, fix)


HINTS: tuple[Hint, ...] = (
    _h(
        r"^421$",
        r"from your|per.?ip|same ip|this ip|internet address|your address|same address",
        "the server limits connections per client address (ftpd max_per_ip, pyftpdlib "
        "max_cons_per_ip, vsftpd max_per_ip)",
        "spread the sessions over several loopback addresses with --source-addresses "
        "127.0.0.1-127.0.0.8, or raise the server's per-address limit (ftpd --max-per-ip 0)",
    ),
    _h(
        r"^421$",
        r"too many|connected users|max.?cons|maximum",
        "the server's limit on sessions in all was reached (ftpd max_sessions, pyftpdlib "
        "max_cons, vsftpd max_clients)",
        "raise the server's session limit (ftpd --max-sessions 0), or run fewer sessions",
    ),
    _h(
        r"^421$",
        r"timeout|idle",
        "the server closed sessions that stayed idle too long",
        "raise the server's idle timeout, or use --noop-sample all in hold",
    ),
    _h(
        r"^530$",
        None,
        "the server refused the login",
        "check the user and password (the URL ftpd prints on start-up has both: "
        "ftp://user:password@127.0.0.1:2121/)",
    ),
    _h(
        r"^(550|553|532)$",
        None,
        "the server refused a file operation: usually the user may not write there "
        "(anonymous users are read-only)",
        "log in as a user with write permission, or use --mix retr=1 for downloads only",
    ),
    _h(
        r"^(425|426)$",
        None,
        "a data connection failed (passive ports exhausted, or a firewall)",
        "give the server a wider passive port range, or run fewer transfers at once",
    ),
    _h(
        r"^(500|502|504|534)$",
        r"AUTH|TLS|SSL",
        "the server does not offer FTPS (AUTH TLS)",
        "drop --tls (or use ftp:// rather than ftpes://), or configure the server's certificate",
    ),
    _h(
        r"^ConnectionRefusedError$",
        None,
        "nothing listens at {address}",
        "start the server, or fix the URL's host and port (ftpd listens on 2121 by default "
        "and prints its URL on start-up)",
    ),
    _h(
        r"^(SSLCertVerificationError|SSLError)$",
        r"certificate|verify",
        "the server's TLS certificate is not trusted",
        "pass its CA with --cafile ca.pem, or --insecure to skip the check (tests only)",
    ),
    _h(
        r"^TimeoutError$",
        None,
        "the server did not answer within --timeout (overloaded, stopped, or a lost packet)",
        "watch the server's CPU; lower the load (--rate, fewer sessions) or raise --timeout",
    ),
    _h(
        r"^OSError$",
        r"too many open files",
        "this machine ran out of file descriptors",
        "raise ulimit -n, or spread the sessions with --procs auto",
    ),
    _h(
        r"^OSError$",
        r"assign requested address",
        "this client ran out of ephemeral ports toward the server",
        "spread the sessions over --source-addresses 127.0.0.1-127.0.0.8",
    ),
    _h(
        r"^MissedStart$",
        None,
        "the schedule (--rate) asked for more starts than the sessions could make in time",
        "add sessions (each runs one action at a time), or lower --rate",
    ),
)


def hint_for(key: str, text: str, address: str) -> Hint | None:
    """The first hint matching an error ``key`` and its kept ``text``; None if none does."""
    what = key.split(" ", 1)[1] if " " in key else key
    for hint in HINTS:
        if hint.what.search(what) and (hint.text is None or hint.text.search(text)):
            return Hint(hint.what, hint.text, hint.cause.format(address=address), hint.fix)
    return None


def explain(errors: dict[str, int], texts: dict[str, str], address: str) -> list[str]:
    """Lines for the summary: each error kind, its count, the server's words, cause and fix."""
    lines: list[str] = []
    for key, n in errors.items():
        text = texts.get(key, "")
        lines.append(f"  {key}: {n}" + (f"  ({text})" if text else ""))
        hint = hint_for(key, text, address)
        if hint is not None:
            lines.append(f"    cause: {hint.cause}")
            lines.append(f"    fix: {hint.fix}")
    return lines
