"""The shared test helpers do what the suites rely on (tests/support)."""

from __future__ import annotations

import socket
from types import SimpleNamespace

import pytest
from support import env, server
from support.client import Reply
from support.server import PasvBlocks
from support.waits import wait_until


def test_blocks_are_never_shared() -> None:
    """Two allocators (as two pytest processes would be) never hand out the same block while it
    is held, and a released block can be taken again."""
    a, b = PasvBlocks(range(19000, 19000 + 4 * 8), 8), PasvBlocks(range(19000, 19000 + 4 * 8), 8)
    held = [a.take(), b.take(), a.take(), b.take()]
    assert sorted(first for first, _ in held) == [19000, 19008, 19016, 19024]
    with pytest.raises(RuntimeError, match="no free block"):
        a.take()
    held[0][1].close()
    assert b.take()[0] == held[0][0]
    for _, lock in held[1:]:
        lock.close()


def test_a_block_with_a_listening_port_is_skipped() -> None:
    blocks = PasvBlocks(range(19100, 19100 + 2 * 8), 8)
    blocks.next = 0  # the first block is tried first
    with socket.create_server(("127.0.0.1", 19103)):  # someone else's server inside block 0
        first, lock = blocks.take()
        lock.close()
    assert first == 19108


def test_ports_stay_below_the_ephemeral_range_and_off_ftpds_default() -> None:
    with open("/proc/sys/net/ipv4/ip_local_port_range") as fh:
        low = int(fh.read().split()[0])
    assert server.PORTS.stop <= min(low, 61000)


def test_require_ipv6_skips_or_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(env, "ipv6_loopback_error", lambda: "no ::1 here")
    monkeypatch.delenv(env.REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="no ::1 here"):
        env.require_ipv6()
    monkeypatch.setenv(env.REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="no ::1 here"):
        env.require_ipv6()


def test_the_ipv6_hook_applies_to_tests_parametrized_with_1(
    monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """tests/conftest.py's pytest_runtest_setup: any test with the parameter "::1" (the
    integration suite's FAMILIES, a fixture's params) needs the IPv6 loopback."""
    (root,) = [
        p
        for p in request.config.pluginmanager.get_plugins()
        if str(getattr(p, "__file__", "")).endswith("tests/conftest.py")
        and hasattr(p, "pytest_runtest_setup")
    ]
    hook = root.pytest_runtest_setup
    monkeypatch.setattr(env, "ipv6_loopback_error", lambda: "no ::1 here")
    monkeypatch.setenv(env.REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception):
        hook(SimpleNamespace(callspec=SimpleNamespace(params={"host": "::1"})))
    hook(SimpleNamespace(callspec=SimpleNamespace(params={"host": "127.0.0.1"})))
    hook(SimpleNamespace())  # not parametrized


def test_reply_unpacks_and_keeps_lines() -> None:
    r = Reply(211, ["211-Features:", " UTF8", "211 End"], b"")
    code, text = r
    assert (code, text) == (211, "Features:\n UTF8\nEnd") and r.code == 211
    assert r.lines[0] == "211-Features:" and r == (211, "Features:\n UTF8\nEnd")


def test_wait_until_returns_the_last_value() -> None:
    values = iter([0, 0, 3])
    assert wait_until(lambda: next(values), 5, 0.001) == 3
    assert wait_until(lambda: [], 0.01, 0.001) == []
