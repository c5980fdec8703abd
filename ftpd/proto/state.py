"""What a session is in: its state machines as tables, the sequence rules, and the state record.

Theory of operation
-------------------
A session is several small machines rather than one big one; each is an enum and a table from
``(state, event)`` to the next state:

- **login**: ``NEED_USER`` → (USER) → ``NEED_PASS`` → (PASS ok) → ``LOGGED_IN``. A failed PASS goes
  back to ``NEED_USER``; REIN returns to ``NEED_USER`` from anywhere; USER while logged in flushes
  the login (RFC 959 §4.1.1) and asks for the new user's password.
- **data**: the data connection prepared for the next transfer. ``NONE`` → (PASV/EPSV) →
  ``PASSIVE`` or (PORT/EPRT) → ``ACTIVE``; PASV/PORT again replace the previous setting. A transfer
  command consumes it (START → ``NONE``): a passive listener or an active address is good for one
  transfer (RFC 959 §3.2). ABOR and REIN drop it (RESET).
- **tls**: the control connection, ``PLAIN`` → (AUTH, or the implicit FTPS port) → ``SECURE``;
  there is no way back (CCC is refused by policy).
- **prot**: data protection (RFC 4217 §8-9). ``UNSET`` (clear, no PBSZ yet) → (PBSZ) → ``CLEAR``
  ⇄ (PROT C / PROT P) ⇄ ``PRIVATE``. The legacy AUTH SSL / TLS-P and the implicit FTPS port
  protect data at once (PROTECT).
- the running transfer: ``SessionState.transfer`` (the one place that says a transfer runs).
- one-shot slots: rename-from (set by RNFR, consumed by RNTO, cleared by any other command) and the
  restart offset (set by REST, consumed by the next transfer).

Transitions live here and nowhere else: ``step(table, state, event)`` returns the next state, and an
event with no entry is a sequence error (``503``), as in h11. Preconditions that a command states in
the command table (``CommandSpec.needs``) are checked by ``RULES``, before the handler runs.
``python -m ftpd.proto.state`` prints the tables.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol, TypeVar

from ..fs.base import Capabilities
from .enums import KeyEnum
from .errors import ArgumentError, BadSequence, FtpError, NotLoggedIn
from .listing import DEFAULT_FACTS
from .netaddr import normalise_ip
from .requests import Transfer

__all__ = [
    "Login",
    "Data",
    "Tls",
    "Prot",
    "Event",
    "TlsMode",
    "LOGIN",
    "DATA",
    "TLS",
    "PROT",
    "TABLES",
    "step",
    "Need",
    "RULES",
    "Account",
    "SessionSettings",
    "SessionState",
]

S = TypeVar("S", bound=Enum)


class Login(KeyEnum):
    NEED_USER = "need-user"
    NEED_PASS = "need-pass"
    LOGGED_IN = "logged-in"


class Data(KeyEnum):
    NONE = "none"
    PASSIVE = "passive"
    ACTIVE = "active"


class Tls(KeyEnum):
    PLAIN = "plain"
    SECURE = "secure"


class Prot(KeyEnum):
    UNSET = "unset"  # clear, and PBSZ not given yet: PROT is out of sequence (RFC 4217 §9)
    CLEAR = "clear"  # PROT C
    PRIVATE = "private"  # PROT P: data connections under TLS


class Event(KeyEnum):
    # login
    USER = "USER"
    PASS_OK = "PASS_OK"
    PASS_FAIL = "PASS_FAIL"
    REIN = "REIN"
    # data
    PASV = "PASV"
    PORT = "PORT"
    START = "START"
    RESET = "RESET"
    # tls
    AUTH = "AUTH"
    IMPLICIT = "IMPLICIT"
    # prot
    PBSZ = "PBSZ"
    PROT_C = "PROT_C"
    PROT_P = "PROT_P"
    PROTECT = "PROTECT"


class TlsMode(Enum):
    """The ``tls`` setting: whether AUTH TLS is offered, and whether it is required."""

    OFF = "off"
    EXPLICIT = "explicit"
    REQUIRED = "required"  # login needs TLS first, data connections need PROT P


LOGIN: Mapping[tuple[Login, Event], Login] = {
    (Login.NEED_USER, Event.USER): Login.NEED_PASS,
    (Login.NEED_PASS, Event.USER): Login.NEED_PASS,
    (Login.LOGGED_IN, Event.USER): Login.NEED_PASS,
    (Login.NEED_PASS, Event.PASS_OK): Login.LOGGED_IN,
    (Login.NEED_PASS, Event.PASS_FAIL): Login.NEED_USER,
    (Login.NEED_USER, Event.REIN): Login.NEED_USER,
    (Login.NEED_PASS, Event.REIN): Login.NEED_USER,
    (Login.LOGGED_IN, Event.REIN): Login.NEED_USER,
}

DATA: Mapping[tuple[Data, Event], Data] = {
    (Data.NONE, Event.PASV): Data.PASSIVE,
    (Data.PASSIVE, Event.PASV): Data.PASSIVE,
    (Data.ACTIVE, Event.PASV): Data.PASSIVE,
    (Data.NONE, Event.PORT): Data.ACTIVE,
    (Data.PASSIVE, Event.PORT): Data.ACTIVE,
    (Data.ACTIVE, Event.PORT): Data.ACTIVE,
    (Data.PASSIVE, Event.START): Data.NONE,
    (Data.ACTIVE, Event.START): Data.NONE,
    (Data.NONE, Event.RESET): Data.NONE,
    (Data.PASSIVE, Event.RESET): Data.NONE,
    (Data.ACTIVE, Event.RESET): Data.NONE,
}

TLS: Mapping[tuple[Tls, Event], Tls] = {
    (Tls.PLAIN, Event.AUTH): Tls.SECURE,
    (Tls.PLAIN, Event.IMPLICIT): Tls.SECURE,
}

PROT: Mapping[tuple[Prot, Event], Prot] = {
    (Prot.UNSET, Event.PBSZ): Prot.CLEAR,
    (Prot.CLEAR, Event.PBSZ): Prot.CLEAR,
    (Prot.PRIVATE, Event.PBSZ): Prot.PRIVATE,
    (Prot.CLEAR, Event.PROT_C): Prot.CLEAR,
    (Prot.PRIVATE, Event.PROT_C): Prot.CLEAR,
    (Prot.CLEAR, Event.PROT_P): Prot.PRIVATE,
    (Prot.PRIVATE, Event.PROT_P): Prot.PRIVATE,
    (Prot.UNSET, Event.PROTECT): Prot.PRIVATE,
    (Prot.CLEAR, Event.PROTECT): Prot.PRIVATE,
    (Prot.PRIVATE, Event.PROTECT): Prot.PRIVATE,
}

# Every machine by name (keys are (state, event) of that machine's own enum).
TABLES: Mapping[str, Mapping[Any, Enum]] = {"login": LOGIN, "data": DATA, "tls": TLS, "prot": PROT}


def step(table: Mapping[tuple[S, Event], S], state: S, event: Event, why: str = "") -> S:
    """The state after ``event``; no entry means the event is out of sequence (503, ``why``)."""
    try:
        return table[(state, event)]
    except KeyError:
        text = why or f"Bad sequence of commands ({event.value} in state {state.value})."
        raise BadSequence(text) from None


# ---------------------------------------------------------------------------------- sequence rules
class Need(KeyEnum):
    """A precondition a command states in the command table; ``RULES`` checks it."""

    USER_GIVEN = "user-given"  # PASS: only right after USER (RFC 959 §4.1.1)
    RENAME_FROM = "rename-from"  # RNTO: only right after RNFR (RFC 959 §4.1.3)
    NOT_LOGGED_IN = "not-logged-in"  # HOST: before login only (RFC 7151 §3)
    TLS_FOR_LOGIN = "tls-for-login"  # USER: under tls = required, only after AUTH TLS
    SECURE = "secure"  # PBSZ, PROT: only on a TLS control connection (RFC 4217 §8-9)
    PBSZ_GIVEN = "pbsz-given"  # PROT: only after PBSZ (RFC 4217 §9)
    NOT_EPSV_ALL = "not-epsv-all"  # PASV, PORT, EPRT: refused after EPSV ALL (RFC 2428 §3)


# Members tested on every command, as module globals (Python 3.11's enum lookup is slow: enums.py).
_NEED_USER, _NEED_PASS, _LOGGED_IN = Login.NEED_USER, Login.NEED_PASS, Login.LOGGED_IN
_NO_DATA, _PLAIN, _SECURE, _UNSET, _PRIVATE = Data.NONE, Tls.PLAIN, Tls.SECURE, Prot.UNSET, Prot.PRIVATE
_TLS_REQUIRED = TlsMode.REQUIRED


def _user_given(s: SessionState, verb: str) -> FtpError | None:
    if s.login is _NEED_PASS:
        return None
    return BadSequence("Already logged in." if s.logged_in else "Login with USER first.")


def _rename_from(s: SessionState, verb: str) -> FtpError | None:
    return None if s.rename_from is not None else BadSequence("RNFR required first.")


def _not_logged_in(s: SessionState, verb: str) -> FtpError | None:
    return BadSequence("HOST must come before USER.") if s.logged_in else None


def _tls_for_login(s: SessionState, verb: str) -> FtpError | None:
    if s.settings.tls_mode is _TLS_REQUIRED and s.tls is _PLAIN:
        return NotLoggedIn("TLS required: use AUTH TLS before USER.")
    return None


def _secure(s: SessionState, verb: str) -> FtpError | None:
    if s.tls is _PLAIN:
        return BadSequence(f"{verb} not allowed on insecure control connection.")
    return None


def _pbsz_given(s: SessionState, verb: str) -> FtpError | None:
    if s.prot is _UNSET:
        return BadSequence("You must issue the PBSZ command prior to PROT.")
    return None


def _not_epsv_all(s: SessionState, verb: str) -> FtpError | None:
    # 501, not 503: what is refused is the kind of data connection asked for.
    return ArgumentError(f"{verb} not allowed after EPSV ALL.") if s.epsv_all else None


# The rule for each precondition: the error that answers the command when it does not hold.
RULES: Mapping[Need, Callable[[SessionState, str], FtpError | None]] = {
    Need.USER_GIVEN: _user_given,
    Need.RENAME_FROM: _rename_from,
    Need.NOT_LOGGED_IN: _not_logged_in,
    Need.TLS_FOR_LOGIN: _tls_for_login,
    Need.SECURE: _secure,
    Need.PBSZ_GIVEN: _pbsz_given,
    Need.NOT_EPSV_ALL: _not_epsv_all,
}


# ---------------------------------------------------------------------------------- the record
class Account(Protocol):
    """What the core needs of a logged-in account (``ftpd.auth.Account`` and test fakes)."""

    @property
    def name(self) -> str: ...

    @property
    def perms(self) -> str: ...


@dataclass(frozen=True, slots=True)
class SessionSettings:
    """The part of the configuration the protocol core needs (shared by all sessions)."""

    banner: str = "ftpd ready."
    max_login_attempts: int = 3
    login_fail_delay: float = 1.0
    port_promiscuous: bool = False
    tls_mode: TlsMode = TlsMode.OFF
    # What the configured storage can do, known before login: FEAT may come before USER (lftp).
    capabilities: Capabilities = field(default_factory=Capabilities)


class SessionState:
    """The state of one control connection: one field per machine, plus the one-shot slots.

    Handlers (``ftpd.proto.handlers``) read and change it; machine fields change only through
    ``step`` and the tables above.
    """

    __slots__ = (
        "settings",
        "peer_ip",
        "local_ip",
        "login",
        "data",
        "tls",
        "prot",
        "transfer",
        "user",
        "account",
        "perms",
        "cwd",
        "active_addr",
        "epsv_all",
        "ascii",
        "rest",
        "rename_from",
        "failed_logins",
        "closing",
        "quit_pending",
        "mlst_facts",
        "caps",
    )

    def __init__(
        self, settings: SessionSettings, peer_ip: str, local_ip: str, *, implicit_tls: bool = False
    ) -> None:
        self.settings = settings
        self.peer_ip = normalise_ip(peer_ip)
        self.local_ip = normalise_ip(local_ip)
        self.login = _NEED_USER
        self.data = _NO_DATA
        self.tls = _PLAIN
        self.prot = _UNSET
        if implicit_tls:
            # The implicit FTPS port: TLS from the first byte. Data is protected by default there
            # too (clients such as aioftp's open TLS data connections without PROT P).
            self.tls = step(TLS, self.tls, Event.IMPLICIT)
            self.prot = step(PROT, self.prot, Event.PROTECT)
        self.transfer: Transfer | None = None  # the running transfer
        self.user = ""  # the name given with USER
        self.account: Account | None = None  # set by a successful login
        self.perms = ""
        self.cwd = "/"
        self.active_addr: tuple[str, int] | None = None  # PORT/EPRT, kept until the transfer ends
        self.epsv_all = False  # RFC 2428 §3: only EPSV sets up data connections from now on
        self.ascii = True  # RFC 959 §3.1.1.1: TYPE A is the default
        self.rest = 0
        self.rename_from: str | None = None
        self.failed_logins = 0
        self.closing = False  # close the control connection once the replies are sent
        self.quit_pending = False  # QUIT arrived during a transfer
        self.mlst_facts: frozenset[str] = DEFAULT_FACTS
        # What the storage behind the account can do: the configured backend's until login, then
        # the account's own filesystem's.
        self.caps = settings.capabilities

    @property
    def logged_in(self) -> bool:
        return self.login is _LOGGED_IN

    @property
    def secure(self) -> bool:
        """The control connection is under TLS."""
        return self.tls is _SECURE

    @property
    def prot_p(self) -> bool:
        """Data connections are protected (PROT P, RFC 4217 §9)."""
        return self.prot is _PRIVATE


if __name__ == "__main__":  # pragma: no cover - documentation aid
    for name, table in TABLES.items():
        print(f"{name}:")
        for (src, ev), dst in table.items():
            print(f"  {src.value:14} --{ev.value}--> {dst.value}")
