"""The token bucket of ``ftpd/server/rates.py`` on a fake clock (the real transfers are measured in
tests/integration/test_rates.py)."""

from __future__ import annotations

import asyncio

import pytest

from ftpd.server.addrtable import AddressTable
from ftpd.server.rates import MIN_QUANTUM, Bandwidth, RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def drain(limiter: RateLimiter, clock: Clock, seconds: float, want: int = 1 << 20) -> int:
    """Bytes granted over ``seconds`` to a pump that always wants ``want`` bytes and sleeps exactly
    ``delay()`` when refused: what a real pump does, on the fake clock."""
    end = clock.now + seconds
    sent = 0
    while clock.now < end:
        n = limiter.grant(want)
        if n:
            sent += n
            continue
        delay = limiter.delay(want)
        assert delay > 0  # refused means a real wait, never a busy loop
        clock.now += delay
    return sent


def test_rate_is_kept_over_long_and_short_windows() -> None:
    clock = Clock()
    lim = RateLimiter(1_000_000, clock=clock)
    total = drain(lim, clock, 10.0)
    assert total == pytest.approx(10_000_000, rel=0.01)
    # Any 0.5 s window: within 12% of the rate (the bucket is 50 ms deep).
    for _ in range(10):
        assert drain(lim, clock, 0.5) == pytest.approx(500_000, rel=0.12)


def test_no_burst_after_an_idle_pause() -> None:
    clock = Clock()
    lim = RateLimiter(2_000_000, clock=clock)
    drain(lim, clock, 1.0)
    clock.now += 60  # the client stalled a minute
    assert lim.grant(1 << 30) <= 2_000_000 * 0.1 + 1  # two quanta, not a minute's worth


def test_refund_and_small_rates() -> None:
    clock = Clock()
    lim = RateLimiter(1000, clock=clock)
    n = lim.grant(1 << 20)
    assert n == MIN_QUANTUM  # at tiny rates a quantum is MIN_QUANTUM, not 50 bytes
    assert lim.grant(1 << 20) == 0
    assert lim.delay(1 << 20) == pytest.approx(MIN_QUANTUM / 1000)
    lim.refund(n)
    assert lim.grant(100) == 100  # a small want is granted from what is there


def test_the_total_is_shared_between_transfers_of_every_worker() -> None:
    counters = AddressTable(2)
    clock = Clock()
    a = RateLimiter(0, 3_000_000, counters, upload=False, clock=clock)
    counters.index = 1  # a transfer in the other worker
    b = RateLimiter(0, 3_000_000, counters, upload=False, clock=clock)
    up = RateLimiter(0, 3_000_000, counters, upload=True, clock=clock)
    assert counters.transfers(False) == 2 and counters.transfers(True) == 1
    assert a.current_rate() == b.current_rate() == 1_500_000
    assert up.current_rate() == 3_000_000  # the directions are separate
    b.close()
    b.close()  # idempotent
    assert a.current_rate() == 3_000_000
    # A per-session limit below the share wins.
    c = RateLimiter(500_000, 3_000_000, counters, clock=clock)
    assert c.current_rate() == 500_000
    assert a.current_rate() == 1_500_000
    for lim in (a, c, up):
        lim.close()
    assert counters.transfers(False) == counters.transfers(True) == 0


def test_a_dead_workers_transfers_stop_counting() -> None:
    counters = AddressTable(2)
    counters.index = 1
    RateLimiter(0, 3_000_000, counters, upload=True)
    assert counters.transfers(True) == 1
    counters.reset_worker(1)  # the supervisor restarts a worker that died mid-transfer
    assert counters.transfers(True) == 0


def test_bandwidth_gives_no_limiter_when_unlimited() -> None:
    counters = AddressTable(1)
    assert Bandwidth(0, 0, 0, 0, counters).limiter(upload=False) is None
    bw = Bandwidth(1000, 0, 0, 0, counters)
    assert bw.limiter(upload=True) is None
    lim = bw.limiter(upload=False)
    assert lim is not None and lim.current_rate() == 1000
    user = bw.limiter(upload=False, account_rate=5000)  # the users file's rate wins
    assert user is not None and user.current_rate() == 5000


def test_wait_sleeps_until_tokens_are_there() -> None:
    async def main() -> float:
        lim = RateLimiter(200_000)
        loop = asyncio.get_running_loop()
        start = loop.time()
        sent = 0
        while sent < 100_000:
            n = lim.grant(1 << 20)
            if n:
                sent += n
            else:
                await lim.wait(1 << 20)
        return loop.time() - start

    elapsed = asyncio.run(main())
    # 100 kB at 200 kB/s, minus the first quantum (10 kB): about 0.45 s.
    assert 0.4 <= elapsed < 0.7


def test_spend_sleeps_off_the_debt_of_after_the_fact_pumps() -> None:
    async def main() -> float:
        lim = RateLimiter(400_000)
        assert lim.block(1 << 20) == 20_000  # a quantum: 50 ms of the rate
        loop = asyncio.get_running_loop()
        start = loop.time()
        for _ in range(10):
            await lim.spend(20_000)  # 200 kB at 400 kB/s, the first quantum free
        return loop.time() - start

    elapsed = asyncio.run(main())
    assert 0.4 <= elapsed < 0.65
