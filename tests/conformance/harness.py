"""Run one scripted FTP session against a server and record what happened.

A *scenario* is a list of steps (``Cmd``, ``Xfer``, ``During``, ``Wait``). ``run_scenario`` plays it
over a raw socket against one server and returns a ``Recording``: for every step the reply codes
(with their multi-line structure and the few texts the protocol pins down), the bytes of every
data transfer and, at the end, the scenario directory's tree with file contents. ``compare.py``
turns two recordings into a list of differences.

Where a server keeps its files is a ``Home``: it seeds a scenario's directory with the initial tree
and reads the tree back afterwards. ``LocalHome`` is a directory (both pyftpdlib and ftpd's local
backend); tests/s3 adds one for ftpd's S3 backend, so the same scenarios run against both.

The reference is pyftpdlib (``RefServer``: ``FTPServer`` + ``DummyAuthorizer`` in a thread with
its own IO loop, sendfile on); the server under test is ftpd, started by the caller. The client
behaves like the clients that matter: it connects the passive data socket *before* it sends the
transfer command (ftplib, FileZilla, curl, jlaffaye/ftp) and accepts an active one after it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

TIMEOUT = 5.0  # seconds for any single reply or data read
SMALL_RCVBUF = 32 * 1024  # keeps a download from completing before an ABOR (see During)
FIXED_MTIME = 1614834367  # 2021-03-04 05:06:07 UTC: old, so LIST shows a year, identical in both


# ---------------------------------------------------------------------------------- steps
@dataclass(frozen=True)
class Cmd:
    """Send one command line, record its reply."""

    line: str | bytes


@dataclass(frozen=True)
class Xfer:
    """A data-channel action: ``via`` (PASV/EPSV/PORT/EPRT) then ``command``; send ``upload``
    bytes (STOR/APPE/STOU) or read until EOF (RETR/LIST/NLST/MLSD)."""

    command: str | bytes | None  # None: only set up the data channel
    via: str = "PASV"
    upload: bytes | None = None


@dataclass(frozen=True)
class During:
    """Start ``command`` over ``via``, move a little data, then send ``send`` mid-transfer.

    For a download the data socket has a small receive buffer and is not read, so the transfer
    cannot finish on its own; for an upload the data socket stays open. ``send``:

    - ABOR: the transfer's reply (426) and ABOR's (226) are recorded as ``final``/``after``;
      ``oob`` sends it the way Python ftplib does (as TCP urgent data);
    - QUIT: the transfer is then let finish; ``final`` (226) and ``after`` (221) are recorded;
    - anything else (STAT, NOOP): its reply is recorded as ``interim``, then the transfer is let
      finish and ``final`` is recorded.
    """

    command: str
    send: str = "ABOR"
    via: str = "PASV"
    upload: bool = False
    oob: bool = False


@dataclass(frozen=True)
class Wait:
    seconds: float


Step = Cmd | Xfer | During | Wait


@dataclass(frozen=True)
class Scenario:
    """``login``: USER/PASS (``user`` or ``anonymous``) and CWD into the scenario directory first;
    "" for scenarios that drive the login themselves."""

    id: str
    steps: tuple[Step, ...]
    login: str = "user"
    big: bool = False  # add big.bin (10 MiB) to the initial tree


# ---------------------------------------------------------------------------------- recording
@dataclass
class Reply:
    code: int  # -1: no reply in time; 0: connection closed
    lines: list[bytes]

    @property
    def multiline(self) -> bool:
        return len(self.lines) > 1

    @property
    def text(self) -> bytes:
        return self.lines[0][4:] if self.lines else b""

    def __str__(self) -> str:
        if self.code <= 0:
            return "<timeout>" if self.code < 0 else "<closed>"
        return " | ".join(ln.decode("utf-8", "backslashreplace") for ln in self.lines)


@dataclass
class StepRecord:
    """What one step produced. ``replies`` maps a role to a reply: ``reply`` for a Cmd;
    ``setup``/``prelim``/``final`` (and ``interim``/``after`` for During) for data actions."""

    verb: str
    replies: dict[str, Reply] = field(default_factory=dict)
    data: bytes | None = None  # bytes received on the data connection (None: none was opened)


Tree = dict[bytes, tuple[str, int, str]]  # relative path -> (kind, size, sha256 prefix)


@dataclass
class Recording:
    greeting: Reply
    preamble: list[StepRecord]
    steps: list[StepRecord]
    tree: Tree
    stou_names: list[bytes]


# ---------------------------------------------------------------------------------- client
class Client:
    """A raw control connection that reads complete (multi-line) replies as bytes."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.sock = socket.create_connection((host, port), timeout=TIMEOUT)
        self.buf = b""
        self.closed = False
        self.kept: list[DataEnd] = []

    def send(self, line: str | bytes, oob: bool = False) -> None:
        data = line.encode("utf-8") if isinstance(line, str) else line
        try:
            if oob:
                # ftplib.FTP.abort(): the whole "ABOR\r\n" as urgent data, no Telnet IP/DM.
                self.sock.sendall(data + b"\r\n", socket.MSG_OOB)
            else:
                self.sock.sendall(data + b"\r\n")
        except OSError:
            self.closed = True

    def _line(self) -> bytes | None:
        while b"\n" not in self.buf:
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                raise  # reply() turns it into code -1
            except OSError:
                chunk = b""  # reset by the server: the same as a close
            if not chunk:
                self.closed = True
                return None
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.rstrip(b"\r")

    def reply(self, timeout: float = TIMEOUT) -> Reply:
        """The next reply; code -1 if none comes in ``timeout``, 0 if the server closed."""
        if self.closed and b"\n" not in self.buf:
            return Reply(0, [])
        self.sock.settimeout(timeout)
        try:
            first = self._line()
            if first is None:
                return Reply(0, [])
            lines = [first]
            m = re.match(rb"^(\d{3})([ -])", first)
            if m is None:
                return Reply(999, lines)  # not a reply line at all: always a difference
            if m.group(2) == b"-":
                end = m.group(1) + b" "
                while True:
                    nxt = self._line()
                    if nxt is None:
                        break
                    lines.append(nxt)
                    if nxt.startswith(end):
                        break
            return Reply(int(m.group(1)), lines)
        except TimeoutError:
            return Reply(-1, [])
        finally:
            self.sock.settimeout(TIMEOUT)

    def close(self) -> None:
        for end in self.kept:
            end.close()
        try:
            self.sock.close()
        except OSError:
            pass


