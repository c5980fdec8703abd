"""The life of one client connection, as a table: the phases it goes through and what moves it on.

Theory of operation. A connection is *accepted*; behind a trusted load balancer it first reads a
*PROXY header*; it is then admitted (an admission slot and a per-IP count are taken, or it is
refused with 421) and *greeted*. Before login it is in *login*; ``AUTH TLS`` (or the implicit-TLS
port, before anything else) puts it in *TLS handshake*, and it returns to where it was. After
``PASS`` it is *ready*; a transfer moves it to *transfer* and back. Every exit path (the peer's
reset or FIN, a timeout, a failed or abandoned handshake, our own bug, server shutdown) goes
through *closing* to *closed*, in ``ControlChannel.finish``, which runs exactly once and releases
every resource the connection holds (see docs/ARCHITECTURE.md, "Session lifecycle").

The resources are registered on the channel when taken, each in one slot that ``finish`` clears:

=====================  ===========================  =======================================
resource               taken in                     released by ``finish`` via
=====================  ===========================  =======================================
admission slot, IP     ``SessionHost.admit``        ``Slot.release``
per-user count         ``SessionHost.login_result`` ``SessionHost.logout``
PROXY header timer     ``connection_made``          ``TimerHandle.cancel``
passive port           ``OpenPassive`` performer    ``PassiveListener.close``
pending check/listing  the command driver           ``Future.cancel`` (the pending call)
data socket, buffers,  the transfer task            ``Task.cancel``; the task's ``finally``
open file                                           (a transfer ``detached`` by the control
                                                    connection's loss ends by itself first)
control transport      ``connection_made``          ``close`` (bounded) or ``abort``
=====================  ===========================  =======================================
"""

from __future__ import annotations

from ..proto.enums import KeyEnum

__all__ = ["Phase", "Event", "PHASES", "next_phase"]


class Phase(KeyEnum):
    ACCEPTED = "accepted"
    PROXY_HEADER = "proxy-header"
    GREETING = "greeting"
    TLS_HANDSHAKE = "tls-handshake"
    LOGIN = "login"
    READY = "ready"
    TRANSFER = "transfer"
    CLOSING = "closing"
    CLOSED = "closed"


class Event(KeyEnum):
    HEADER_WANTED = "header-wanted"  # the peer is a trusted balancer
    ADMITTED = "admitted"  # slot taken; the 220 goes out
    GREETED = "greeted"
    TLS_START = "tls-start"  # AUTH TLS performed (or the implicit port's handshake)
    TLS_DONE = "tls-done"
    LOGGED_IN = "logged-in"
    LOGGED_OUT = "logged-out"  # REIN, or USER while logged in
    TRANSFER_START = "transfer-start"
    TRANSFER_END = "transfer-end"
    CLOSE = "close"  # any exit path begins
    FINISHED = "finished"  # every resource released


P = Phase
E = Event
# (phase, event) -> next phase. CLOSE is accepted from every phase but CLOSED; a missing entry is
# our bug (logged by the channel), never a client's doing.
PHASES: dict[tuple[Phase, Event], Phase] = {
    (P.ACCEPTED, E.HEADER_WANTED): P.PROXY_HEADER,
    (P.ACCEPTED, E.ADMITTED): P.GREETING,
    (P.PROXY_HEADER, E.ADMITTED): P.GREETING,
    (P.GREETING, E.GREETED): P.LOGIN,
    (P.LOGIN, E.TLS_START): P.TLS_HANDSHAKE,
    (P.READY, E.TLS_START): P.TLS_HANDSHAKE,
    (P.LOGIN, E.LOGGED_IN): P.READY,
    (P.READY, E.LOGGED_IN): P.READY,
    (P.READY, E.LOGGED_OUT): P.LOGIN,
    (P.LOGIN, E.LOGGED_OUT): P.LOGIN,
    (P.READY, E.TRANSFER_START): P.TRANSFER,
    (P.TRANSFER, E.TRANSFER_END): P.READY,
    (P.CLOSING, E.FINISHED): P.CLOSED,
    **{(p, E.CLOSE): P.CLOSING for p in Phase if p not in (P.CLOSING, P.CLOSED)},
}


def next_phase(phase: Phase, event: Event, logged_in: bool = False) -> Phase | None:
    """The phase after ``event``, or None if the table has no such transition. ``TLS_DONE``
    returns to login or ready, whichever the session was in (``logged_in``)."""
    if event is E.TLS_DONE:
        return (P.READY if logged_in else P.LOGIN) if phase is P.TLS_HANDSHAKE else None
    return PHASES.get((phase, event))
