"""The session lifecycle table (``ftpd/server/lifecycle.py``)."""

from __future__ import annotations

from ftpd.server.lifecycle import PHASES, Event, Phase, next_phase


def test_every_phase_but_the_last_two_can_close() -> None:
    for phase in Phase:
        closes = next_phase(phase, Event.CLOSE)
        if phase in (Phase.CLOSING, Phase.CLOSED):
            assert closes is None
        else:
            assert closes is Phase.CLOSING


def test_closed_only_through_closing() -> None:
    assert [k for k, v in PHASES.items() if v is Phase.CLOSED] == [(Phase.CLOSING, Event.FINISHED)]


def test_a_whole_life() -> None:
    phase = Phase.ACCEPTED
    for event in (Event.HEADER_WANTED, Event.ADMITTED, Event.GREETED, Event.TLS_START):
        phase = next_phase(phase, event) or phase
    assert phase is Phase.TLS_HANDSHAKE
    assert next_phase(phase, Event.TLS_DONE, logged_in=False) is Phase.LOGIN
    assert next_phase(phase, Event.TLS_DONE, logged_in=True) is Phase.READY
    assert next_phase(Phase.LOGIN, Event.LOGGED_IN) is Phase.READY
    assert next_phase(Phase.READY, Event.TRANSFER_START) is Phase.TRANSFER
    assert next_phase(Phase.TRANSFER, Event.TRANSFER_END) is Phase.READY
    assert next_phase(Phase.READY, Event.LOGGED_OUT) is Phase.LOGIN


def test_missing_transitions_are_refused() -> None:
    assert next_phase(Phase.LOGIN, Event.TRANSFER_START) is None  # not logged in
    assert next_phase(Phase.CLOSED, Event.ADMITTED) is None
    assert next_phase(Phase.READY, Event.TLS_DONE) is None
