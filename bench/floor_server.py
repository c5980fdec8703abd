"""The least an asyncio (uvloop) FTP server can do per operation: a floor for CPU per operation.

It answers ftpd-load's ``logins``, ``hold`` and ``small`` scenarios with canned replies and no
filesystem, no state machine, no limits, no logging: the control channel is one
``asyncio.Protocol`` that splits lines and writes a fixed reply; PASV binds a listening socket;
RETR sends the bytes last stored (4 KiB by default) with one ``send``; STOR reads to EOF and drops
the bytes. Whatever CPU it spends per operation (``--server-pid``) is the kernel's TCP work on
loopback plus uvloop's and CPython's minimum, which no Python server on the same machine can go
under. Comparing ftpd to it separates ftpd's own overhead from the platform's.

    python bench/floor_server.py --port 2199
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import socket
import sys

PAYLOAD: dict[str, bytes] = {}  # path -> what the last STOR sent (the set-up uploads the file)


class Control(asyncio.Protocol):
    """One control connection."""

    def __init__(self, ports: range) -> None:
        self.ports = ports
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.listener: socket.socket | None = None
        self.data: socket.socket | None = None
        self.pending: tuple[str, str] | None = None  # a transfer waiting for its connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(b"220 floor\r\n")  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            self.command(line.rstrip(b"\r").decode("utf-8", "replace"))

    def reply(self, text: bytes) -> None:
        assert self.transport is not None
        self.transport.write(text)

    def command(self, line: str) -> None:
        verb, _, arg = line.partition(" ")
        verb = verb.upper()
        if verb == "USER":
            self.reply(b"331 password\r\n")
        elif verb == "PASS":
            self.reply(b"230 in\r\n")
        elif verb in ("TYPE", "NOOP"):
            self.reply(b"200 ok\r\n")
        elif verb == "PWD":
            self.reply(b'257 "/"\r\n')
        elif verb == "MKD":
            self.reply(f'257 "{arg}"\r\n'.encode())
        elif verb in ("CWD", "CDUP", "DELE", "RMD"):
            self.reply(b"250 ok\r\n")
        elif verb == "SIZE":
            self.reply(f"213 {len(PAYLOAD.get(arg, b''))}\r\n".encode())
        elif verb == "PASV":
            port = self.passive()
            self.reply(f"227 Passive (127,0,0,1,{port >> 8},{port & 255})\r\n".encode())
        elif verb in ("RETR", "STOR", "NLST", "LIST"):
            self.reply(b"150 go\r\n")
            self.pending = (verb, arg)
            if self.data is not None:
                self.transfer()
        elif verb == "QUIT":
            self.reply(b"221 bye\r\n")
            assert self.transport is not None
            self.transport.close()
        else:
            self.reply(b"502 no\r\n")

    def passive(self) -> int:
        loop = asyncio.get_running_loop()
        for _ in range(len(self.ports)):
            port = self.ports[int.from_bytes(os.urandom(2), "big") % len(self.ports)]
            s = socket.socket()
            # As every FTP server: a port whose last data connection is in TIME_WAIT is free.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
                s.listen(1)
            except OSError:
                s.close()
                continue
            s.setblocking(False)
            self.listener = s
            loop.add_reader(s.fileno(), self.accept)
            return port
        raise OSError("no free passive port")

    def accept(self) -> None:
        assert self.listener is not None
        try:
            conn, _ = self.listener.accept()
        except BlockingIOError:
            return
        asyncio.get_running_loop().remove_reader(self.listener.fileno())
        self.listener.close()
        self.listener = None
        conn.setblocking(False)
        self.data = conn
        if self.pending is not None:
            self.transfer()

    def transfer(self) -> None:
        assert self.data is not None and self.pending is not None
        verb, arg = self.pending
        conn = self.data
        if verb == "STOR":
            chunks: list[bytes] = []
            loop = asyncio.get_running_loop()

            def readable() -> None:
                try:
                    data = conn.recv(65536)
                except BlockingIOError:
                    return
                if data:
                    chunks.append(data)
                    return
                loop.remove_reader(conn.fileno())
                PAYLOAD[arg] = b"".join(chunks)
                self.finish()

            loop.add_reader(conn.fileno(), readable)
            return
        if verb == "RETR":
            conn.send(PAYLOAD.get(arg, b""))  # small files: the socket buffer takes it all
        self.finish()

    def finish(self) -> None:
        assert self.data is not None
        self.data.close()
        self.data = None
        self.pending = None
        self.reply(b"226 done\r\n")

    def connection_lost(self, exc: Exception | None) -> None:
        loop = asyncio.get_running_loop()
        for s in (self.listener, self.data):
            if s is not None and s.fileno() >= 0:
                loop.remove_reader(s.fileno())
                s.close()


async def serve(port: int, ports: range) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Control(ports), "127.0.0.1", port, backlog=1024)
    print(f"ready {os.getpid()} {server.sockets[0].getsockname()[1]}", flush=True)
    await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    """Serve until killed."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--pasv-ports", default="64000-64999")
    a = p.parse_args(argv)
    first, last = (int(x) for x in a.pasv_ports.split("-"))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # as every server here does
    import uvloop

    try:
        uvloop.run(serve(a.port, range(first, last + 1)))
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
