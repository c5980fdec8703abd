"""Act on every file that arrives: an UPLOAD event per complete upload (STOR, APPE, STOU), with
who sent it, where it is, and its size. Here each file is checksummed and moved out of the FTP
tree into an archive; a callback's failure is logged and never reaches the client.

    python examples/process_uploads.py /srv/incoming /srv/archive
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import sys
from pathlib import Path

from ftpd import Config, Event, EventKind, Server


class Archiver:
    def __init__(self, archive: Path) -> None:
        self.archive = archive
        self.manifest: list[tuple[str, str, int, str]] = []  # (user, name, size, sha256)

    def _archive(self, source: Path, user: str) -> str:
        digest = hashlib.sha256(source.read_bytes()).hexdigest()
        target = self.archive / user / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(source, target)
        return digest

    async def on_upload(self, event: Event) -> None:
        if event.real_path is None:  # storage that is not a disk
            return
        # Files are moved in a thread: the event loop keeps serving meanwhile.
        digest = await asyncio.to_thread(self._archive, Path(event.real_path), event.user)
        self.manifest.append((event.user, event.path, event.size, digest))


def build(
    incoming: Path, archive: Path, password: str, port: int = 2121
) -> tuple[Server, Archiver]:
    config = Config(host="127.0.0.1", port=port, root=str(incoming), password=password)
    server = Server(config)
    archiver = Archiver(archive)
    server.subscribe(archiver.on_upload, EventKind.UPLOAD)
    return server, archiver


async def main(incoming: Path, archive: Path) -> None:
    server, archiver = build(incoming, archive, password="change-me")
    async with server:
        print(f"user 'user', password 'change-me' on {server.url}")
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2])))
