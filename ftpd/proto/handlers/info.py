"""Informational commands (RFC 959 §4.1.3, RFC 2389, RFC 2640): SYST, NOOP, CLNT, FEAT, OPTS, STAT.

HELP and SITE read the command table and live with it, in ``ftpd.proto.commands``.
"""

from __future__ import annotations

from ..errors import ArgumentError, FileUnavailable, NotLoggedIn
from ..listing import ALL_FACTS, DEFAULT_FACTS
from ..replies import Reply
from ..requests import HandlerGen
from ..state import SessionState, Tls, TlsMode
from .lists import stat_listing

__all__ = [
    "features",
    "status",
    "ftp_SYST",
    "ftp_NOOP",
    "ftp_CLNT",
    "ftp_FEAT",
    "ftp_OPTS",
    "ftp_STAT",
]


def features(s: SessionState) -> list[str]:
    """FEAT lines: the extensions implemented, less what the storage cannot do (RFC 2389 §3.2)."""
    facts = "".join(f"{f}{'*' if f in s.mlst_facts else ''};" for f in ALL_FACTS)
    feats = ["EPRT", "EPSV", "HOST", "MDTM", f"MLST {facts}", "REST STREAM", "SIZE", "TVFS", "UTF8"]
    if s.caps.set_mtime:
        feats.append("MFMT")
    if s.settings.tls_mode is not TlsMode.OFF or s.tls is Tls.SECURE:
        feats += ["AUTH TLS", "PBSZ", "PROT"]
    return sorted(feats)


def status(s: SessionState) -> Reply:
    """STAT without an argument: the session's status (RFC 959 §4.1.3)."""
    lines = [f"FTP server status: connected from {s.peer_ip}"]
    lines.append(f"Logged in as {s.account.name}" if s.account is not None else "Not logged in")
    lines.append(f"TYPE: {'ASCII' if s.ascii else 'BINARY'}; STRUcture: File; MODE: Stream")
    t = s.transfer
    if t is not None:
        lines.append(f"Data connection open: {t.kind} {t.vpath} ({t.bytes} bytes transferred)")
    else:
        lines.append(f"Data connection: {s.data.value}")
    lines.append("End of status.")
    return Reply(211, *lines)


def ftp_SYST(s: SessionState, arg: str, path: str) -> Reply:
    return Reply(215, "UNIX Type: L8")


_NOOP_OK = Reply(200, "NOOP ok.")  # a keep-alive's reply, encoded once (see ``Reply``)


def ftp_NOOP(s: SessionState, arg: str, path: str) -> Reply:
    return _NOOP_OK


def ftp_CLNT(s: SessionState, arg: str, path: str) -> Reply:
    return Reply(200, "Noted.")


def ftp_FEAT(s: SessionState, arg: str, path: str) -> Reply:
    return Reply(211, "Features:", *features(s), "End")


def ftp_OPTS(s: SessionState, arg: str, path: str) -> Reply:
    name, _, value = arg.strip().partition(" ")
    name = name.upper()
    if name == "UTF8":
        # RFC 2640 §3.2; rclone (jlaffaye/ftp) fails its login on anything but 200/202/501/504.
        if value.strip().upper() in ("", "ON"):
            return Reply(200, "Always in UTF8 mode.")
        return Reply(504, "UTF8 cannot be turned off.")
    if name == "MLST":
        # RFC 3659 §7.9: unknown facts are dropped silently, the accepted ones echoed.
        wanted = [f.lower() for f in value.strip().split(";") if f]
        facts = frozenset(f for f in wanted if f in DEFAULT_FACTS)
        s.mlst_facts = facts
        return Reply(200, "MLST OPTS " + "".join(f"{f};" for f in ALL_FACTS if f in facts))
    raise ArgumentError("Invalid OPTS argument.")


def ftp_STAT(s: SessionState, arg: str, path: str) -> Reply | HandlerGen:
    if not arg.strip():
        return status(s)
    # STAT <path> is a listing: it needs what LIST needs, though STAT alone does not.
    if not s.logged_in:
        raise NotLoggedIn("Log in with USER and PASS first.")
    if "l" not in s.perms:
        raise FileUnavailable("Permission denied.")
    return stat_listing(s, arg)
