"""The passive pool's bookkeeping (issue 23): leases per client address on shared ports, and
the range shared by workers through ``PortMap`` (two pools on one map stand for two workers)."""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator

import pytest
from support.server import pasv_block

from ftpd.server.passive import PassivePool, PortMap


@pytest.fixture
def block() -> Iterator[range]:
    """A passive block no other test or server uses now (``support.server``)."""
    with pasv_block() as ports:
        yield ports


async def test_leases_share_a_port_by_address_and_give_it_back(block: range) -> None:
    first = last = block[0]
    pool = PassivePool(first, last)
    leases = [pool.open("127.0.0.1", f"10.0.0.{i}") for i in range(100)]
    assert {lease.port for lease in leases} == {first}
    assert len(pool.in_use) == 1 and pool.pending() == 100
    with pytest.raises(OSError) as err:
        pool.open("127.0.0.1", "10.0.0.7")  # the same address twice: no second port
    assert err.value.errno == errno.EADDRINUSE
    with pytest.raises(OSError):
        pool.open("127.0.0.1", None)  # promiscuous needs a port of its own
    for lease in leases:
        lease.close()
    assert not pool.in_use and pool.pending() == 0 and not pool.per_client
    assert pool.map.in_use() == 0
    with socket.socket() as s:  # really closed
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", first))


async def test_two_workers_draw_from_one_range(block: range) -> None:
    first, last = block[0], block[3]
    shared = PortMap(first, last)
    a, b = PassivePool(first, last, portmap=shared), PassivePool(first, last, portmap=shared)
    shared.mark = 1  # worker 0 takes three ports (no fixed slice of two)
    held = [a.open("127.0.0.1", "10.0.0.1") for _ in range(3)]
    assert len({h.port for h in held}) == 3
    assert shared.in_use() == 3
    shared.mark = 2  # worker 1 gets the fourth, then none
    other = b.open("127.0.0.1", "10.0.0.1")
    assert other.port not in {h.port for h in held}
    with pytest.raises(OSError):
        b.open("127.0.0.1", "10.0.0.1")
    shared.mark = 1
    held[0].close()
    shared.mark = 2
    assert b.open("127.0.0.1", "10.0.0.1").port == held[0].port  # free again for anyone


def test_dead_worker_ports_are_forgotten() -> None:
    m = PortMap(60000, 60009)
    m.mark = 3
    m.claim(60001)
    m.claim(60005)
    m.mark = 1
    m.claim(60002)
    assert m.in_use() == 3
    m.set_worker(2)  # worker 2 (mark 3) restarted: its old sockets died with it
    assert m.in_use() == 1 and m.holder(60002) == 1
    assert sorted(m.candidates()) == [p for p in range(60000, 60010) if p != 60002]


async def test_a_connection_already_there_is_taken_without_a_reader(block: range) -> None:
    """The client connects, then sends its transfer command: the lease takes the connection from
    the backlog when the transfer starts, with no reader callback and no turn of the loop."""
    pool = PassivePool(block[0], block[0])
    lease = pool.open("127.0.0.1", "127.0.0.1")
    shared = lease.shared
    client = socket.create_connection(("127.0.0.1", lease.port), timeout=5)
    try:
        assert not shared.reading
        step = lease.accept()
        with pytest.raises(StopIteration) as done:
            step.send(None)  # done in its first step: it never waits on the loop
        conn = done.value.value
        try:
            assert conn.getpeername() == client.getsockname()
            assert not conn.getblocking()
        finally:
            conn.close()
        assert not shared.reading  # no reader was ever added (``SharedPort.want``)
        assert shared.sock.fileno() < 0  # its last lease left: the port is closed
    finally:
        client.close()


async def test_a_connection_that_comes_later_is_waited_for(block: range) -> None:
    """The transfer command came first: the lease waits, with a reader, and the connection that
    comes from another address is refused while it keeps waiting (RFC 2577 §5)."""
    import asyncio

    pool = PassivePool(block[0], block[0])
    lease = pool.open("127.0.0.1", "127.0.0.1")
    waiting = asyncio.ensure_future(lease.accept())
    await asyncio.sleep(0.05)
    assert not waiting.done() and lease.shared.reading
    thief = socket.socket()
    thief.bind(("127.0.0.2", 0))
    thief.settimeout(5)
    thief.connect(("127.0.0.1", lease.port))
    await asyncio.sleep(0.05)
    assert not waiting.done()  # the thief's connection was not given to it
    assert thief.recv(1) == b""  # closed by the server
    thief.close()
    client = socket.create_connection(("127.0.0.1", lease.port), timeout=5)
    try:
        conn = await asyncio.wait_for(waiting, 5)
        assert conn.getpeername() == client.getsockname()
        conn.close()
    finally:
        client.close()
    assert not pool.in_use
