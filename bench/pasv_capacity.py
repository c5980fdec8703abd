"""How many transfers can wait for their data connection at once (issue 23).

Opens SESSIONS control connections spread round-robin over client source addresses, has each
send EPSV then RETR without connecting (so every transfer is pending at the same time), counts
229 against 425, then connects every data connection and checks each download's size::

    python3 -m ftpd --port 2121 --password pw --pasv-ports 61000-61009 --max-per-ip 0 &
    python3 bench/pasv_capacity.py --port 2121 --password pw --sessions 300 \
        --source-addresses 127.0.0.1-127.0.0.30 --file f.bin

A port waits for one session per client address, so the capacity is ports x addresses (here
10 x 30 = 300); before issue 23 it was the number of ports.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import re
import time


async def _reply(reader: asyncio.StreamReader) -> tuple[int, str]:
    while True:
        line = (await reader.readline()).decode()
        if not line:
            raise ConnectionError("closed")
        if len(line) >= 4 and line[3] == " " and line[:3].isdigit():
            return int(line[:3]), line


async def _session(
    args: argparse.Namespace, source: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, int | None]:
    reader, writer = await asyncio.open_connection(
        args.host, args.port, local_addr=(source, 0), limit=1 << 16
    )
    await _reply(reader)
    for line in (f"USER {args.user}", f"PASS {args.password}", "TYPE I", "EPSV"):
        writer.write(line.encode() + b"\r\n")
        code, text = await _reply(reader)
    if code != 229:
        return reader, writer, None
    m = re.search(r"\|\|\|(\d+)\|", text)
    assert m, text
    writer.write(f"RETR {args.file}\r\n".encode())
    return reader, writer, int(m.group(1))


async def _fetch(
    args: argparse.Namespace,
    source: str,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    port: int,
) -> int:
    dr, dw = await asyncio.open_connection(args.host, port, local_addr=(source, 0))
    n = 0
    while chunk := await dr.read(1 << 16):
        n += len(chunk)
    dw.close()
    assert (await _reply(reader))[0] == 150
    assert (await _reply(reader))[0] == 226
    return n


async def main(args: argparse.Namespace) -> None:
    lo, hi = (ipaddress.ip_address(a) for a in args.source_addresses.split("-"))
    sources = [str(ipaddress.ip_address(int(lo) + i)) for i in range(int(hi) - int(lo) + 1)]
    t0 = time.monotonic()
    sessions = [
        await _session(args, sources[i % len(sources)]) for i in range(args.sessions)
    ]
    pending = [(i, s) for i, s in enumerate(sessions) if s[2] is not None]
    ports = {s[2] for _, s in pending}
    print(
        f"{len(pending)} transfers pending at once on {len(ports)} ports from "
        f"{len(sources)} addresses; {args.sessions - len(pending)} got 425"
    )
    sizes = await asyncio.gather(
        *(_fetch(args, sources[i % len(sources)], r, w, p) for i, (r, w, p) in pending)  # type: ignore[arg-type]
    )
    print(
        f"all {len(sizes)} served ({len(set(sizes))} distinct sizes: {sorted(set(sizes))}) "
        f"in {time.monotonic() - t0:.1f} s"
    )
    for _r, w, _ in sessions:
        w.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=2121)
    p.add_argument("--user", default="user")
    p.add_argument("--password", required=True)
    p.add_argument("--sessions", type=int, default=100)
    p.add_argument("--source-addresses", default="127.0.0.1-127.0.0.10")
    p.add_argument("--file", default="f.bin", help="a file in the user's home to download")
    asyncio.run(main(p.parse_args()))