def _recv_all(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        try:
            chunk = sock.recv(1 << 20)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


class DataEnd:
    """The client's end of a data connection: a connected socket (passive) or a listener (active)."""

    def __init__(self, sock: socket.socket | None, listener: socket.socket | None) -> None:
        self.sock = sock
        self.listener = listener

    def connected(self) -> socket.socket | None:
        if self.sock is None and self.listener is not None:
            try:
                self.sock, _ = self.listener.accept()
                self.sock.settimeout(TIMEOUT)
            except OSError:
                return None
        return self.sock

    def close(self) -> None:
        for s in (self.sock, self.listener):
            if s is not None:
                try:
                    s.close()
                except OSError:
                    pass


def _open_data(client: Client, via: str, small_rcvbuf: bool) -> tuple[Reply, DataEnd]:
    """Send PASV/EPSV/PORT/EPRT and set up our end. The DataEnd is empty if the server refused."""
    via = via.upper()
    if via in ("PASV", "EPSV"):
        client.send(via)
        r = client.reply()
        if via == "PASV":
            m = re.search(rb"(\d+),(\d+),(\d+),(\d+),(\d+),(\d+)", r.text)
            addr = None
            if r.code == 227 and m:
                n = [int(x) for x in m.groups()]
                addr = (".".join(map(str, n[:4])), n[4] << 8 | n[5])
        else:
            m = re.search(rb"\(\|\|\|(\d+)\|\)", r.text)
            addr = (client.host, int(m.group(1))) if r.code == 229 and m else None
        if addr is None:
            return r, DataEnd(None, None)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if small_rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_RCVBUF)
        s.settimeout(TIMEOUT)
        try:
            s.connect(addr)
        except OSError:
            s.close()
            return r, DataEnd(None, None)
        return r, DataEnd(s, None)
    lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if small_rcvbuf:
        lst.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_RCVBUF)
    lst.bind((client.host, 0))
    lst.listen(1)
    lst.settimeout(TIMEOUT)
    host, port = lst.getsockname()[:2]
    if via == "PORT":
        client.send(f"PORT {host.replace('.', ',')},{port >> 8},{port & 0xFF}")
    else:
        client.send(f"EPRT |1|{host}|{port}|")
    r = client.reply()
    if r.code != 200:
        lst.close()
        return r, DataEnd(None, None)
    return r, DataEnd(None, lst)


def _verb(line: str | bytes) -> str:
    b = line.encode() if isinstance(line, str) else line
    return b.split(b" ", 1)[0].decode("ascii", "replace").upper()


def _subst(line: str | bytes, scenario_id: str) -> str | bytes:
    """``{id}`` in a command stands for the scenario's directory name."""
    if isinstance(line, bytes):
        return line.replace(b"{id}", scenario_id.encode())
    return line.replace("{id}", scenario_id)


