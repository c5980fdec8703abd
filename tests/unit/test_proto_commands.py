"""The command table and the generic check, for every row: a missing argument (501), an argument
to a verb that takes none (501), not logged in (530), out of sequence (503), a missing permission
letter (550); and that table and the ``ftp_<VERB>`` handlers of ``ftpd.proto.handlers`` (plus HELP
and SITE in ``ftpd.proto.commands``) match one to one.

Driven with the fakes of ``test_proto_session`` (no sockets, no event loop).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable
from typing import Any

import pytest
from test_proto_session import ALL_PERMS, SAMPLE_ARGS, Drive, line

import ftpd.proto.handlers
from ftpd.proto import commands
from ftpd.proto.commands import (
    ALIASES,
    COMMANDS,
    HTTP_VERBS,
    NOT_IMPLEMENTED,
    SITE_COMMANDS,
    Arg,
    Need,
    lookup,
)
from ftpd.proto.requests import (
    Authenticate,
    StartTransfer,
)
from ftpd.proto.state import RULES, Login


@pytest.fixture
def d() -> Drive:
    return Drive().login()


# ---------------------------------------------------------------------------------- the table
def _defined_handlers() -> dict[str, Callable[..., Any]]:
    """Every ``ftp_*`` function defined in the handler modules and in ``commands``."""
    modules = [commands] + [
        importlib.import_module(f"ftpd.proto.handlers.{m.name}")
        for m in pkgutil.iter_modules(ftpd.proto.handlers.__path__)
    ]
    found: dict[str, Callable[..., Any]] = {}
    for mod in modules:
        for name, fn in inspect.getmembers(mod, inspect.isfunction):
            if name.startswith("ftp_") and fn.__module__ == mod.__name__:
                assert name not in found, f"{name} defined twice"
                found[name] = fn
    return found


def test_table_and_handlers_match_one_to_one() -> None:
    specs = [*COMMANDS.values(), *SITE_COMMANDS.values()]
    for spec in specs:  # each verb's handler is named after it
        assert spec.handler.__name__ == "ftp_" + spec.verb.replace(" ", "_"), spec.verb
    bound = [spec.handler for spec in specs]
    assert len(set(bound)) == len(bound), "a handler bound to two verbs"
    defined = _defined_handlers()
    assert set(defined.values()) == set(bound), (
        "handlers without a verb: "
        f"{sorted(n for n, f in defined.items() if f not in bound)}; "
        f"verbs without a handler: {sorted(s.verb for s in specs if s.handler not in defined.values())}"
    )


def test_every_sequence_rule_has_a_check_and_a_user() -> None:
    assert set(RULES) == set(Need)
    used = {need for spec in (*COMMANDS.values(), *SITE_COMMANDS.values()) for need in spec.needs}
    assert used == set(Need)


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
        assert not (Need.USER_GIVEN in spec.needs and spec.login)
        assert not spec.ls_flags or spec.path, spec.verb


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
