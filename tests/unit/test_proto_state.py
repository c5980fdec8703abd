"""The session state machines: every transition of the tables, and that any event without an
entry is a sequence error (503) — at the table level and through the session."""

from __future__ import annotations

from enum import Enum

import pytest
from support.driver import drive

from ftpd.proto.errors import BadSequence, FtpError
from ftpd.proto.session import Session, SessionSettings
from ftpd.proto.state import (
    DATA,
    LOGIN,
    PROT,
    TABLES,
    TLS,
    Data,
    Event,
    Login,
    Prot,
    Tls,
    TlsMode,
    step,
)

STATES: dict[str, type[Enum]] = {"login": Login, "data": Data, "tls": Tls, "prot": Prot}


def _cases() -> list[tuple[str, Enum, Event, Enum]]:
    return [(name, src, ev, dst) for name, t in TABLES.items() for (src, ev), dst in t.items()]


def _missing() -> list[tuple[str, Enum, Event]]:
    out = []
    for name, table in TABLES.items():
        events = {ev for _, ev in table}
        out += [(name, s, ev) for s in STATES[name] for ev in Event if (s, ev) not in table]
        assert events, name
    return out


def test_tables_are_the_four_machines() -> None:
    assert set(TABLES) == set(STATES)
    assert TABLES["login"] is LOGIN and TABLES["data"] is DATA
    assert TABLES["tls"] is TLS and TABLES["prot"] is PROT


@pytest.mark.parametrize(("name", "src", "event", "dst"), _cases())
def test_every_transition(name: str, src: Enum, event: Event, dst: Enum) -> None:
    assert step(TABLES[name], src, event) is dst


@pytest.mark.parametrize(("name", "state", "event"), _missing())
def test_event_without_entry_is_503(name: str, state: Enum, event: Event) -> None:
    with pytest.raises(BadSequence) as exc:
        step(TABLES[name], state, event)
    assert exc.value.code == 503 and isinstance(exc.value, FtpError)
    assert exc.value.reply().code == 503
    assert event.value in exc.value.text and state.value in exc.value.text
    with pytest.raises(BadSequence) as exc:
        step(TABLES[name], state, event, "Already using TLS.")
    assert exc.value.text == "Already using TLS."


def test_tables_are_closed() -> None:
    """Every state is reachable and every target is a state of the same machine."""
    for name, table in TABLES.items():
        states = set(STATES[name])
        targets = set(table.values())
        sources = {src for src, _ in table}
        assert targets <= states and sources <= states
        assert states <= sources | targets


def test_expected_missing_entries() -> None:
    # The ones the protocol relies on: no PASS without USER, no transfer without PASV/PORT, no
    # second AUTH, no PROT before PBSZ, no way back to a plain control connection.
    for state, ev in [
        (Login.NEED_USER, Event.PASS_OK),
        (Login.NEED_USER, Event.PASS_FAIL),
        (Login.LOGGED_IN, Event.PASS_OK),
    ]:
        assert (state, ev) not in LOGIN
    assert (Data.NONE, Event.START) not in DATA
    assert (Tls.SECURE, Event.AUTH) not in TLS and (Tls.SECURE, Event.IMPLICIT) not in TLS
    assert not any(dst is Tls.PLAIN for dst in TLS.values())
    assert (Prot.UNSET, Event.PROT_P) not in PROT and (Prot.UNSET, Event.PROT_C) not in PROT


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
    assert out.count("-->") == sum(len(t) for t in TABLES.values())
    assert "plain          --AUTH--> secure" in out


def test_implicit_tls_session_starts_secure_and_protected() -> None:
    s = Session(SessionSettings(), "127.0.0.1", "127.0.0.1", implicit_tls=True)
    assert s.tls is Tls.SECURE and s.prot is Prot.PRIVATE and s.secure and s.prot_p
    plain = Session(SessionSettings(tls_mode=TlsMode.EXPLICIT), "127.0.0.1", "127.0.0.1")
    assert plain.tls is Tls.PLAIN and plain.prot is Prot.UNSET and not plain.prot_p


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


MACHINE_FIELDS = {"login", "data", "tls", "prot"}


def test_machine_fields_change_only_through_step() -> None:
    """``state.py``'s tables are the only transitions: anywhere in ftpd, an assignment to a
    session's login/data/tls/prot field is ``step(...)``, except the initial states that
    ``SessionState.__init__`` sets. The IO layer (ftpd/server) never assigns them at all."""
    import ast
    from pathlib import Path

    import ftpd

    root = Path(ftpd.__file__).resolve().parent
    bad: list[str] = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        inits = {
            id(n)
            for cls in ast.walk(tree)
            if isinstance(cls, ast.ClassDef) and cls.name == "SessionState"
            for fn in cls.body
            if isinstance(fn, ast.FunctionDef) and fn.name == "__init__"
            for n in ast.walk(fn)
        }
        sessions = {  # nodes where "self" is a session
            id(n)
            for cls in ast.walk(tree)
            if isinstance(cls, ast.ClassDef) and cls.name in ("SessionState", "Session")
            for n in ast.walk(cls)
        }
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Assign, ast.AnnAssign)):
                continue
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if not (isinstance(t, ast.Attribute) and t.attr in MACHINE_FIELDS):
                    continue
                owner = ast.unparse(t.value)
                if owner == "self" and id(node) not in sessions:
                    continue  # another class's field of the same name (Transfer.tls)
                if not (owner in ("s", "self", "session") or owner.endswith(".session")):
                    continue
                value = node.value
                is_step = (
                    isinstance(value, ast.Call)
                    and isinstance(value.func, ast.Name)
                    and value.func.id == "step"
                )
                if not is_step and id(node) not in inits:
                    bad.append(f"{path.relative_to(root)}:{node.lineno}: {ast.unparse(node)}")
    assert bad == []