def run_step(client: Client, step: Step, scenario_id: str) -> StepRecord:
    if isinstance(step, Wait):
        time.sleep(step.seconds)  # a scenario's own pause (e.g. past a timeout): under test
        return StepRecord("WAIT")
    if isinstance(step, Cmd):
        rec = StepRecord(_verb(step.line))
        client.send(_subst(step.line, scenario_id))
        rec.replies["reply"] = client.reply()
        return rec
    if isinstance(step, Xfer):
        return _run_xfer(client, step, scenario_id)
    return _run_during(client, step)


def _run_xfer(client: Client, step: Xfer, scenario_id: str) -> StepRecord:
    rec = StepRecord(_verb(step.command) if step.command is not None else step.via.upper())
    setup, end = _open_data(client, step.via, small_rcvbuf=False)
    rec.replies["setup"] = setup
    try:
        if step.command is None:
            # Set-up only (e.g. to ABOR an idle data channel): keep our end open until the end.
            client.kept.append(end)
            end = DataEnd(None, None)
            return rec
        client.send(_subst(step.command, scenario_id))
        prelim = client.reply()
        rec.replies["prelim"] = prelim
        if prelim.code not in (125, 150):
            return rec
        sock = end.connected()
        if sock is None:
            rec.replies["final"] = client.reply()
            return rec
        if step.upload is not None:
            try:
                sock.sendall(step.upload)
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            rec.data = _recv_all(sock)  # wait for the server to close its side
        else:
            rec.data = _recv_all(sock)
        end.close()
        rec.replies["final"] = client.reply()
        return rec
    finally:
        end.close()


def _run_during(client: Client, step: During) -> StepRecord:
    rec = StepRecord(_verb(step.command))
    setup, end = _open_data(client, step.via, small_rcvbuf=not step.upload)
    rec.replies["setup"] = setup
    try:
        client.send(step.command)
        prelim = client.reply()
        rec.replies["prelim"] = prelim
        if prelim.code not in (125, 150):
            return rec
        sock = end.connected()
        received = b""
        try:
            if sock is None:
                pass
            elif step.upload:
                sock.sendall(b"x" * 65536)
            else:
                received = sock.recv(4096)  # the transfer has started
        except OSError:
            pass
        time.sleep(0.05)  # the scenario: the command comes a moment into a moving transfer
        verb = step.send.upper()
        client.send(step.send, oob=step.oob)
        if verb == "ABOR":
            # RFC 959 §4.1.3: 426 for the transfer, then 226 for the ABOR. A server that let the
            # transfer finish would send 226 then 225 instead; either way two replies are due.
            rec.replies["final"] = client.reply()
            rec.replies["after"] = client.reply(timeout=2.0)
            return rec
        if verb != "QUIT":
            rec.replies["interim"] = client.reply()
        if sock is not None:
            if step.upload:
                try:
                    sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
            received += _recv_all(sock)
            end.close()
        rec.data = received if not step.upload else None
        rec.replies["final"] = client.reply()
        if verb == "QUIT":
            rec.replies["after"] = client.reply()
        return rec
    finally:
        end.close()


def run_scenario(host: str, port: int, home: Home, sc: Scenario, password: str) -> Recording:
    """Play ``sc`` against the server at host:port whose files are in ``home``."""
    client = Client(host, port)
    try:
        greeting = client.reply()
        preamble: list[StepRecord] = []
        if sc.login:
            user, pw = (
                ("anonymous", "guest@example.com")
                if sc.login == "anonymous"
                else ("user", password)
            )
            for line in (f"USER {user}", f"PASS {pw}", f"CWD /{sc.id}"):
                preamble.append(run_step(client, Cmd(line), sc.id))
        steps = [run_step(client, st, sc.id) for st in sc.steps]
        if not client.closed:
            client.send("QUIT")
            client.reply(timeout=2.0)
            # Both servers close the control connection after 221 and after any transfer still
            # running: the tree is final then (reply code 0 is the close, -1 a timeout).
            deadline = time.monotonic() + 5.0
            while client.reply(timeout=2.0).code > 0 and time.monotonic() < deadline:
                pass
    finally:
        client.close()
    stou = []
    for rec in steps:
        for r in rec.replies.values():
            if r.code in (125, 150) and r.text.startswith(b"FILE: "):
                stou.append(r.text[6:].strip())
    return Recording(greeting, preamble, steps, home.snapshot(sc), stou)


# ---------------------------------------------------------------------------------- trees
BASE_TREE: tuple[tuple[str, bytes | None], ...] = (
    ("a.txt", b"line one\nline two\r\nline three\n"),
    ("bin.dat", bytes(range(256)) * 16),
    ("empty.bin", b""),
    ("with space.txt", b"spaces\n"),
    ("sub", None),
    ("sub/inner.txt", b"inner\n"),
    ("sub/deeper", None),
    ("emptydir", None),
)


