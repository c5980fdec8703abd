"""The session state machines, as tables.

Theory of operation
-------------------
A session is several small machines rather than one big one:

- **login**: ``NEED_USER`` → (USER) → ``NEED_PASS`` → (PASS ok) → ``LOGGED_IN``. A failed PASS goes back
  to ``NEED_USER``; REIN returns to ``NEED_USER`` from anywhere; USER while logged in flushes the login
  (RFC 959 §4.1.1) and asks for the new user's password.
- **data**: ``NONE`` → (PASV/EPSV) → ``PASSIVE`` or (PORT/EPRT) → ``ACTIVE``; a transfer command moves
  either to ``TRANSFERRING``; the transfer's end (complete, failed or aborted) returns to ``NONE``, because
  a passive listener or an active address is good for one transfer (RFC 959 §3.2). PASV/PORT again
  replace the previous setting. ABOR, REIN return to ``NONE``.
- one-shot slots kept on the session: rename-from (set by RNFR, consumed by RNTO, cleared by any
  other command) and the restart offset (set by REST, consumed by the next transfer).

Transitions live here and nowhere else: ``step(table, state, event)`` returns the next state, and an
event with no entry is a sequence error (``503``). ``python -m ftpd.proto.state`` prints the tables.
"""

from __future__ import annotations

from enum import Enum
from typing import TypeVar

from .errors import BadSequence

__all__ = ["Login", "Data", "LOGIN", "DATA", "step"]

S = TypeVar("S", bound=Enum)


class Login(Enum):
    NEED_USER = "need-user"
    NEED_PASS = "need-pass"
    LOGGED_IN = "logged-in"


class Data(Enum):
    NONE = "none"
    PASSIVE = "passive"
    ACTIVE = "active"
    TRANSFERRING = "transferring"


LOGIN: dict[tuple[Login, str], Login] = {
    (Login.NEED_USER, "USER"): Login.NEED_PASS,
    (Login.NEED_PASS, "USER"): Login.NEED_PASS,
    (Login.LOGGED_IN, "USER"): Login.NEED_PASS,
    (Login.NEED_PASS, "PASS_OK"): Login.LOGGED_IN,
    (Login.NEED_PASS, "PASS_FAIL"): Login.NEED_USER,
    (Login.NEED_USER, "REIN"): Login.NEED_USER,
    (Login.NEED_PASS, "REIN"): Login.NEED_USER,
    (Login.LOGGED_IN, "REIN"): Login.NEED_USER,
}

DATA: dict[tuple[Data, str], Data] = {
    (Data.NONE, "PASV"): Data.PASSIVE,
    (Data.PASSIVE, "PASV"): Data.PASSIVE,
    (Data.ACTIVE, "PASV"): Data.PASSIVE,
    (Data.NONE, "PORT"): Data.ACTIVE,
    (Data.PASSIVE, "PORT"): Data.ACTIVE,
    (Data.ACTIVE, "PORT"): Data.ACTIVE,
    (Data.PASSIVE, "START"): Data.TRANSFERRING,
    (Data.ACTIVE, "START"): Data.TRANSFERRING,
    (Data.TRANSFERRING, "END"): Data.NONE,
    (Data.PASSIVE, "RESET"): Data.NONE,
    (Data.ACTIVE, "RESET"): Data.NONE,
    (Data.NONE, "RESET"): Data.NONE,
}


def step(table: dict[tuple[S, str], S], state: S, event: str) -> S:
    """The state after ``event``; no entry means the event is out of sequence (503)."""
    try:
        return table[(state, event)]
    except KeyError:
        raise BadSequence(f"Bad sequence of commands ({event} in state {state.value}).") from None


if __name__ == "__main__":  # pragma: no cover - documentation aid
    for name, table in (("login", LOGIN), ("data", DATA)):
        print(f"{name}:")
        for (src, ev), dst in table.items():
            print(f"  {src.value:14} --{ev}--> {dst.value}")
