"""A trivial FTP "sink" server, to measure what ftpd-load can do on its own (no real server).

It answers just the commands ftpd-load's ``retr``, ``stor``, ``small`` and ``logins`` scenarios
send, with no filesystem behind them: STOR splices the data connection to /dev/null (no copy to
user space) and remembers only the size; RETR sends that many bytes (``--file-size`` for a path
never stored) with ``os.sendfile`` from one file in /dev/shm (zero copy, from memory). Each
control connection gets a thread with blocking sockets, the cheapest way to move bulk data in
Python: the GIL is released during every ``splice`` and ``sendfile``. What ftpd-load reaches
against this is its own ceiling (with the loopback's); a server that measures close to it is
measured by the client, not the other way round.

    python bench/sink_server.py --port 2199 --file-size 1G
"""

from __future__ import annotations

import argparse
import fcntl
import os
import socket
import sys
import tempfile
import threading

RECV_BUF = 4 << 20
SOCK_BUF = 4 << 20
STORED: dict[str, int] = {}  # path -> bytes uploaded there (RETR sends that many back)
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


class Session(threading.Thread):
    """One control connection, served with blocking calls in its own thread."""

    def __init__(self, conn: socket.socket, args: argparse.Namespace, file_fd: int) -> None:
        super().__init__(daemon=True)
        self.conn = conn
        self.args = args
        self.file_fd = file_fd
        self.listener: socket.socket | None = None
        self.buf = memoryview(bytearray(RECV_BUF))
        # splice(2) moves the received pages to /dev/null without copying them to user space.
        self.null_pipe: tuple[int, int, int] | None = None
        if hasattr(os, "splice"):
            r, w = os.pipe()
            try:
                fcntl.fcntl(w, F_SETPIPE_SZ, 1 << 20)
            except OSError:
                pass  # the default 64 KiB pipe works, only with more calls
            self.null_pipe = (r, w, os.open(os.devnull, os.O_WRONLY))

    def reply(self, text: str) -> None:
        self.conn.sendall(text.encode() + b"\r\n")

    def run(self) -> None:
        try:
            self.serve()
        except OSError:
            pass
        finally:
            self.conn.close()
            if self.listener is not None:
                self.listener.close()
            for fd in self.null_pipe or ():
                os.close(fd)

    def passive(self) -> int:
        if self.listener is not None:
            self.listener.close()
        lo, hi = (int(x) for x in self.args.pasv_ports.split("-"))
        for port in range(lo, hi + 1):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCK_BUF)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCK_BUF)
            try:
                # Two threads may both bind a port (SO_REUSEADDR) until one listens: a failed
                # listen means another thread won it.
                s.bind(("127.0.0.1", port))
                s.listen(1)
            except OSError:
                s.close()
                continue
            self.listener = s
            return port
        raise OSError("no free passive port")

    def size_of(self, path: str) -> int:
        """Bytes a RETR of ``path`` sends: what was stored there, else ``--file-size``."""
        return min(STORED.get(path, self.args.file_size), self.args.file_size)

    def discard(self, d: socket.socket) -> int:
        """Read the data connection to EOF and drop it (splice to /dev/null where possible)."""
        total = 0
        if self.null_pipe is None:
            while n := d.recv_into(self.buf):
                total += n
            return total
        r, w, null = self.null_pipe
        while n := os.splice(d.fileno(), w, RECV_BUF):
            total += n
            while n:
                n -= os.splice(r, null, n)
        return total

    def data(self) -> socket.socket:
        assert self.listener is not None
        conn, _ = self.listener.accept()
        self.listener.close()
        self.listener = None
        return conn

    def serve(self) -> None:
        self.reply("220 sink ready")
        f = self.conn.makefile("rb")
        for raw in f:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            verb, _, arg = line.partition(" ")
            verb = verb.upper()
            if verb == "USER":
                self.reply("331 password please")
            elif verb == "PASS":
                self.reply("230 logged in")
            elif verb in ("TYPE", "NOOP"):
                self.reply("200 ok")
            elif verb == "PWD":
                self.reply('257 "/"')
            elif verb == "MKD":
                self.reply(f'257 "{arg}" created')
            elif verb in ("CWD", "CDUP", "DELE", "RMD"):
                self.reply("250 ok")
            elif verb == "SIZE":
                self.reply(f"213 {self.size_of(arg)}")
            elif verb == "PASV":
                port = self.passive()
                self.reply(f"227 Entering Passive Mode (127,0,0,1,{port >> 8},{port & 255})")
            elif verb == "EPSV":
                self.reply(f"229 Entering Extended Passive Mode (|||{self.passive()}|)")
            elif verb == "STOR":
                self.reply("150 send it")
                with self.data() as d:
                    STORED[arg] = self.discard(d)
                self.reply("226 discarded")
            elif verb == "RETR":
                self.reply("150 here it comes")
                with self.data() as d:
                    offset, size = 0, self.size_of(arg)
                    while offset < size:
                        n = os.sendfile(d.fileno(), self.file_fd, offset, size - offset)
                        if n == 0:
                            break
                        offset += n
                self.reply("226 sent")
            elif verb in ("NLST", "LIST", "MLSD"):
                self.reply("150 listing")
                self.data().close()
                self.reply("226 empty")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 not here")


def main(argv: list[str] | None = None) -> None:
    """Serve until killed; prints ``ready <pid> <port>`` once listening."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--file-size", default="1G", help="bytes each RETR sends (K, M, G suffixes)")
    p.add_argument("--pasv-ports", default="63000-63999")
    args = p.parse_args(argv)
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = args.file_size.upper()
    args.file_size = int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)
    # A file on tmpfs (real pages, not a sparse hole): sendfile from memory, never a disk.
    # Unnamed (unlinked at once): nothing is left in /dev/shm however the server is stopped.
    tmp = tempfile.TemporaryFile(dir="/dev/shm", prefix="sink-")  # noqa: SIM115
    block = os.urandom(1 << 20)
    for _ in range(args.file_size >> 20):
        tmp.write(block)
    tmp.write(block[: args.file_size & ((1 << 20) - 1)])
    tmp.flush()
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", args.port))
    srv.listen(512)
    print(f"ready {os.getpid()} {srv.getsockname()[1]}", flush=True)
    try:
        while True:
            conn, _ = srv.accept()
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            Session(conn, args, tmp.fileno()).start()
    except KeyboardInterrupt:
        pass
    finally:
        srv.close()
        tmp.close()
    sys.exit(0)


if __name__ == "__main__":
    main()
