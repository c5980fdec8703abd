"""tests/conformance's scenarios against ftpd on the in-memory backend (``ftpd.fs.memory``).

The scenario list, harness, comparison and allow-list are the local suite's: the same sessions
are played against pyftpdlib (on disk) and against an in-process ftpd (``ftpd.testing``'s
``ThreadedServer``) whose every account sees one ``MemoryFS``, as every account of the local
suite sees one home. ``MemoryHome`` seeds each scenario's tree into the store and reads it back,
through the server's own loop. The differences allowed are the local ``ALLOW`` plus ``MEMORY_ALLOW``
below, each naming why the memory backend answers otherwise (none so far: it is meant to behave
as a disk does).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.server import pasv_block

from ftpd.config import Config
from ftpd.fs.memory import MemoryFS
from ftpd.testing.threaded import ThreadedServer

from .allowlist import ALLOW, Allow
from .compare import allowlist_problems, check, compare
from .harness import (
    DIR_ENTRY,
    FIXED_MTIME,
    LocalHome,
    RefServer,
    Scenario,
    Tree,
    file_entry,
    initial_tree,
    run_scenario,
)
from .scenarios import BY_ID, SCENARIOS

pytestmark = [
    pytest.mark.conformance,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),  # pyftpdlib's asyncore
]

PASSWORD = "12345"
# scenario id -> step key -> what ftpd on MemoryFS answers instead, and why (none needed so far).
MEMORY_ALLOW: dict[str, dict[str, Allow]] = {}


def merged() -> dict[str, dict[str, Allow]]:
    out = {sc_id: dict(entries) for sc_id, entries in ALLOW.items()}
    for sc_id, entries in MEMORY_ALLOW.items():
        out.setdefault(sc_id, {}).update(entries)
    return out


@dataclass(frozen=True)
class MemoryHome:
    """The scenario directories in the store: ``/<scenario id>/``, touched in the server's loop."""

    server: ThreadedServer
    store: MemoryFS

    def populate(self, sc: Scenario) -> None:
        def seed() -> None:
            base = f"/{sc.id}"
            self.store.makedirs(base)
            for name, content in initial_tree(sc):
                if content is None:
                    self.store.makedirs(f"{base}/{name}", FIXED_MTIME)
                else:
                    self.store.write_bytes(f"{base}/{name}", content, FIXED_MTIME)
            self.store.makedirs(base, FIXED_MTIME)  # last: the seeding touched its time

        self.server.call(seed)

    def snapshot(self, sc: Scenario) -> Tree:
        files = self.server.call(self.store.files, f"/{sc.id}")
        return {
            os.fsencode(rel): DIR_ENTRY if content is None else file_entry(content)
            for rel, content in files.items()
        }


@dataclass
class MemoryPair:
    ref: RefServer
    ftpd: ThreadedServer
    home: MemoryHome


@pytest.fixture(scope="module")
def memory_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MemoryPair]:
    logging.getLogger("pyftpdlib").setLevel(logging.WARNING)
    base = tmp_path_factory.mktemp("memory-conformance")
    ref_home = base / "ref-home"
    ref_home.mkdir()
    store = MemoryFS()
    with contextlib.ExitStack() as stack:
        ftpd_ports = stack.enter_context(pasv_block())  # both servers: free blocks
        config = Config(
            host="127.0.0.1",
            port=0,
            root=str(base),  # the single user's home for the users-file store; never touched
            user="user",
            password=PASSWORD,
            anonymous=True,
            login_fail_delay=0,
            max_login_attempts=3,
            max_per_ip=0,
            pasv_ports=f"{ftpd_ports[0]}-{ftpd_ports[-1]}",
        )
        server = ThreadedServer(config, filesystem=lambda account: store).start()
        stack.callback(server.stop)
        ref = RefServer(ref_home, stack.enter_context(pasv_block()))
        stack.callback(ref.stop)
        yield MemoryPair(ref, server, MemoryHome(server, store))


@pytest.mark.parametrize("sc", SCENARIOS, ids=lambda s: s.id)
def test_scenario(memory_pair: MemoryPair, sc: Scenario) -> None:
    ref_home = LocalHome(Path(memory_pair.ref.home))
    ref_home.populate(sc)
    memory_pair.home.populate(sc)
    ref = run_scenario(memory_pair.ref.host, memory_pair.ref.port, ref_home, sc, PASSWORD)
    got = run_scenario(memory_pair.ftpd.host, memory_pair.ftpd.port, memory_pair.home, sc, PASSWORD)
    problems = check(sc, ref, got, compare(ref, got), merged())
    assert not problems, f"{sc.id}:\n  " + "\n  ".join(problems)


def test_memory_allowlist_is_well_formed() -> None:
    assert allowlist_problems(merged(), BY_ID) == []
    for sc_id, entries in MEMORY_ALLOW.items():
        for key, entry in entries.items():
            assert entry.reason.startswith("[memory]"), f"{sc_id} {key}: say why, as [memory] ..."
