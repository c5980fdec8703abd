"""The session state machines: every transition of the tables, and that any event without an
entry is a sequence error (503) — at the table level and through the session."""

from __future__ import annotations

from enum import Enum

import pytest
from support.driver import drive

from ftpd.proto.errors import BadSequence, FtpError
from ftpd.proto.session import Session, SessionSettings
from ftpd.proto.state import DATA, LOGIN, Data, Login, step

TABLES = {"login": (LOGIN, Login), "data": (DATA, Data)}


def _cases(name: str) -> list[tuple[str, Enum, str, Enum]]:
    table, _ = TABLES[name]
    return [(name, src, ev, dst) for (src, ev), dst in table.items()]


def _missing(name: str) -> list[tuple[str, Enum, str]]:
    table, states = TABLES[name]
    events = sorted({ev for _, ev in table} | {"BOGUS"})
    return [(name, s, ev) for s in states for ev in events if (s, ev) not in table]


@pytest.mark.parametrize(("name", "src", "event", "dst"), _cases("login") + _cases("data"))
def test_every_transition(name: str, src: Enum, event: str, dst: Enum) -> None:
    table, _ = TABLES[name]
    assert step(table, src, event) is dst


@pytest.mark.parametrize(("name", "state", "event"), _missing("login") + _missing("data"))
def test_event_without_entry_is_503(name: str, state: Enum, event: str) -> None:
    table, _ = TABLES[name]
    with pytest.raises(BadSequence) as exc:
        step(table, state, event)
    assert exc.value.code == 503 and isinstance(exc.value, FtpError)
    assert exc.value.reply().code == 503
    assert event in exc.value.text and state.value in exc.value.text


def test_tables_are_closed() -> None:
    """Every state is reachable and every target is a state of the same machine."""
    for table, states in TABLES.values():
        targets = set(table.values())
        sources = {src for src, _ in table}
        assert targets <= set(states) and sources <= set(states)
        assert set(states) <= sources | targets


def test_expected_missing_entries() -> None:
    # The ones the protocol relies on: no PASS without USER, no transfer without PASV/PORT, no
    # transfer end without a transfer, no second START while transferring, no PASV mid-transfer.
    for state, ev in [
        (Login.NEED_USER, "PASS_OK"),
        (Login.NEED_USER, "PASS_FAIL"),
        (Login.LOGGED_IN, "PASS_OK"),
    ]:
        assert (state, ev) not in LOGIN
    for dstate, ev in [
        (Data.NONE, "START"),
        (Data.NONE, "END"),
        (Data.PASSIVE, "END"),
        (Data.TRANSFERRING, "START"),
        (Data.TRANSFERRING, "PASV"),
        (Data.TRANSFERRING, "PORT"),
        (Data.TRANSFERRING, "RESET"),
    ]:
        assert (dstate, ev) not in DATA


def test_state_module_prints_tables() -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "ftpd.proto.state"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert out.count("-->") == len(LOGIN) + len(DATA)


# Through the session: the same transitions driven by commands.
def _session() -> Session:
    return Session(SessionSettings(login_fail_delay=0), "127.0.0.1", "127.0.0.1")


def _run(s: Session, line: str, answers: list[object] | None = None) -> list[int]:
    queue = list(answers or [])

    def answer(item: object) -> tuple[object, None]:
        return (queue.pop(0) if queue and type(item).__name__ != "CloseData" else None), None

    return [r.code for r in drive(s, line, answer).replies]


class _Acct:
    name = "u"
    perms = "elradfmwMT"


def test_login_machine_through_session() -> None:
    s = _session()
    assert s.login is Login.NEED_USER
    assert _run(s, "USER u") == [331] and s.login is Login.NEED_PASS
    assert _run(s, "USER v") == [331] and s.login is Login.NEED_PASS
    assert _run(s, "PASS x", [None]) == [530] and s.login is Login.NEED_USER
    assert _run(s, "USER u") == [331]
    assert _run(s, "PASS x", [_Acct()]) == [230] and s.login is Login.LOGGED_IN
    assert _run(s, "USER w") == [331] and s.login is Login.NEED_PASS
    assert _run(s, "REIN") == [220] and s.login is Login.NEED_USER
    assert _run(s, "REIN") == [220] and s.login is Login.NEED_USER


def test_data_machine_through_session() -> None:
    s = _session()
    _run(s, "USER u")
    _run(s, "PASS x", [_Acct()])
    assert s.data is Data.NONE
    assert _run(s, "PASV", [("127.0.0.1", 61000)]) == [227] and s.data is Data.PASSIVE
    assert _run(s, "PORT 127,0,0,1,240,0") == [200] and s.data is Data.ACTIVE
    assert _run(s, "PORT 127,0,0,1,240,1") == [200] and s.data is Data.ACTIVE
    assert _run(s, "EPSV", [("127.0.0.1", 61000)]) == [229] and s.data is Data.PASSIVE
    assert _run(s, "ABOR") == [225] and s.data is Data.NONE
    assert _run(s, "ABOR") == [225] and s.data is Data.NONE
    _run(s, "PASV", [("127.0.0.1", 61000)])
    assert _run(s, "REIN") == [220] and s.data is Data.NONE
