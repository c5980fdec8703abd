"""The command table and the generic check, for every row: a missing argument (501), an argument
to a verb that takes none (501), not logged in (530), out of sequence (503), a missing permission
letter (550); and that table and ``Session.ftp_<VERB>`` handlers match one to one.

Driven with the fakes of ``test_proto_session`` (no sockets, no event loop).
"""

from __future__ import annotations

import inspect

import pytest
from test_proto_session import ALL_PERMS, SAMPLE_ARGS, Drive, line

from ftpd.proto.commands import (
    ALIASES,
    COMMANDS,
    HTTP_VERBS,
    NOT_IMPLEMENTED,
    Arg,
    Need,
    lookup,
)
from ftpd.proto.requests import (
    Authenticate,
    StartTransfer,
)
from ftpd.proto.session import Session
from ftpd.proto.state import Login


@pytest.fixture
def d() -> Drive:
    return Drive().login()


# ---------------------------------------------------------------------------------- the table
def test_every_table_verb_has_a_handler() -> None:
    missing = [v for v in COMMANDS if not callable(getattr(Session, "ftp_" + v, None))]
    assert missing == [], f"verbs in COMMANDS without Session.ftp_<VERB>: {missing}"


def test_every_handler_is_in_the_table() -> None:
    handlers = {n[4:] for n, _ in inspect.getmembers(Session) if n.startswith("ftp_")}
    assert handlers - set(COMMANDS) == set()


def test_sample_args_cover_the_table() -> None:
    assert set(SAMPLE_ARGS) == {v for v, s in COMMANDS.items() if s.arg is not Arg.NONE}


def test_aliases_point_to_real_verbs() -> None:
    for alias, real in ALIASES.items():
        assert lookup(alias) is COMMANDS[real]
    assert lookup("NOPE") is None
    assert not (NOT_IMPLEMENTED | HTTP_VERBS) & set(COMMANDS)


def test_spec_consistency() -> None:
    for spec in COMMANDS.values():
        assert spec.verb.isupper() and spec.help.startswith(spec.verb)
        if spec.path:
            assert spec.arg is not Arg.NONE, spec.verb
        assert not (spec.need is Need.USER_GIVEN and spec.login)


REQUIRED = sorted(v for v, s in COMMANDS.items() if s.arg is Arg.REQUIRED)
NO_ARG = sorted(v for v, s in COMMANDS.items() if s.arg is Arg.NONE)
LOGIN_VERBS = sorted(v for v, s in COMMANDS.items() if s.login)
PERM_VERBS = sorted(v for v, s in COMMANDS.items() if s.perm)


@pytest.mark.parametrize("logged_in", [False, True])
@pytest.mark.parametrize("verb", REQUIRED)
def test_missing_argument_is_501(verb: str, logged_in: bool) -> None:
    drv = Drive().login() if logged_in else Drive()
    for text in (verb, verb + " ", verb + "   "):
        assert drv(text).code == 501, text
    assert drv.fs.calls == []


@pytest.mark.parametrize("logged_in", [False, True])
@pytest.mark.parametrize("verb", NO_ARG)
def test_argument_to_no_argument_verb_is_501(verb: str, logged_in: bool) -> None:
    drv = Drive().login() if logged_in else Drive()
    assert drv(f"{verb} extra").code == 501
    assert drv.fs.calls == []


@pytest.mark.parametrize("verb", LOGIN_VERBS)
def test_not_logged_in_is_530(verb: str) -> None:
    drv = Drive()
    assert drv(line(verb)).code == 530
    drv("USER user")  # half-way through the login is not logged in either
    assert drv(line(verb)).code == 530
    assert drv.fs.calls == [] and drv.s.login is Login.NEED_PASS


@pytest.mark.parametrize("verb", sorted(set(COMMANDS) - set(LOGIN_VERBS)))
def test_verbs_without_login_are_not_530(verb: str) -> None:
    r = Drive()(line(verb))
    assert all(x.code != 530 for x in r.replies), (verb, r.replies)


@pytest.mark.parametrize("alias", sorted(ALIASES))
def test_aliases_need_login(alias: str) -> None:
    arg = " x" if COMMANDS[ALIASES[alias]].arg is Arg.REQUIRED else ""
    assert Drive()(alias + arg).code == 530


def test_pass_without_user_is_503() -> None:
    drv = Drive()
    r = drv("PASS pw")
    assert r.code == 503 and r.of(Authenticate) == []
    drv.login()
    assert drv("PASS pw").code == 503  # already logged in


def test_rnto_without_rnfr_is_503(d: Drive) -> None:
    d.fs.files["/f"] = b"x"
    assert d("RNTO g").code == 503
    assert d("RNFR f").code == 350
    assert d("NOOP").code == 200  # anything in between clears the rename-from slot
    assert d("RNTO g").code == 503
    assert "/f" in d.fs.files


def test_host_after_login_is_503() -> None:
    drv = Drive()
    assert drv("HOST ftp.example.com").code == 220
    drv.login()
    assert drv("HOST ftp.example.com").code == 503


def _perms_without(letter: str) -> str:
    return ALL_PERMS.replace(letter, "")


@pytest.mark.parametrize("verb", PERM_VERBS)
def test_missing_permission_letter_is_550(verb: str) -> None:
    letter = COMMANDS[verb].perm
    drv = Drive(_perms_without(letter)).login()
    drv.fs.files.update({"/f": b"data", "/g": b""})
    drv.fs.dirs.add("/dir")
    drv("PASV")
    if verb == "RNTO":
        drv.s.rename_from = "/f"  # RNFR itself needs 'f'; the sequence check comes first
    r = drv(line(verb))
    assert r.code == 550, (verb, r.replies)
    assert drv.fs.calls == [] and r.of(StartTransfer) == []


@pytest.mark.parametrize("verb", PERM_VERBS)
def test_permission_letter_present_passes_the_check(verb: str) -> None:
    drv = Drive(COMMANDS[verb].perm).login()
    drv.fs.files.update({"/f": b"data", "/g": b""})
    drv.fs.dirs.add("/dir")
    drv("PASV")
    drv("TYPE I")  # SIZE is refused in TYPE A
    if verb == "RNTO":
        assert drv("RNFR f").code == 350
    r = drv(line(verb))
    assert not any(x.code == 550 for x in r.replies), (verb, r.replies)


def test_site_chmod_needs_letter_M() -> None:
    drv = Drive(_perms_without("M")).login()
    drv.fs.files["/f"] = b""
    assert drv("SITE CHMOD 644 f").code == 550
    assert drv.fs.calls == []
    drv2 = Drive("M").login()
    drv2.fs.files["/f"] = b""
    assert drv2("SITE CHMOD 644 f").code == 200
    assert drv2.fs.modes == {"/f": 0o644}


def test_check_order_syntax_before_login_before_permission() -> None:
    drv = Drive("")
    assert drv("RETR").code == 501  # syntax first, even when not logged in
    assert drv("RETR f").code == 530
    drv.login()
    assert drv("RETR").code == 501
    assert drv("RETR f").code == 550  # no 'r'
