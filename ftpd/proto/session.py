"""One FTP session's protocol logic: a command line in, replies and IO requests out.

``Session.handle(line)`` runs the generic check of the command table (syntax → login → sequence →
path → permission), then the verb's handler. A handler returns replies, or is a generator that yields
``requests`` for the IO layer (see ``ftpd.proto.requests``). ``Session.advance`` resumes such a
generator and is the one place where errors become replies: ``FtpError`` → its code, ``OSError`` → the
errno table, anything else → logged with its traceback and answered ``451``.

The file and transfer commands live in ``ftpd.proto.fileops`` (a mixin) to keep modules small.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Generator
from dataclasses import dataclass, field
from types import GeneratorType
from typing import Any

from ..fs.base import Capabilities
from .commands import (
    COMMANDS,
    HTTP_VERBS,
    NOT_IMPLEMENTED,
    SITE_COMMANDS,
    Arg,
    CommandSpec,
    Need,
    lookup,
)
from .errors import (
    ArgumentError,
    BadSequence,
    CannotOpenData,
    FileUnavailable,
    FtpError,
    NotLoggedIn,
    ParamNotImplemented,
    reply_for_oserror,
)
from .fileops import FileOps
from .lines import TOO_LONG, parse_command
from .listing import ALL_FACTS, DEFAULT_FACTS
from .paths import quote_path, resolve, strip_ls_flags
from .replies import Reply
from .requests import AbortTransfer, Authenticate, CloseData, OpenPassive, Request, Sleep, Transfer
from .security import Security
from .state import DATA, LOGIN, Data, Login, step

__all__ = ["Session", "SessionSettings", "Done", "HandlerResult", "FULL_CAPABILITIES"]

FULL_CAPABILITIES = Capabilities()

log = logging.getLogger("ftpd.session")

HandlerResult = Reply | list[Reply] | None | Generator[Any, Any, Any]
ANONYMOUS_NAMES = frozenset({"anonymous", "ftp"})


@dataclass(frozen=True, slots=True)
class SessionSettings:
    """The part of the configuration the protocol core needs (shared by all sessions)."""

    banner: str = "ftpd ready."
    max_login_attempts: int = 3
    login_fail_delay: float = 1.0
    port_promiscuous: bool = False
    tls_mode: str = "off"  # off | explicit | required
    implicit_tls: bool = False
    # What the configured storage can do, known before login: FEAT may come before USER (lftp).
    capabilities: Capabilities = field(default_factory=Capabilities)


class Done:
    """A handler generator finished: these replies end the command."""

    __slots__ = ("replies",)

    def __init__(self, replies: list[Reply]) -> None:
        self.replies = replies


def _as_list(result: Reply | list[Reply] | None) -> list[Reply]:
    if result is None:
        return []
    if isinstance(result, Reply):
        return [result]
    return result


def _ipv4_octets(host: str) -> tuple[int, ...]:
    parts = host.split(".")
    if len(parts) != 4 or not all(p.isdigit() and int(p) < 256 for p in parts):
        raise ValueError(host)
    return tuple(int(p) for p in parts)


def _normalise_ip(ip: str) -> str:
    """``::ffff:1.2.3.4`` → ``1.2.3.4``, so that IPv4 clients on a dual-stack socket compare equal."""
    if ":" not in ip:
        return ip  # IPv4 as the socket layer gives it: already canonical (the common case)
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return ip
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(addr)


class Session(FileOps, Security):
    """The protocol state of one control connection."""

    __slots__ = (
        "settings", "peer_ip", "local_ip", "login", "user", "account", "perms", "cwd", "data",
        "active_addr", "epsv_all", "ascii", "rest", "rename_from", "failed_logins", "closing",
        "quit_pending", "transfer", "mlst_facts", "secure", "pbsz", "prot_p", "caps",
    )

    def __init__(self, settings: SessionSettings, peer_ip: str, local_ip: str) -> None:
        self.settings = settings
        self.peer_ip = _normalise_ip(peer_ip)
        self.local_ip = _normalise_ip(local_ip)
        self.login = Login.NEED_USER
        self.user = ""  # the name given with USER
        self.account: Any = None  # set by a successful login (ftpd.auth.Account)
        self.perms = ""
        self.cwd = "/"
        self.data = Data.NONE
        self.active_addr: tuple[str, int] | None = None
        self.epsv_all = False
        self.ascii = True  # RFC 959 §3.1.1.1: TYPE A is the default
        self.rest = 0
        self.rename_from: str | None = None
        self.failed_logins = 0
        self.closing = False  # close the control connection once the replies are sent
        self.quit_pending = False  # QUIT arrived during a transfer
        self.transfer: Transfer | None = None
        self.mlst_facts: frozenset[str] = DEFAULT_FACTS
        self.secure = False  # the control connection is under TLS
        self.pbsz = False
        self.prot_p = False  # RFC 4217 §9: data connections protected (PROT P)
        # What the storage behind the account can do: the configured backend's until login, then
        # the account's own filesystem's.
        self.caps = settings.capabilities

    # ------------------------------------------------------------------ entry points
    def greeting(self) -> Reply:
        return Reply(220, self.settings.banner)

    @property
    def logged_in(self) -> bool:
        return self.login is Login.LOGGED_IN

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

    def advance(self, gen: Generator[Any, Any, Any], value: Any = None,
                exc: BaseException | None = None) -> Request | Reply | Done:
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
    def is_generator(result: object) -> bool:
        return type(result) is GeneratorType

    # ------------------------------------------------------------------ the generic check
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
                return Reply(502, f"{_printable(verb)} not implemented.")
            return Reply(500, f"Command {_printable(verb)!r} not understood.")
        if spec.verb != "RNTO":
            self.rename_from = None  # RFC 959 §4.1.3: RNTO must immediately follow RNFR
        path = self._check(spec, arg)
        handler = getattr(self, "ftp_" + spec.verb)
        if spec.path:
            return handler(arg, path)
        return handler(arg)

    def _check(self, spec: CommandSpec, arg: str) -> str:
        """Syntax → login → sequence → path → permission; returns the resolved path (if any)."""
        if spec.arg is Arg.REQUIRED and not arg.strip():
            raise ArgumentError("Syntax error: command needs an argument.")
        if spec.arg is Arg.NONE and arg.strip():
            raise ArgumentError("Syntax error: command does not accept arguments.")
        if spec.login and self.login is not Login.LOGGED_IN:
            raise NotLoggedIn("Log in with USER and PASS first.")
        need = spec.need
        if need is Need.USER_GIVEN and self.login is not Login.NEED_PASS:
            raise BadSequence("Already logged in." if self.logged_in else "Login with USER first.")
        if need is Need.RENAME_FROM and self.rename_from is None:
            raise BadSequence("RNFR required first.")
        if need is Need.NOT_LOGGED_IN and self.logged_in:
            raise BadSequence("HOST must come before USER.")
        path = ""
        if spec.path:
            path = resolve(self.cwd, strip_ls_flags(arg) if spec.verb in _LS_VERBS else arg)
        if spec.perm and spec.perm not in self.perms:
            raise FileUnavailable("Permission denied.")
        return path

    # ------------------------------------------------------------------ login (RFC 959 §4.1.1)
    def ftp_USER(self, arg: str) -> Reply | Generator[Any, Any, Reply]:
        if self.settings.tls_mode == "required" and not self.secure:
            raise NotLoggedIn("TLS required: use AUTH TLS before USER.")
        if self.logged_in:
            return self._relogin(arg)
        self.login = step(LOGIN, self.login, "USER")
        self.user = arg
        # RFC 2577 §5: always 331, whether or not the user exists.
        return Reply(331, "Username ok, send password.")

    def _relogin(self, arg: str) -> Generator[Any, Any, Reply]:
        # USER while logged in flushes the login (RFC 959 §4.1.1) as REIN would, minus the greeting.
        yield from self._reset_data()
        self._flush()
        self.login = step(LOGIN, Login.LOGGED_IN, "USER")
        self.user = arg
        return Reply(331, "Username ok, send password.")

    def ftp_PASS(self, arg: str) -> Generator[Any, Any, Reply]:
        result = yield Authenticate(self.user, arg)
        if result is not None and not isinstance(result, str):
            self.login = step(LOGIN, self.login, "PASS_OK")
            self.account = result
            self.perms = result.perms
            self.cwd = "/"
            return Reply(230, "Login successful.")
        self.login = step(LOGIN, self.login, "PASS_FAIL")
        if isinstance(result, str):  # refused for a reason other than the password (limits)
            self.closing = True
            return Reply(421, result)
        self.failed_logins += 1
        if self.settings.login_fail_delay > 0:
            yield Sleep(self.settings.login_fail_delay)
        if 0 < self.settings.max_login_attempts <= self.failed_logins:
            self.closing = True
            return Reply(530, "Login incorrect; maximum login attempts reached. Disconnecting.")
        return Reply(530, "Login incorrect.")

    def ftp_ACCT(self, arg: str) -> Reply:
        return Reply(202, "Command superfluous: accounts are not used.")

    def ftp_REIN(self, arg: str) -> Generator[Any, Any, Reply]:
        yield from self._reset_data()
        self._flush()
        self.login = step(LOGIN, self.login, "REIN")
        return Reply(220, "Ready for new user.")

    def _flush(self) -> None:
        self.user = ""
        self.account = None
        self.perms = ""
        self.cwd = "/"
        self.ascii = True
        self.rest = 0
        self.rename_from = None
        self.epsv_all = False
        self.mlst_facts = DEFAULT_FACTS

    def ftp_QUIT(self, arg: str) -> Reply:
        if self.transfer is not None:
            # RFC 959 §4.1.1: the connection stays open for the transfer's result, then closes.
            # The 221 goes out at once (as pyftpdlib): clients with file-like writes close their
            # data connection only once they have read it, so holding it back until the
            # transfer's end deadlocks them (issue 17). The transfer's 226 follows.
            self.quit_pending = True
        else:
            self.closing = True
        return Reply(221, "Goodbye.")

    # ------------------------------------------------------------------ informational
    def ftp_SYST(self, arg: str) -> Reply:
        return Reply(215, "UNIX Type: L8")

    def ftp_NOOP(self, arg: str) -> Reply:
        return Reply(200, "NOOP ok.")

    def ftp_CLNT(self, arg: str) -> Reply:
        return Reply(200, "Noted.")

    def ftp_HOST(self, arg: str) -> Reply:
        # RFC 7151: one server, no virtual hosts; any name reaches it.
        return Reply(220, "Host accepted.")

    def ftp_FEAT(self, arg: str) -> Reply:
        return Reply(211, "Features:", *self.features(), "End")

    def features(self) -> list[str]:
        """FEAT lines, from what the command table implements (RFC 2389 §3.2)."""
        facts = "".join(f"{f}{'*' if f in self.mlst_facts else ''};" for f in ALL_FACTS)
        feats = ["EPRT", "EPSV", "HOST", "MDTM", f"MLST {facts}", "REST STREAM", "SIZE", "TVFS",
                 "UTF8"]
        if self.caps.set_mtime:  # FEAT advertises only what the storage can do
            feats.append("MFMT")
        if self.settings.tls_mode != "off" or self.secure:
            feats += ["AUTH TLS", "PBSZ", "PROT"]
        return sorted(feats)

    def ftp_OPTS(self, arg: str) -> Reply:
        name, _, value = arg.strip().partition(" ")
        name = name.upper()
        if name == "UTF8":
            # RFC 2640 §3.2; rclone (jlaffaye/ftp) fails its login on anything but 200/202/501/504.
            if value.strip().upper() in ("", "ON"):
                return Reply(200, "Always in UTF8 mode.")
            return Reply(504, "UTF8 cannot be turned off.")
        if name == "MLST":
            # RFC 3659 §7.9: unknown facts are dropped silently, the accepted ones echoed.
            wanted = [f.lower() for f in value.strip().split(";") if f]
            facts = frozenset(f for f in wanted if f in DEFAULT_FACTS)
            self.mlst_facts = facts
            return Reply(200, "MLST OPTS " + "".join(f"{f};" for f in ALL_FACTS if f in facts))
        raise ArgumentError("Invalid OPTS argument.")

    def ftp_HELP(self, arg: str) -> Reply:
        if arg.strip():
            verb = arg.strip().upper()
            spec = lookup(verb)
            if spec is None:
                raise ArgumentError(f"Unrecognized command {_printable(verb)!r}.")
            return Reply(214, f"Syntax: {spec.help}")
        verbs = sorted(set(COMMANDS) | set(_ALIAS_VERBS))
        rows = [" ".join(f"{v:<5}" for v in verbs[i : i + 8]) for i in range(0, len(verbs), 8)]
        return Reply(214, "The following commands are recognized:", *rows, "Help OK.")

    def ftp_STAT(self, arg: str) -> Reply | Generator[Any, Any, Reply]:
        if not arg.strip():
            return self._status()
        if not self.logged_in:
            raise NotLoggedIn("Log in with USER and PASS first.")
        if "l" not in self.perms:
            raise FileUnavailable("Permission denied.")
        return self._stat_listing(arg)

    def _status(self) -> Reply:
        lines = [f"FTP server status: connected from {self.peer_ip}"]
        lines.append(f"Logged in as {self.account.name}" if self.logged_in else "Not logged in")
        lines.append(f"TYPE: {'ASCII' if self.ascii else 'BINARY'}; STRUcture: File; MODE: Stream")
        t = self.transfer
        if t is not None:
            lines.append(f"Data connection open: {t.kind} {t.vpath} ({t.bytes} bytes transferred)")
        else:
            lines.append(f"Data connection: {self.data.value}")
        lines.append("End of status.")
        return Reply(211, *lines)

    # ------------------------------------------------------------------ transfer parameters
    def ftp_TYPE(self, arg: str) -> Reply:
        t = arg.strip().upper().replace(" ", "")
        if t in ("A", "AN"):
            self.ascii = True
            return Reply(200, "Type set to: ASCII.")
        if t in ("I", "L8"):
            self.ascii = False
            return Reply(200, "Type set to: Binary.")
        if t in ("E", "EN", "AT", "AC", "L7") or t.startswith("L"):
            raise ParamNotImplemented(f"Type {_printable(arg)!r} not supported.")
        raise ArgumentError(f"Unrecognized TYPE {_printable(arg)!r}.")

    def ftp_STRU(self, arg: str) -> Reply:
        s = arg.strip().upper()
        if s == "F":
            return Reply(200, "File transfer structure set to: F.")
        if s in ("R", "P"):
            raise ParamNotImplemented("Unimplemented STRU type.")
        raise ArgumentError("Unrecognized STRU type.")

    def ftp_MODE(self, arg: str) -> Reply:
        m = arg.strip().upper()
        if m == "S":
            return Reply(200, "Transfer mode set to: S.")
        if m in ("B", "C", "Z"):
            raise ParamNotImplemented("Unimplemented MODE type.")
        raise ArgumentError("Unrecognized MODE type.")

    def ftp_ALLO(self, arg: str) -> Reply:
        return Reply(202, "No storage allocation necessary.")

    def ftp_REST(self, arg: str) -> Reply:
        value = arg.strip()
        if not value.isdigit():
            raise ArgumentError("Invalid REST parameter.")
        offset = int(value)
        if offset and self.ascii:
            # RFC 3659 §5.1: the marker counts bytes as sent; in TYPE A that is not a file offset.
            raise ArgumentError("Resuming transfers not allowed in ASCII mode.")
        self.rest = offset
        return Reply(350, f"Restarting at position {self.rest}.")

    # ------------------------------------------------------------------ data connections
    def _reset_data(self) -> Generator[Any, Any, None]:
        if self.data in (Data.PASSIVE, Data.ACTIVE):
            yield CloseData()
        if self.data is not Data.TRANSFERRING:
            self.data = step(DATA, self.data, "RESET")
        self.active_addr = None

    def ftp_PASV(self, arg: str) -> Generator[Any, Any, Reply]:
        if self.epsv_all:
            raise ArgumentError("PASV not allowed after EPSV ALL.")
        return self._passive(extended=False)

    def ftp_EPSV(self, arg: str) -> Reply | Generator[Any, Any, Reply]:
        a = arg.strip().upper()
        if a == "ALL":
            # RFC 2428 §3: from now on only EPSV sets up data connections.
            self.epsv_all = True
            return Reply(200, "EPSV ALL ok.")
        if a:
            v6 = ":" in self.local_ip
            if not a.isdigit():
                raise ArgumentError("Invalid EPSV argument.")  # RFC 2428 §3: a protocol number
            if a not in ("1", "2"):
                return Reply(522, "Network protocol not supported, use (1,2).")
            if (a == "2") != v6:
                return Reply(522, f"Network protocol not supported, use ({'2' if v6 else '1'}).")
        return self._passive(extended=True)

    def _passive(self, extended: bool) -> Generator[Any, Any, Reply]:
        if self.transfer is not None:
            raise BadSequence("A transfer is in progress.")
        yield from self._reset_data()
        try:
            host, port = yield OpenPassive(extended)
        except OSError:
            raise CannotOpenData("Can't open passive connection: no free port.") from None
        self.data = step(DATA, self.data, "PASV")
        if extended:
            return Reply(229, f"Entering Extended Passive Mode (|||{port}|)")
        try:
            octets = _ipv4_octets(_normalise_ip(host))
        except ValueError:
            yield CloseData()
            self.data = step(DATA, self.data, "RESET")
            raise CannotOpenData("PASV needs IPv4; use EPSV on IPv6 connections.") from None
        nums = ",".join(str(b) for b in octets)
        return Reply(227, f"Entering Passive Mode ({nums},{port >> 8},{port & 0xFF}).")

    def ftp_PORT(self, arg: str) -> Generator[Any, Any, Reply]:
        if self.epsv_all:
            raise ArgumentError("PORT not allowed after EPSV ALL.")
        try:
            nums = [int(x) for x in arg.strip().split(",")]
        except ValueError:
            raise ArgumentError("Invalid PORT format.") from None
        if len(nums) != 6 or not all(0 <= n <= 255 for n in nums):
            raise ArgumentError("Invalid PORT format.")
        host = ".".join(str(n) for n in nums[:4])
        return self._active(host, nums[4] << 8 | nums[5], "PORT")

    def ftp_EPRT(self, arg: str) -> Generator[Any, Any, Reply] | Reply:
        if self.epsv_all:
            raise ArgumentError("EPRT not allowed after EPSV ALL.")
        a = arg.strip()
        if len(a) < 2:
            raise ArgumentError("Invalid EPRT format.")
        parts = a[1:].split(a[0])  # RFC 2428 §2: the first character is the delimiter
        if len(parts) != 4 or parts[3] != "":
            raise ArgumentError("Invalid EPRT format.")
        proto, host, port_s = parts[0], parts[1], parts[2]
        if proto not in ("1", "2"):
            return Reply(522, "Network protocol not supported, use (1,2).")
        try:
            addr = ipaddress.ip_address(host)
            port = int(port_s)
        except ValueError:
            raise ArgumentError("Invalid EPRT format.") from None
        if (proto == "1") != (addr.version == 4) or not 0 < port < 65536:
            raise ArgumentError("Invalid EPRT format.")
        return self._active(str(addr), port, "EPRT")

    def _active(self, host: str, port: int, verb: str) -> Generator[Any, Any, Reply]:
        if self.transfer is not None:
            raise BadSequence("A transfer is in progress.")
        if not self.settings.port_promiscuous:
            # Bounce/FXP protection (RFC 2577 §3): only the client itself, never a privileged port.
            if _normalise_ip(host) != self.peer_ip:
                raise ArgumentError(f"Rejected {verb}: data connection to a foreign address.")
            if port < 1024:
                raise ArgumentError(f"Rejected {verb}: data connection to a privileged port.")
        if port == 0:
            raise ArgumentError(f"Invalid {verb} port.")
        yield from self._reset_data()
        self.active_addr = (_normalise_ip(host), port)
        self.data = step(DATA, self.data, "PORT")
        return Reply(200, f"{verb} command successful. Consider using PASV.")

    def ftp_ABOR(self, arg: str) -> Reply | Generator[Any, Any, Reply]:
        if self.transfer is not None:
            return self._abort_running()
        if self.data in (Data.PASSIVE, Data.ACTIVE):
            return self._abort_idle()
        return Reply(225, "No transfer to abort.")

    def _abort_running(self) -> Generator[Any, Any, Reply]:
        # RFC 959 §4.1.3: the transfer's command gets 426, then ABOR gets 226.
        yield AbortTransfer()
        return Reply(226, "ABOR command successful.")

    def _abort_idle(self) -> Generator[Any, Any, Reply]:
        yield from self._reset_data()
        return Reply(225, "ABOR command successful; data channel closed.")

    def forget_data_setup(self) -> None:
        """The IO layer dropped an unused passive listener (data timeout): back to no setup."""
        if self.data in (Data.PASSIVE, Data.ACTIVE):
            self.data = step(DATA, self.data, "RESET")
            self.active_addr = None

    def begin_transfer(self, transfer: Transfer) -> None:
        """Called by transfer handlers once the file is open: the data machine moves on."""
        if self.data is Data.NONE:
            raise CannotOpenData("Use PORT or PASV first.")
        self.data = step(DATA, self.data, "START")
        transfer.tls = self.prot_p
        self.transfer = transfer

    def require_data_setup(self) -> None:
        self.check_data_protection()
        if self.data is Data.NONE:
            raise CannotOpenData("Use PORT or PASV first.")
        if self.transfer is not None:
            raise BadSequence("A transfer is in progress.")

    def transfer_opened(self, t: Transfer) -> Reply:
        """The 150 reply, sent once the data connection is up (vsftpd's order)."""
        if t.kind == "STOU":
            return Reply(150, f"FILE: {t.name}")  # RFC 1123 §4.1.2.9
        if t.kind in ("LIST", "NLST", "MLSD"):
            return Reply(150, "Here comes the directory listing.")
        mode = "ASCII" if t.ascii else "BINARY"
        if t.kind == "RETR" and t.reader is not None:
            return Reply(150, f"Opening {mode} mode data connection for {t.name} ({t.reader.size} bytes).")
        return Reply(150, f"Opening {mode} mode data connection for {t.name}.")

    def transfer_finished(self, t: Transfer, outcome: str, error: OSError | None = None) -> list[Reply]:
        """The final reply of a transfer. ``outcome``: ok, aborted, lost, no-connection, local-error."""
        self.data = step(DATA, self.data, "END")
        self.transfer = None
        self.active_addr = None
        if outcome == "ok":
            text = "Directory send OK." if t.kind in ("LIST", "NLST", "MLSD") else "Transfer complete."
            replies = [Reply(226, text)]
        elif outcome == "aborted":
            replies = [Reply(426, "Transfer aborted.")]
        elif outcome == "lost":
            replies = [Reply(426, "Connection closed; transfer aborted.")]
        elif outcome == "no-connection":
            replies = [Reply(425, "Can't open data connection.")]
        elif outcome == "timeout":
            replies = [Reply(426, "Data connection timed out; transfer aborted.")]
        elif outcome == "refused":
            replies = [Reply(425, "Security: data connection from a foreign address refused.")]
        elif outcome == "tls-no-reuse":
            # RFC 4217 §10.2: the server may insist on a resumed session; 522 says so (vsftpd).
            replies = [Reply(522, "TLS session of data connection not resumed; session reuse required.")]
        elif outcome == "tls-failed":
            replies = [Reply(522, "TLS negotiation on the data connection failed.")]
        else:
            replies = [reply_for_oserror(error) if error is not None else Reply(451, "Local error.")]
        if self.quit_pending:
            self.closing = True  # the 221 went out with the QUIT
        return replies

    # ------------------------------------------------------------------ SITE
    def ftp_SITE(self, arg: str) -> HandlerResult:
        sub, _, rest = arg.strip().partition(" ")
        spec = SITE_COMMANDS.get(sub.upper())
        if spec is None:
            raise ArgumentError(f"Unknown SITE command {_printable(sub)!r}.")
        self._check(spec, rest)
        if sub.upper() == "HELP":
            return Reply(214, "Recognized SITE commands:", *(s.help for s in SITE_COMMANDS.values()),
                         "Help OK.")
        return self._site_chmod(rest)

    def _site_chmod(self, rest: str) -> Generator[Any, Any, Reply]:
        if not self.caps.chmod:
            raise ParamNotImplemented("SITE CHMOD not supported by this storage.")
        mode_s, _, name = rest.strip().partition(" ")
        try:
            mode = int(mode_s, 8)
        except ValueError:
            raise ArgumentError("Invalid SITE CHMOD mode.") from None
        if not name or not 0 <= mode <= 0o777:
            raise ArgumentError("Syntax: SITE CHMOD <mode> <path>.")
        path = resolve(self.cwd, name)
        yield self.fs("chmod", path, mode)
        return Reply(200, "SITE CHMOD successful.")

    def pwd_reply(self) -> Reply:
        return Reply(257, f"{quote_path(self.cwd)} is the current directory.")


_LS_VERBS = frozenset({"LIST", "NLST", "STAT"})
_ALIAS_VERBS = ("XCUP", "XCWD", "XMKD", "XPWD", "XRMD")


def _printable(s: str) -> str:
    return s[:40].encode("ascii", "backslashreplace").decode("ascii")
