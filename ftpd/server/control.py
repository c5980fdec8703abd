"""The control channel: an ``asyncio.Protocol`` that drives one ``proto.Session``, and owns it.

Lean by design (C10K): no standing task per idle session. Bytes go to the command queue
(``framing.py``: line framing, flow control); each command runs through one driver (``_step``)
that looks every request a handler yields up in the performer table (``perform.py``) and waits,
without a task where it can, for what needs waiting. A transfer runs as its own task
(``transfer.py``). Timeouts are checked by the server's sweeper calling ``tick``, so an idle
session costs no timer.

The channel is the one owner of its session's lifecycle (``lifecycle.py``): every resource is
registered on it when taken and released by ``finish``, which runs exactly once, on every exit.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import ssl
import time
from functools import partial
from types import CoroutineType, GeneratorType
from typing import TYPE_CHECKING, Any

from ..proto.lines import parse_command
from ..proto.proxy import ProxyHeader
from ..proto.replies import Reply
from ..proto.requests import Outcome
from ..proto.session import Done, Session
from ..proto.state import Login
from .framing import CommandQueue
from .lifecycle import PHASES, Event, Phase, next_phase
from .perform import FS_CALLS, PERFORMERS
from .proxyhdr import HeaderPhase
from .tls_control import TlsControl

if TYPE_CHECKING:
    from ..fs.base import FileSystem
    from .host import SessionHost, Slot
    from .transfer import Source, TransferTask

__all__ = ["ControlChannel", "FS_CALLS"]

log = logging.getLogger("ftpd.session")

CLOSE_GRACE = 2.0  # a graceful close (QUIT) waits this long at most for the client to read

# The members the hot paths name, as module globals: on Python 3.11 ``Phase.CLOSED`` is a slow
# lookup (proto/enums.py), ~50 of them a login.
_ACCEPTED, _LOGIN, _READY, _TRANSFER = Phase.ACCEPTED, Phase.LOGIN, Phase.READY, Phase.TRANSFER
_TLS_HANDSHAKE, _CLOSING, _CLOSED = Phase.TLS_HANDSHAKE, Phase.CLOSING, Phase.CLOSED
_ADMITTED, _GREETED, _LOGGED_IN = Event.ADMITTED, Event.GREETED, Event.LOGGED_IN
_TLS_DONE, _CLOSE, _FINISHED = Event.TLS_DONE, Event.CLOSE, Event.FINISHED
_TRANSFER_START, _TRANSFER_END = Event.TRANSFER_START, Event.TRANSFER_END
_USER_LOGGED_IN = Login.LOGGED_IN


class ControlChannel(asyncio.Protocol):
    """IO for one client's control connection (see the module docstring)."""

    # fmt: off
    __slots__ = (
        "host", "transport", "session", "commands", "fs", "busy", "last_activity", "transfer",
        "source", "source_since", "peer", "phase", "phase_since", "sid", "slot", "counted_user",
        "connected_at", "proxy", "pending", "tls_context", "drain_waiter", "closed",
        "quiet_until",
    )
    # fmt: on

    def __init__(
        self, host: SessionHost, peer: tuple[str, int] | None = None, slot: Slot | None = None
    ) -> None:
        self.host = host
        self.transport: Any = None
        self.session: Session = None  # type: ignore[assignment]
        self.commands = CommandQueue(self, host.max_line)
        self.fs: FileSystem | None = None
        self.busy = False  # a command is waiting for a performer
        self.last_activity = self.connected_at = self.phase_since = 0.0
        self.transfer: TransferTask | None = None
        self.source: Source = None  # the passive listener for the next transfer
        self.source_since = 0.0
        # Given by the implicit-TLS accept loop (which admitted the connection and read any PROXY
        # header before the handshake): the real client, and its slot.
        self.peer = peer or ("", 0)
        self.slot = slot
        self.phase = _ACCEPTED
        # CLOSING or CLOSED: kept by ``_to`` (an attribute, not a property: ~20 reads a command)
        self.closed = False
        self.sid = 0
        self.counted_user = ""
        self.proxy: HeaderPhase | None = None  # not None while waiting for a PROXY header
        self.pending: asyncio.Future[Any] | None = None  # what the running command waits for
        self.tls_context: ssl.SSLContext | None = None  # set when the session's TLS starts
        self.drain_waiter: asyncio.Future[None] | None = None  # see ``drained``
        self.quiet_until = 0.0  # the sweeper skips ``tick`` until then (see ``tick``)

    # ------------------------------------------------------------------ lifecycle
    def _to(self, event: Event) -> None:
        # Five transitions a login, two a transfer: ``next_phase``'s table is read here directly,
        # and only TLS_DONE, which depends on the login (a Python property), takes the call.
        if event is _TLS_DONE:
            logged_in = self.session is not None and self.session.logged_in
            new = next_phase(self.phase, event, logged_in)
        else:
            new = PHASES.get((self.phase, event))
        if new is None:
            log.error("%s lifecycle: no transition from %s on %s", self.who(), self.phase, event)
            return
        self.phase = new
        self.closed = new is _CLOSING or new is _CLOSED
        if new is _TLS_HANDSHAKE:
            self.phase_since = time.monotonic()  # only this phase's time is read (``tick``)

    def finish(self) -> None:
        """Release everything the session holds. Runs once, whatever the exit path: the peer's
        reset or FIN, a timeout, a failed handshake, a bug, shutdown (lifecycle.py)."""
        if self.phase is _CLOSED:
            return
        if self.phase is not _CLOSING:
            self._to(_CLOSE)
        self._to(_FINISHED)
        if self.proxy is not None:
            self.proxy.cancel()
            self.proxy = None
        self.set_source(None)
        running = self.transfer
        if running is not None and not running.done() and not running.detached:
            running.task.cancel()  # its outcome: aborted; it closes its socket and files
        pending, self.pending = self.pending, None
        if pending is not None and not pending.done():
            pending.cancel()  # a password check, a listing being built
        self._wake_drain()
        self.host.logout(self.counted_user)
        self.counted_user = ""
        slot, self.slot = self.slot, None
        if slot is not None:
            slot.release()
            if log.isEnabledFor(logging.INFO):
                log.info("disconnect %s", self.who(), extra={"event": "disconnect"})

    def close(self, reply: Reply | None = None) -> None:
        """Send ``reply`` (if any), close once the buffered replies are written (at most
        ``CLOSE_GRACE`` later), and finish now."""
        if self.closed:
            return
        if reply is not None:
            self.reply(reply)
        self._to(_CLOSE)
        transport = self.transport
        if transport.get_write_buffer_size():
            asyncio.get_running_loop().call_later(CLOSE_GRACE, transport.abort)
        transport.close()
        self.finish()

    def expire(self, reply: Reply) -> None:
        """Timeout, shutdown, a client that stopped reading: one attempt to send ``reply``, then
        abort if anything is still unsent (16.2: a write buffer that never drains must not hold
        the session), and finish now."""
        if self.closed:
            return
        self.reply(reply)
        self._to(_CLOSE)
        transport = self.transport
        if transport.get_write_buffer_size():
            transport.abort()
        else:
            transport.close()
        self.finish()

    def tick(self, now: float) -> None:
        """The sweeper's call, about once a second: this session's timeouts."""
        if self.closed or self.session is None:
            return
        if self.phase is _READY and not self.session.logged_in:
            self._to(Event.LOGGED_OUT)  # REIN (the phase is informational; timeouts read login)
        cfg = self.host.config
        stalled = self.commands.write_paused and now - self.commands.write_paused_since
        if stalled and stalled > cfg.data_timeout:
            log.info("%s closed: replies not read for %.0f s", self.who(), cfg.data_timeout)
            self.expire(Reply(421, "Replies not read. Closing control connection."))
        elif (
            self.phase is _TLS_HANDSHAKE
            and now - self.phase_since > cfg.tls_handshake_timeout + 1
        ):
            log.info("%s closed: TLS handshake timeout", self.who())
            self.transport.abort()  # the layer's own handshake timeout did not fire
            self.finish()
        elif self.session.login is not _USER_LOGGED_IN:
            if now - self.connected_at > cfg.login_timeout:
                log.info("%s closed: Login timeout.", self.who())
                self.expire(Reply(421, "Login timeout. Closing control connection."))
        elif self.transfer is not None:
            if now - self.last_activity > cfg.data_timeout and self.transfer.reason is None:
                # No progress (no data connection, or a stalled one): abort with 426.
                log.info("%s data timeout", self.who())
                self.transfer.cancel(Outcome.TIMEOUT)
        elif (
            not self.busy or self.drain_waiter is not None  # only waiting for the client to read
        ) and now - self.last_activity > cfg.idle_timeout:
            log.info("%s closed: Timeout.", self.who())
            self.expire(Reply(421, "Timeout. Closing control connection."))
        elif self.source is not None and now - self.source_since > cfg.data_timeout:
            # A PASV nobody used: give its port back to the pool (pyftpdlib: 30 s).
            self.set_source(None)
            self.session.forget_data_setup()
        elif not self.busy and not self.commands.write_paused and self.source is None:
            # Logged in and idle: until a byte comes (``_received``) only the idle timeout can
            # fire, and any timer that starts later runs for at least the shortest timeout. So
            # the sweeper can skip this session until then: with 10,000 mostly idle sessions,
            # 10,000 calls a second were ~2 % of the server's CPU under ``mixed``.
            shortest = min(
                cfg.idle_timeout, cfg.data_timeout, cfg.login_timeout, cfg.tls_handshake_timeout
            )
            self.quiet_until = min(now + shortest, self.last_activity + cfg.idle_timeout)

    # ------------------------------------------------------------------ asyncio.Protocol
    # Our own bug in this IO layer (a handler's is the core's 451) must not leave a connection
    # open and its resources held: the three entry points from the loop drop it and finish.
    def connection_made(self, transport: Any) -> None:
        try:
            self._made(transport)
        except Exception:
            self._crashed("connection_made", transport)

    def data_received(self, data: bytes) -> None:
        try:
            self._received(data)
        except Exception:
            self._crashed("data_received", self.transport)

    def _crashed(self, where: str, transport: Any) -> None:
        log.exception("%s internal error in %s: connection dropped", self.who(), where)
        transport.abort()
        self.finish()

    def _made(self, transport: Any) -> None:
        self.transport = transport
        self.last_activity = self.connected_at = self.phase_since = time.monotonic()
        if self.slot is not None:  # implicit TLS: admitted, header read, handshake done
            self._open_session()
            return
        peer = transport.get_extra_info("peername") or ("?", 0)
        self.peer = (peer[0], peer[1])
        # SO_OOBINLINE (the urgent byte of Telnet SYNCH / ftplib's OOB "ABOR" stays in the stream) is
        # set on the listening socket and inherited by accepted ones; both loops set TCP_NODELAY.
        policy = self.host.proxy
        if policy.trusts(peer[0]):
            # A load balancer: the session (limits, bans, greeting) starts once its PROXY header
            # names the real client.
            self._to(Event.HEADER_WANTED)
            self.proxy = HeaderPhase(policy, self._proxy_done, self._proxy_refuse)
            return
        self._open_session()

    def _open_session(self) -> None:
        transport = self.transport
        host = self.host
        local_ip = host.bound_ip  # a listener on one address: the local address is that one
        if local_ip is None:
            local_ip = (transport.get_extra_info("sockname") or ("", 0))[0]
        # peer_ip is the real client's (PROXY header) for limits, bans, PORT checks and the data
        # connection check; local_ip stays this node's address, where passive ports are bound.
        # On the implicit FTPS listener the connection is under TLS from the first byte.
        implicit = (
            host.tls_context is not None and transport.get_extra_info("ssl_object") is not None
        )
        self.session = Session(host.settings, self.peer[0], local_ip, implicit_tls=implicit)
        # The session's TLS context, kept across a reload (its data connections must show the
        # certificate the client verified, and resume the session this context cached).
        self.tls_context = host.tls_context if implicit else None
        if self.slot is None:
            got = host.admit(self.session.peer_ip)
            if isinstance(got, str):
                log.info("refused %s: %s", self.who(), got)
                self.close(Reply(421, got))
                return
            self.slot = got
        self.sid = self.slot.sid
        host.attach(self.slot, self)
        self._to(_ADMITTED)
        if log.isEnabledFor(logging.INFO):
            log.info("connect %s", self.who(), extra={"event": "connect"})
        transport.write(host.greeting)
        self._to(_GREETED)

    def _proxy_done(self, header: ProxyHeader, rest: bytes) -> None:
        self.proxy = None
        if header.src is not None:
            log.debug("PROXY header from %s: client %s:%d", self.peer[0], *header.src)
            self.peer = header.src
        self._open_session()
        if rest and not self.closed:
            self.data_received(rest)

    def _proxy_refuse(self, why: str) -> None:
        self.proxy = None
        log.info("closing connection from %s:%d: %s", self.peer[0], self.peer[1], why)
        self.transport.abort()  # the spec: reject partial or invalid headers; nothing to say
        self.finish()

    def _received(self, data: bytes) -> None:
        if self.proxy is not None:
            self.proxy.feed(data)  # calls _proxy_done (then back here) or _proxy_refuse
            return
        if self.closed:
            return
        self.last_activity = time.monotonic()
        self.quiet_until = 0.0  # a command may start a timer: the next sweep ticks (``tick``)
        self.commands.feed(data)

    def eof_received(self) -> bool:
        # After QUIT during a transfer a client may half-close: our side stays open for the
        # transfer's reply (not under TLS, which cannot half-close: tls_control.py). Else close too.
        s = self.session
        return bool(
            s is not None
            and s.quit_pending
            and self.transfer is not None
            and self.transport.get_extra_info("ssl_object") is None
        )

    def connection_lost(self, exc: Exception | None) -> None:
        running = self.transfer
        if running is not None and not running.done() and not self.closed:
            # Issue 17: an upload whose EOF is in is committed; after QUIT the transfer runs on.
            running.control_lost(self.session.quit_pending)
        self.finish()

    def pause_writing(self) -> None:
        self.commands.pause_writing()

    def resume_writing(self) -> None:
        self.commands.resume_writing()
        self._wake_drain()

    async def drained(self) -> None:
        """Wait until the client has read our replies (STAT of a directory streams its lines a
        batch at a time, never more than one batch ahead of the client: issue 16.5)."""
        if not self.commands.write_paused:
            return
        while self.commands.write_paused and not self.closed:
            waiter = self.drain_waiter = asyncio.get_running_loop().create_future()
            await waiter
        if self.closed:
            raise asyncio.CancelledError()  # the client left: stop reading the directory
        # The client reads: progress, as for a transfer (a client that stops reading is idle
        # for the sweeper, see ``tick``).
        self.last_activity = time.monotonic()

    def _wake_drain(self) -> None:
        waiter, self.drain_waiter = self.drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # ------------------------------------------------------------------ the command driver
    def run_line(self, line: str) -> None:
        if self.host.log_commands:
            masked = _mask(line)
            log.debug("%s <- %s", self.who(), masked, extra={"event": "command", "command": masked})
        result = self.session.handle(line)
        if type(result) is GeneratorType:  # Session.is_generator, without the call
            self._step(result)
            return
        if result is not None:
            if type(result) is list:
                for r in result:
                    self.reply(r)
            else:
                self.reply(result)  # type: ignore[arg-type]
        self.commands.command_done()

    def _step(self, gen: Any, value: Any = None, exc: BaseException | None = None) -> None:
        """Drive a handler while its requests are answered at once; at the first that must wait,
        resume from its future's callback (a local file call needs no task; a coroutine, such as
        a hash verification, a sleep or a TLS handshake, gets one)."""
        session = self.session
        while True:
            item = session.advance(gen, value, exc)
            value = exc = None
            kind = type(item)
            if kind is Done:
                for r in item.replies:  # type: ignore[union-attr]
                    self.reply(r)
                self.commands.command_done()
                return
            if kind is Reply:
                self.reply(item)  # type: ignore[arg-type]
                continue
            try:
                result = PERFORMERS[kind](self, item)  # type: ignore[index]
            except Exception as e:  # noqa: BLE001 - OSError: the errno table; else logged, 451
                exc = e
                continue
            if isinstance(result, asyncio.Future):
                if result.done() and not result.cancelled():
                    # Answered at once (a file call served from memory, ``fs.iomode``): go on
                    # now, not on a later turn of the loop through a done-callback. A handler
                    # yields a few requests, never a loop of them (STAT's listing reads are
                    # coroutines), so this holds the loop no longer than a plain value would.
                    error = result.exception()
                    if error is None:
                        value = result.result()
                        continue
                    if isinstance(error, Exception):
                        exc = error
                        continue
                self._wait(gen, result)
                return
            if result is not None and _awaitable(result):
                self._wait(gen, asyncio.ensure_future(result))
                return
            value = result

    def _wait(self, gen: Any, fut: asyncio.Future[Any]) -> None:
        self.busy = True
        self.pending = fut
        fut.add_done_callback(partial(self._resume, gen))

    def _resume(self, gen: Any, fut: asyncio.Future[Any]) -> None:
        if self.pending is fut:
            self.pending = None
        self.busy = False
        if self.closed or fut.cancelled():
            gen.close()  # finish() cancelled it, or the session ended meanwhile
            return
        exc = fut.exception()
        if exc is not None and not isinstance(exc, Exception):
            gen.close()
            return
        try:
            self._step(gen, None if exc is not None else fut.result(), exc)
        except Exception:
            self._crashed("a command", self.transport)

    # ------------------------------------------------------------------ what performers call
    def reply(self, reply: Reply) -> None:
        if self.closed:
            return
        if reply.code >= 400 or self.host.log_commands:  # else nothing to count or log
            self._note_reply(reply)
        self.transport.write(reply.encode())

    def _note_reply(self, reply: Reply) -> None:
        if reply.code >= 400:
            self.host.observer.error_reply(self, reply.code)
            if reply.code != 421 and log.isEnabledFor(logging.INFO):
                log.info(
                    "%s -> %d %s",
                    self.who(),
                    reply.code,
                    reply.lines[0],
                    extra={"event": "reply", "code": reply.code},
                )
        elif self.host.log_commands:
            log.debug("%s -> %d %s", self.who(), reply.code, reply.lines[0])

    def set_source(self, source: Source) -> None:
        old, self.source = self.source, source
        if old is not None and old is not source:
            old.close()
        if source is not None:
            self.source_since = time.monotonic()

    def take_source(self) -> Source:
        source, self.source = self.source, None
        return source

    def logged_in(self, name: str, account: Any) -> Any:
        """Account for a login attempt's result (see ``proto.requests.Authenticate``)."""
        host = self.host
        result, self.counted_user = host.login_result(
            self, self.session.peer_ip, name, account, self.counted_user
        )
        if result is not None and not isinstance(result, str):
            self.fs = host.user_fs(self, result)
            self.session.caps = self.fs.capabilities
            if self.phase is _LOGIN or self.phase is _READY:
                self._to(_LOGGED_IN)
        return result

    def issue_ticket(self) -> None:
        """See ``transfer.Channel.issue_ticket``."""
        transport = self.transport
        if isinstance(transport, TlsControl):
            transport.issue_ticket()

    async def start_tls(self) -> None:
        """AUTH TLS (its 234 written): TLS on this connection, run by ``TlsControl``."""
        self.commands.reset()  # nothing sent in plain text after AUTH may run under TLS
        host = self.host
        assert host.tls_context is not None  # AUTH TLS is refused without one
        self.tls_context = host.tls_context
        self._to(Event.TLS_START)
        layer = TlsControl(self.tls_context, self, host.config.tls_handshake_timeout)
        waiter = layer.handshake
        assert waiter is not None
        layer.attach(self.transport)
        # From here replies are encrypted (none is sent before the handshake is done).
        self.transport = layer
        try:
            await waiter
        except (OSError, TimeoutError) as exc:  # ssl.SSLError and ConnectionError included
            # 16.1: the layer tells the channel nothing mid-handshake: release everything here.
            log.info("%s TLS handshake failed: %r", self.who(), exc)
            layer.abort()
            self.finish()
            return
        except BaseException:  # finish() cancelled the command: the session is over
            layer.abort()
            raise
        if not self.closed:
            self._to(_TLS_DONE)

    def transfer_started(self, task: TransferTask) -> None:
        self.transfer = task
        self._to(_TRANSFER_START)

    def transfer_ended(
        self, task: TransferTask, outcome: Outcome, error: OSError | None, held: Reply | None
    ) -> None:
        if self.transfer is task:
            self.transfer = None
        if self.phase is _TRANSFER:
            self._to(_TRANSFER_END)
        replies = self.session.transfer_finished(task.t, outcome, error)
        if self.closed:
            return
        if held is not None:
            replies.insert(0, held)
        for r in replies:
            self._note_reply(r)
        self.transport.write(b"".join([r.encode() for r in replies]))  # one write, one wake-up
        self.commands.command_done()

    def who(self) -> str:
        s = self.session
        user = s.account.name if s is not None and s.account is not None else "-"
        return f"[{self.sid}] {self.peer[0]}:{self.peer[1]} {user}"


# Per result type: can the driver await it? ``inspect.isawaitable`` goes through the Awaitable
# ABC's isinstance, several µs per command on this machine; a type's answer does not change.
# Generators are asked each time (a legacy generator-based coroutine is one by a flag on its code).
_AWAITABLE: dict[type, bool] = {CoroutineType: True}


def _awaitable(result: object) -> bool:
    kind = type(result)
    known = _AWAITABLE.get(kind)
    if known is not None:
        return known
    answer = inspect.isawaitable(result)
    if kind is not GeneratorType and len(_AWAITABLE) < 64:
        _AWAITABLE[kind] = answer
    return answer


def _mask(line: str) -> str:
    # The verb as the session parses it (leading spaces tolerated): " PASS x" is a PASS too.
    if parse_command(line)[0] == "PASS":
        return "PASS ****"  # never log a password
    return line
