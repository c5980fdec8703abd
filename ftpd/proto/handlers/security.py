"""FTPS commands (RFC 2228, RFC 4217): AUTH, PBSZ, PROT, CCC.

The tls and prot machines of ``ftpd.proto.state`` move here (and at construction, for a session on
the implicit FTPS port). When they may be used is in the command table: an FTPS command is ``502``
while TLS is neither configured nor in use; PBSZ and PROT need a TLS control connection, PROT a
PBSZ first (``503``). Under ``tls = required`` PROT C is refused and data connections need PROT P
(``522``, as vsftpd answers; see ``handlers.transfers``).
"""

from __future__ import annotations

from ..errors import ArgumentError, FtpError, ParamNotImplemented
from ..replies import Reply
from ..requests import HandlerGen, StartTLS
from ..state import PROT, TLS, Event, SessionState, Tls, TlsMode, step

__all__ = ["ftp_AUTH", "ftp_PBSZ", "ftp_PROT", "ftp_CCC"]

# RFC 4217 §4: TLS; "TLS-C" and "SSL"/"TLS-P" are legacy names still sent by clients (curl tries
# SSL first; FileZilla falls back to SSL). vsftpd and MS-FTPS treat SSL/TLS-P as TLS with PROT P
# implied.
_PROTECTS_DATA = {"TLS": False, "TLS-C": False, "SSL": True, "TLS-P": True}


def ftp_AUTH(s: SessionState, arg: str, path: str) -> HandlerGen:
    mech = arg.strip().upper()
    if mech not in _PROTECTS_DATA:
        raise ParamNotImplemented("Unknown AUTH type; use AUTH TLS.")
    step(TLS, s.tls, Event.AUTH, "Already using TLS.")  # in sequence? (503 before any 234)
    return _start_tls(s, _PROTECTS_DATA[mech])


def _start_tls(s: SessionState, protect_data: bool) -> HandlerGen:
    yield Reply(234, "AUTH TLS successful.")
    yield StartTLS()  # the IO layer upgrades the connection; a failed handshake closes it
    s.tls = step(TLS, s.tls, Event.AUTH)
    if protect_data:
        s.prot = step(PROT, s.prot, Event.PROTECT)
    return None


def ftp_PBSZ(s: SessionState, arg: str, path: str) -> Reply:
    if not arg.strip().isdigit():
        raise ArgumentError("Invalid PBSZ parameter.")
    s.prot = step(PROT, s.prot, Event.PBSZ)
    return Reply(200, "PBSZ=0")  # RFC 4217 §8: a stream-based TLS buffer size is 0


def ftp_PROT(s: SessionState, arg: str, path: str) -> Reply:
    level = arg.strip().upper()
    if level == "P":
        s.prot = step(PROT, s.prot, Event.PROT_P)
        return Reply(200, "Protection level set to P.")
    if level == "C":
        if s.settings.tls_mode is TlsMode.REQUIRED:
            raise FtpError("PROT C not allowed: data connections must be encrypted.", 534)
        s.prot = step(PROT, s.prot, Event.PROT_C)
        return Reply(200, "Protection level set to C.")
    if level in ("S", "E"):
        raise FtpError("Protection level not supported.", 536)
    raise ParamNotImplemented("Unknown protection level.")


def ftp_CCC(s: SessionState, arg: str, path: str) -> Reply:
    if s.tls is Tls.PLAIN:
        raise FtpError("Control connection is not protected.", 533)
    # Clearing the control channel would send commands (and their paths) in plain text again.
    raise FtpError("CCC not allowed by server policy.", 534)
