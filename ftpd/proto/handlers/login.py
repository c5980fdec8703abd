"""Access control (RFC 959 §4.1.1, RFC 7151): USER, PASS, ACCT, REIN, QUIT, HOST.

The login machine of ``ftpd.proto.state`` moves here and only here. Whether a password is right is
the IO layer's answer to ``Authenticate`` (hashing runs off the event loop).
"""

from __future__ import annotations

from ..listing import DEFAULT_FACTS
from ..replies import Reply
from ..requests import Authenticate, HandlerGen, Sleep
from ..state import LOGIN, Event, SessionState, step
from .dataconn import reset_data

__all__ = ["ftp_USER", "ftp_PASS", "ftp_ACCT", "ftp_REIN", "ftp_QUIT", "ftp_HOST"]

# The replies of every login, made (and encoded, see ``Reply``) once.
_USER_OK = Reply(331, "Username ok, send password.")
_LOGGED_IN = Reply(230, "Login successful.")
_GOODBYE = Reply(221, "Goodbye.")
# Module globals: Python 3.11's enum lookup is slow (proto/enums.py).
_USER, _PASS_OK = Event.USER, Event.PASS_OK


def ftp_USER(s: SessionState, arg: str, path: str) -> Reply | HandlerGen:
    if s.logged_in:
        return _relogin(s, arg)
    s.login = step(LOGIN, s.login, _USER)
    s.user = arg
    # RFC 2577 §5: always 331, whether or not the user exists.
    return _USER_OK


def _relogin(s: SessionState, arg: str) -> HandlerGen:
    # USER while logged in flushes the login (RFC 959 §4.1.1) as REIN would, minus the greeting.
    yield from reset_data(s)
    _flush(s)
    s.login = step(LOGIN, s.login, _USER)
    s.user = arg
    return _USER_OK


def ftp_PASS(s: SessionState, arg: str, path: str) -> HandlerGen:
    result = yield Authenticate(s.user, arg)
    if result is not None and not isinstance(result, str):
        s.login = step(LOGIN, s.login, _PASS_OK)
        s.account = result
        s.perms = result.perms
        s.cwd = "/"
        return _LOGGED_IN
    s.login = step(LOGIN, s.login, Event.PASS_FAIL)
    if isinstance(result, str):  # refused for a reason other than the password (limits)
        s.closing = True
        return Reply(421, result)
    s.failed_logins += 1
    if s.settings.login_fail_delay > 0:
        yield Sleep(s.settings.login_fail_delay)
    if 0 < s.settings.max_login_attempts <= s.failed_logins:
        s.closing = True
        return Reply(530, "Login incorrect; maximum login attempts reached. Disconnecting.")
    return Reply(530, "Login incorrect.")


def ftp_ACCT(s: SessionState, arg: str, path: str) -> Reply:
    return Reply(202, "Command superfluous: accounts are not used.")


def ftp_REIN(s: SessionState, arg: str, path: str) -> HandlerGen:
    yield from reset_data(s)
    _flush(s)
    s.login = step(LOGIN, s.login, Event.REIN)
    return Reply(220, "Ready for new user.")


def _flush(s: SessionState) -> None:
    """Forget the login and the settings made under it; TLS and PROT belong to the connection."""
    s.user = ""
    s.account = None
    s.perms = ""
    s.cwd = "/"
    s.ascii = True
    s.rest = 0
    s.rename_from = None
    s.epsv_all = False
    s.mlst_facts = DEFAULT_FACTS


def ftp_QUIT(s: SessionState, arg: str, path: str) -> Reply:
    if s.transfer is not None:
        # RFC 959 §4.1.1: the connection stays open for the transfer's result, then closes.
        # The 221 goes out at once (as pyftpdlib): clients with file-like writes close their
        # data connection only once they have read it, so holding it back until the
        # transfer's end deadlocks them (issue 17). The transfer's 226 follows.
        s.quit_pending = True
    else:
        s.closing = True
    return _GOODBYE


def ftp_HOST(s: SessionState, arg: str, path: str) -> Reply:
    # RFC 7151: one server, no virtual hosts; any name reaches it.
    return Reply(220, "Host accepted.")
