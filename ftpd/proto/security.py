"""FTPS commands (RFC 2228, RFC 4217): AUTH, PBSZ, PROT, CCC — a mixin of ``Session``.

TLS state is part of the session's state: ``secure`` (the control connection is under TLS), then
``pbsz`` (PBSZ 0 was given, RFC 4217 §8) and ``prot_p`` (data connections are protected). Under
``tls = required`` a login needs TLS first and data connections need PROT P (``522`` otherwise, as
vsftpd answers).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from .errors import ArgumentError, BadSequence, FtpError, NotImplementedErr, ParamNotImplemented
from .replies import Reply
from .requests import StartTLS

if TYPE_CHECKING:
    from .session import Session

__all__ = ["Security"]

# RFC 4217 §4: TLS; "TLS-C" and "SSL"/"TLS-P" are legacy names still sent by clients (curl tries SSL
# first; FileZilla falls back to SSL). vsftpd and MS-FTPS treat SSL/TLS-P as TLS with PROT P implied.
_MECHANISMS = {"TLS": False, "TLS-C": False, "SSL": True, "TLS-P": True}


class Security:
    __slots__ = ()

    def _tls_off(self: Session) -> bool:
        # An implicit-FTPS session is under TLS even when explicit AUTH TLS is turned off.
        return self.settings.tls_mode == "off" and not self.secure

    def ftp_AUTH(self: Session, arg: str) -> Generator[Any, Any, None] | Reply:
        if self._tls_off():
            # Not "500": FileZilla and curl probe AUTH TLS/SSL and must carry on in plain text.
            raise NotImplementedErr("AUTH not supported: TLS is not configured.")
        mech = arg.strip().upper()
        if mech not in _MECHANISMS:
            raise ParamNotImplemented("Unknown AUTH type; use AUTH TLS.")
        if self.secure:
            raise BadSequence("Already using TLS.")
        return self._start_tls(_MECHANISMS[mech])

    def _start_tls(self: Session, protect_data: bool) -> Generator[Any, Any, None]:
        yield Reply(234, "AUTH TLS successful.")
        yield StartTLS()  # the IO layer upgrades the connection; a failed handshake closes it
        self.secure = True
        if protect_data:
            self.pbsz = True
            self.prot_p = True
        return None

    def ftp_PBSZ(self: Session, arg: str) -> Reply:
        if self._tls_off():
            raise NotImplementedErr("PBSZ not supported: TLS is not configured.")
        if not self.secure:
            raise BadSequence("PBSZ not allowed on insecure control connection.")
        if not arg.strip().isdigit():
            raise ArgumentError("Invalid PBSZ parameter.")
        self.pbsz = True
        return Reply(200, "PBSZ=0")  # RFC 4217 §8: a stream-based TLS buffer size is 0

    def ftp_PROT(self: Session, arg: str) -> Reply:
        if self._tls_off():
            raise NotImplementedErr("PROT not supported: TLS is not configured.")
        if not self.secure:
            raise BadSequence("PROT not allowed on insecure control connection.")
        if not self.pbsz:
            raise BadSequence("You must issue the PBSZ command prior to PROT.")
        level = arg.strip().upper()
        if level == "P":
            self.prot_p = True
            return Reply(200, "Protection level set to P.")
        if level == "C":
            if self.settings.tls_mode == "required":
                raise FtpError("PROT C not allowed: data connections must be encrypted.", 534)
            self.prot_p = False
            return Reply(200, "Protection level set to C.")
        if level in ("S", "E"):
            raise FtpError("Protection level not supported.", 536)
        raise ParamNotImplemented("Unknown protection level.")

    def ftp_CCC(self: Session, arg: str) -> Reply:
        if self._tls_off() or not self.secure:
            raise FtpError("Control connection is not protected.", 533)
        # Clearing the control channel would send commands (and their paths) in plain text again.
        raise FtpError("CCC not allowed by server policy.", 534)

    def check_data_protection(self: Session) -> None:
        """Under ``tls = required``, a data connection without PROT P is refused (vsftpd's 522)."""
        if self.settings.tls_mode == "required" and not self.prot_p:
            raise FtpError("Data connections must be encrypted: use PROT P.", 522)
