"""The CPU of one LIST of a local directory, in-process: ``LocalListing`` read and formatted.

What an IO thread runs for a LIST (``LocalListing._read_sync`` with the session's
``LineFormat``): open the directory, ``scandir``, one ``lstat`` per entry, an entry object each,
sort, the ``ls -l`` lines, UTF-8. No loop, no sockets, no thread hop: the figures are the
part ftpd's own Python (and those syscalls) costs. A temporary directory of ``--entries`` files
(two of them subdirectories, every fifth one older than six months; ``--link`` makes one a
symlink) is listed ``-n`` times a round; each figure is the best of ``--rounds`` rounds of
``process_time``.

    python3 bench/listing_cost.py                            # this checkout
    python3 bench/listing_cost.py --tree /tmp/listing_before # another (git archive REV ftpd | tar -x)
    python3 bench/listing_cost.py --entries 200 --kind MLSD

Also printed: the syscalls alone (open, ``scandir``, the ``lstat`` calls, close; the rest is
Python), the format alone on ``FileStat`` entries (the path of S3 and other backends), and a
digest of the bytes, which two trees must share. Run two trees alternately several times: the
machine's speed drifts.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

NOW = 1_780_000_000.0


def populate(root: Path, entries: int, link: bool) -> None:
    """``entries`` names in ``root/d``: files of varied sizes and dates, 2 directories (and a
    symlink inside the home with ``link``)."""
    d = root / "d"
    d.mkdir()
    for i in range(entries):
        p = d / f"file-{i:04d}.dat"
        if i in (3, 11):
            p = d / f"dir-{i:04d}"
            p.mkdir()
        elif i == 7 and link:
            os.symlink("file-0000.dat", p)
            continue
        else:
            p.write_bytes(b"x" * (i * 37 % 4096))
        # most entries recent (a few minutes apart), every fifth one a year old
        mtime = NOW - (400 * 86400 if i % 5 == 4 else 60 * (i % 4))
        os.utime(p, (mtime, mtime))


def best(fn: Callable[[], Any], n: int, rounds: int) -> float:
    """The best round's µs per call of ``fn``."""
    for _ in range(max(1, n // 10)):  # warm-up
        fn()
    out = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(n):
            fn()
        out = min(out, (time.process_time() - start) / n * 1e6)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tree", default=str(Path(__file__).resolve().parents[1]),
                   help="the directory holding the ftpd package to measure")  # fmt: skip
    p.add_argument("--entries", type=int, default=20)
    p.add_argument("--link", action="store_true", help="make one entry a symlink (a realpath)")
    p.add_argument("--kind", default="LIST", choices=("LIST", "NLST", "MLSD"))
    p.add_argument("-n", type=int, default=4000, help="listings per round")
    p.add_argument("--rounds", type=int, default=7)
    a = p.parse_args(argv)
    sys.path.insert(0, a.tree)
    from ftpd.fs.listing_stream import LocalListing
    from ftpd.fs.local import LocalFS
    from ftpd.proto.listing import LineFormat, ListingKind

    kind = ListingKind[a.kind]
    shm = "/dev/shm" if Path("/dev/shm").is_dir() else None
    with tempfile.TemporaryDirectory(dir=shm) as tmp:
        populate(Path(tmp), a.entries, a.link)
        fs = LocalFS(tmp, None)
        lfs = fs._dir  # what LocalFS.open_listing hands each listing

        def fmt() -> LineFormat:
            return LineFormat(kind, NOW, perms="elr")  # a new one per command, like the handlers

        def listing() -> bytes:
            stream = LocalListing(lfs, "/d", fmt())
            out = []
            while data := stream._read_sync():
                out.append(data)
            stream.close_sync()
            return b"".join(out)

        def floor() -> None:  # the syscalls alone: open, scandir, an lstat per entry, close
            fd = os.open(os.path.join(tmp, "d"), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            with os.scandir(fd) as it:
                for entry in it:
                    entry.stat(follow_symlinks=False)
            os.close(fd)

        entries = LocalListing(lfs, "/d", None).entries_sync(1 << 30)
        assert len(entries) == a.entries, len(entries)
        entries.sort(key=lambda e: e.name)
        out = listing()
        whole = best(listing, a.n, a.rounds)
        bare = best(floor, a.n, a.rounds)
        form = best(lambda: fmt()(entries), a.n, a.rounds)
    # MLSD's unique fact is the inode: another directory's, run to run
    digest = hashlib.sha256(re.sub(rb"unique=[^;]*;", b"", out)).hexdigest()[:12]
    print(f"{a.tree}: {a.kind} of {a.entries} entries: {whole:.1f} µs, of which syscalls "
          f"{bare:.1f} µs; format of FileStats {form:.1f} µs ({len(out)} bytes, sha256 {digest})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
