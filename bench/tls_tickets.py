"""What TLS 1.3 session tickets cost the server: a handshake's server-side CPU with N tickets.

Each handshake runs in-process over memory BIOs (no sockets), with a self-signed ECDSA P-256
certificate as ``bench/compare.py`` makes one; only the server's calls are timed (``thread_time``):
``wrap_bio``, its ``do_handshake`` steps and its first write (where the tickets go out). The rows
with ``minted`` issue that many tickets after the handshake through ``ftpd.server.tickets``, as the
control connection does for each PROT P data connection.

    python3 bench/tls_tickets.py          # 400 handshakes per row; prints medians and p10
"""

from __future__ import annotations

import argparse
import ssl
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import compare  # noqa: E402

from ftpd.server import tickets  # noqa: E402


def _pump(src: ssl.MemoryBIO, dst: ssl.MemoryBIO) -> None:
    data = src.read()
    if data:
        dst.write(data)


def handshake(sctx: ssl.SSLContext, cctx: ssl.SSLContext, minted: int) -> float:
    """One handshake and one reply; the server's CPU seconds."""
    s_in, s_out, c_in, c_out = (ssl.MemoryBIO() for _ in range(4))
    spent = 0.0
    t0 = time.thread_time()
    server = sctx.wrap_bio(s_in, s_out, server_side=True)
    spent += time.thread_time() - t0
    client = cctx.wrap_bio(c_in, c_out, server_hostname="localhost")
    server_done = client_done = False
    for _ in range(10):
        if not client_done:
            try:
                client.do_handshake()
                client_done = True
            except ssl.SSLWantReadError:
                pass
        _pump(c_out, s_in)
        if not server_done:
            t0 = time.thread_time()
            try:
                server.do_handshake()
                server_done = True
            except ssl.SSLWantReadError:
                pass
            spent += time.thread_time() - t0
        _pump(s_out, c_in)
        if server_done and client_done:
            break
    t0 = time.thread_time()
    for _ in range(minted):
        tickets.mint(server)
    server.write(b"227 Entering Passive Mode (127,0,0,1,78,32).\r\n")
    spent += time.thread_time() - t0
    _pump(s_out, c_in)
    client.read(100)
    return spent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=400, help="handshakes per row")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        compare.make_certs(Path(tmp), {"ec"})
        cert, key = compare.CERTS["ec"]
        cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        cctx.check_hostname = False
        cctx.verify_mode = ssl.CERT_NONE
        for at_handshake, minted in ((8, 0), (2, 0), (1, 0), (0, 0), (0, 1)):
            sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            sctx.load_cert_chain(cert, key)
            sctx.num_tickets = at_handshake
            if minted and not tickets.usable(sctx):
                print("tickets cannot be issued on demand here")
                continue
            for _ in range(20):
                handshake(sctx, cctx, minted)
            times = sorted(handshake(sctx, cctx, minted) for _ in range(args.n))
            print(
                f"{at_handshake} tickets at the handshake, {minted} minted after: server CPU "
                f"median {times[args.n // 2] * 1e6:.0f} µs, p10 {times[args.n // 10] * 1e6:.0f} µs"
            )


if __name__ == "__main__":
    main()
