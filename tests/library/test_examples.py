"""docs/LIBRARY.md's examples, run: each file under examples/ is imported and its server driven
by a real client; the document shows each file exactly as it is (checked here too), and the
typed example passes ``mypy --strict`` (the same command as .ci/run)."""

from __future__ import annotations

import asyncio
import ftplib
import hashlib
import importlib.util
import io
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from ftpd import MemoryFS

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
DOC = REPO / "docs" / "LIBRARY.md"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def ftp(server: Any, user: str, password: str) -> ftplib.FTP:
    client = ftplib.FTP(timeout=10)
    client.connect(server.host, server.port)
    client.login(user, password)
    return client


def test_the_document_shows_every_example_as_it_is() -> None:
    text = DOC.read_text()
    for path in sorted(EXAMPLES.glob("*.py")):
        block = f"```python\n# {path.relative_to(REPO)}\n{path.read_text()}```"
        assert block in text, f"{path.name}: docs/LIBRARY.md must show it verbatim"


async def test_custom_authenticator(tmp_path: Path) -> None:
    example = load("custom_auth")
    db, root = tmp_path / "users.db", tmp_path / "ftp"
    root.mkdir()
    example.create_db(db)

    def session(server: Any) -> list[str]:
        out = []
        alice = ftp(server, "alice", "wonderland")
        alice.storbinary("STOR note.txt", io.BytesIO(b"from alice"))
        bob = ftp(server, "bob", "builder")
        for action in (
            lambda: bob.storbinary("STOR x", io.BytesIO(b"x")),
            lambda: ftp(server, "bob", "wrong"),
        ):
            try:
                action()
            except ftplib.error_perm as exc:
                out.append(str(exc)[:3])
        out.append(str(bob.nlst()))  # bob's own, empty home: jailed apart from alice
        return out

    async with example.build(db, root, port=0) as server:
        assert await asyncio.to_thread(session, server) == ["550", "530", "[]"]
    assert (root / "alice" / "note.txt").read_bytes() == b"from alice"


async def test_memory_storage() -> None:
    example = load("memory_storage")
    store = MemoryFS()
    store.write_bytes("/device/config.ini", b"interval = 60\n")

    def session(server: Any) -> bytes:
        device = ftp(server, "device", "s3cret")
        device.storbinary("STOR reading.csv", io.BytesIO(b"t,v\n1,2\n"))
        got = io.BytesIO()
        device.retrbinary("RETR config.ini", got.write)
        return got.getvalue()

    async with example.build(store, port=0) as server:
        assert await asyncio.to_thread(session, server) == b"interval = 60\n"
        assert store.read_bytes("/device/reading.csv") == b"t,v\n1,2\n"


async def test_processing_each_uploaded_file(tmp_path: Path) -> None:
    example = load("process_uploads")
    incoming, archive = tmp_path / "incoming", tmp_path / "archive"
    incoming.mkdir()
    server, archiver = example.build(incoming, archive, password="pw", port=0)

    def session() -> None:
        client = ftp(server, "user", "pw")
        for i in range(3):
            client.storbinary(f"STOR f{i}.bin", io.BytesIO(bytes([i]) * 1000))
        client.quit()

    async with server:
        await asyncio.to_thread(session)
        await server.wait_events()
    assert sorted(archiver.manifest) == [
        ("user", f"/f{i}.bin", 1000, hashlib.sha256(bytes([i]) * 1000).hexdigest())
        for i in range(3)
    ]
    assert list(incoming.iterdir()) == []  # each file left the FTP tree
    assert sorted(p.name for p in (archive / "user").iterdir()) == ["f0.bin", "f1.bin", "f2.bin"]


async def test_typed_app_runs() -> None:
    example = load("typed_app")
    await example.main()


def test_examples_pass_mypy_strict() -> None:
    """The command .ci/run runs: the examples as a user's code, ftpd as an installed package."""
    ci = (REPO / ".ci" / "run").read_text()
    command = re.search(r"^(python3 -m mypy --strict .*examples/?)$", ci, re.M)
    assert command, ".ci/run must type-check examples/ with mypy --strict"
    proc = subprocess.run(
        command.group(1).split(), cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
