"""One FTP session's protocol logic: a command line in, replies and IO requests out.

How a command flows: ``Session.handle(line)`` parses the line (``lines.parse_command``), looks the
verb up in the command table (``commands``), runs the generic check (``commands.check``) and then
the handler the table binds (``handlers.*``). A handler returns replies, or is a generator that
yields requests for the IO layer (``requests``); the IO layer performs each and resumes it with
``Session.advance``, the one place where errors become replies: ``FtpError`` → its code, ``OSError``
→ the errno table, anything else → logged with its traceback and answered ``451``. A transfer ends
with ``transfer_finished``, which turns the IO layer's ``Outcome`` into the final reply.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from types import GeneratorType
from typing import Any, TypeGuard

from .commands import HTTP_VERBS, NOT_IMPLEMENTED, check, lookup
from .errors import BadSequence, FtpError, reply_for_oserror
from .lines import TOO_LONG, parse_command
from .replies import Reply, printable
from .requests import HandlerGen, HandlerResult, Outcome, Request, Transfer, TransferKind
from .state import DATA, Data, Event, Need, SessionSettings, SessionState, step

__all__ = ["Session", "SessionSettings", "Done", "HandlerResult"]

log = logging.getLogger("ftpd.session")


class Done:
    """A handler generator finished: these replies end the command."""

    __slots__ = ("replies",)

    def __init__(self, replies: list[Reply]) -> None:
        self.replies = replies


def _as_list(result: Reply | list[Reply] | None) -> list[Reply]:
    if type(result) is Reply:  # the common case first, without isinstance
        return [result]
    if result is None:
        return []
    if isinstance(result, Reply):
        return [result]
    return result


_LISTING_OPENED = Reply(150, "Here comes the directory listing.")
# Module globals: Python 3.11's enum lookup is slow (enums.py), and these are named per command
# or per transfer.
_RENAME_FROM, _OK = Need.RENAME_FROM, Outcome.OK
_STOU, _RETR = TransferKind.STOU, TransferKind.RETR


class Session(SessionState):
    """The protocol state of one control connection, and the entry points the IO layer calls."""

    __slots__ = ()

    def greeting(self) -> Reply:
        return Reply(220, self.settings.banner)

    def allowed_during_transfer(self, line: str) -> bool:
        """Whether ``line`` is answered at once while a transfer runs (else it waits its turn)."""
        spec = lookup(parse_command(line)[0])
        return spec is not None and spec.during_transfer

    def handle(self, line: str) -> HandlerResult:
        """Process one command line. Returns replies, or a generator to drive with ``advance``."""
        try:
            return self._dispatch(line)
        except FtpError as exc:
            return exc.reply()
        except OSError as exc:
            return reply_for_oserror(exc)
        except Exception:  # our bug: log it, answer 451, keep the session (STYLE: Errors)
            log.exception("internal error handling %r", line[:40])
            return Reply(451, "Internal error; the command was not carried out.")

    def advance(
        self, gen: HandlerGen, value: Any = None, exc: BaseException | None = None
    ) -> Request | Reply | Done:
        """Resume a handler: the next request (or reply to send now), or ``Done`` with its replies."""
        try:
            item = gen.throw(exc) if exc is not None else gen.send(value)
        except StopIteration as stop:
            return Done(_as_list(stop.value))
        except FtpError as err:
            return Done([err.reply()])
        except OSError as err:
            return Done([reply_for_oserror(err)])
        except Exception:
            log.exception("internal error in a command handler")
            return Done([Reply(451, "Internal error; the command was not carried out.")])
        return item

    @staticmethod
    def is_generator(result: object) -> TypeGuard[HandlerGen]:
        return type(result) is GeneratorType

    def _dispatch(self, line: str) -> HandlerResult:
        if self.quit_pending:
            return None  # after QUIT only the running transfer's reply is still to come
        if line == TOO_LONG:
            return Reply(500, "Command line too long.")
        verb, arg = parse_command(line)
        if not verb:
            return None  # vsftpd ignores empty lines "to avoid NAT device bugs"
        spec = lookup(verb)
        if spec is None:
            if verb in HTTP_VERBS:
                # Cross-protocol defence (vsftpd 3.0.3): a browser or proxy is talking to us.
                self.closing = True
                return Reply(500, "HTTP protocol commands not allowed.")
            if verb in NOT_IMPLEMENTED:
                return Reply(502, f"{printable(verb)} not implemented.")
            return Reply(500, f"Command {printable(verb)!r} not understood.")
        if _RENAME_FROM not in spec.needs:
            self.rename_from = None  # RFC 959 §4.1.3: RNTO must immediately follow RNFR
        return spec.handler(self, arg, check(self, spec, arg))

    # ------------------------------------------------------------------ the IO layer's reports
    def forget_data_setup(self) -> None:
        """The IO layer dropped an unused passive listener (data timeout): back to no setup."""
        if self.data is not Data.NONE:
            self.data = step(DATA, self.data, Event.RESET)
            self.active_addr = None

    def transfer_opened(self, t: Transfer) -> Reply:
        """The 150 reply, sent once the data connection is up (vsftpd's order)."""
        if t.kind is _STOU:
            return Reply(150, f"FILE: {t.name}")  # RFC 1123 §4.1.2.9
        if t.kind.listing:
            return _LISTING_OPENED
        mode = "ASCII" if t.ascii else "BINARY"
        if t.kind is _RETR and t.reader is not None:
            size = t.reader.size
            return Reply(150, f"Opening {mode} mode data connection for {t.name} ({size} bytes).")
        return Reply(150, f"Opening {mode} mode data connection for {t.name}.")

    def transfer_finished(
        self, t: Transfer, outcome: Outcome, error: OSError | None = None
    ) -> list[Reply]:
        """The final reply of a transfer; ``error`` is the filesystem's for ``LOCAL_ERROR``."""
        if self.transfer is not t:
            raise BadSequence("No such transfer is running.")
        self.transfer = None
        self.active_addr = None
        if outcome is _OK:
            replies = [_LISTING_SENT if t.kind.listing else _TRANSFER_COMPLETE]
        elif outcome is Outcome.LOCAL_ERROR:
            replies = [
                reply_for_oserror(error) if error is not None else Reply(451, "Local error.")
            ]
        else:
            replies = [_FAILED[outcome]]
        if self.quit_pending:
            self.closing = True  # the 221 went out with the QUIT (handlers/login.py)
        return replies


# The final reply of a transfer: made once, and encoded once (see ``Reply``).
_TRANSFER_COMPLETE = Reply(226, "Transfer complete.")
_LISTING_SENT = Reply(226, "Directory send OK.")
# The final reply of a transfer that did not complete, by how it ended.
_FAILED: Mapping[Outcome, Reply] = {
    Outcome.ABORTED: Reply(426, "Transfer aborted."),
    Outcome.LOST: Reply(426, "Connection closed; transfer aborted."),
    Outcome.NO_CONNECTION: Reply(425, "Can't open data connection."),
    Outcome.TIMEOUT: Reply(426, "Data connection timed out; transfer aborted."),
    # RFC 4217 §10.2: the server may insist on a resumed session; 522 says so (vsftpd).
    Outcome.TLS_NO_REUSE: Reply(
        522, "TLS session of data connection not resumed; session reuse required."
    ),
    Outcome.TLS_FAILED: Reply(522, "TLS negotiation on the data connection failed."),
}