def big_content() -> bytes:
    """10 MiB that are not all the same byte (so offsets and truncation show)."""
    block = hashlib.sha256(b"ftpd").digest() * 2048  # 64 KiB
    return block * 160


def initial_tree(sc: Scenario) -> list[tuple[str, bytes | None]]:
    """The scenario directory's initial entries, parents first: (relative path, content or None
    for a directory)."""
    entries = list(BASE_TREE)
    if sc.big:
        entries.append(("big.bin", big_content()))
    return entries


def file_entry(content: bytes) -> tuple[str, int, str]:
    """A file's entry in a ``Tree``."""
    return ("file", len(content), hashlib.sha256(content).hexdigest()[:16])


DIR_ENTRY = ("dir", 0, "")


class Home(Protocol):
    """Where one server keeps its files."""

    def populate(self, sc: Scenario) -> None:
        """Create ``/<sc.id>`` holding ``initial_tree(sc)``, every entry dated ``FIXED_MTIME``."""
        ...

    def snapshot(self, sc: Scenario) -> Tree:
        """The tree under ``/<sc.id>`` as the scenario left it."""
        ...


@dataclass(frozen=True)
class LocalHome:
    """A home directory on the local disk."""

    root: Path

    def populate(self, sc: Scenario) -> None:
        populate(self.root, sc)

    def snapshot(self, sc: Scenario) -> Tree:
        return snapshot(self.root / sc.id)


def populate(home: Path, sc: Scenario) -> None:
    """Create the scenario directory with the same initial tree in ``home``."""
    base = home / sc.id
    base.mkdir()
    for name, content in initial_tree(sc):
        p = Path(os.fsdecode(os.path.join(os.fsencode(base), os.fsencode(name))))
        if content is None:
            p.mkdir()
        else:
            p.write_bytes(content)
    # Fixed times, deepest first, so LIST/MLSD/MDTM agree between the two homes.
    for dirpath, dirnames, filenames in os.walk(base, topdown=False):
        for n in filenames + dirnames:
            os.utime(os.path.join(dirpath, n), (FIXED_MTIME, FIXED_MTIME))
    os.utime(base, (FIXED_MTIME, FIXED_MTIME))


def snapshot(root: Path) -> Tree:
    """relative path (bytes) -> (kind, size, sha256 prefix) for every entry under root."""
    out: Tree = {}
    broot = os.fsencode(root)
    if not os.path.isdir(broot):
        return out
    for dirpath, dirnames, filenames in os.walk(broot):
        for n in dirnames:
            out[os.path.relpath(os.path.join(dirpath, n), broot)] = DIR_ENTRY
        for n in filenames:
            p = os.path.join(dirpath, n)
            with open(p, "rb") as f:
                out[os.path.relpath(p, broot)] = file_entry(f.read())
    return out


# ---------------------------------------------------------------------------------- reference
class RefServer:
    """pyftpdlib in a thread with its own IO loop, configured as the brief says."""

    def __init__(self, home: Path, passive_ports: range) -> None:
        from pyftpdlib.authorizers import DummyAuthorizer
        from pyftpdlib.handlers import FTPHandler
        from pyftpdlib.ioloop import IOLoop
        from pyftpdlib.servers import FTPServer

        logging.getLogger("pyftpdlib").setLevel(logging.WARNING)
        auth = DummyAuthorizer()
        auth.add_user("user", "12345", str(home), perm="elradfmwMT")
        auth.add_anonymous(str(home))

        # A subclass, never class-attribute mutation of FTPHandler itself.
        class Handler(FTPHandler):
            pass

        Handler.authorizer = auth
        Handler.use_sendfile = True
        Handler.auth_failed_timeout = 0  # as ftpd's login_fail_delay=0
        Handler.max_login_attempts = 3
        Handler.passive_ports = list(passive_ports)
        Handler.permit_foreign_addresses = False
        Handler.permit_privileged_ports = False
        self.home = home
        self.user, self.password = "user", "12345"
        self._ioloop = IOLoop()
        self._server = FTPServer(("127.0.0.1", 0), Handler, ioloop=self._ioloop)
        self.host, self.port = self._server.address[:2]
        self._serving = True
        self._thread = threading.Thread(target=self._run, name="pyftpdlib", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        # The IO loop directly: serve_forever() logs a start line on every call.
        while self._serving:
            self._ioloop.loop(0.05, blocking=False)

    def stop(self) -> None:
        self._serving = False
        self._thread.join(10)
        self._server.close_all()
