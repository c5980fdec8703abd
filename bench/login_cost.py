"""What one login costs with each user store: the users file, SQLite and PostgreSQL.

    python3 bench/login_cost.py [--pg-url postgresql://ftpd:PW@127.0.0.1:5432/db] [-n 200]

For each store it fills a fresh account (with ``ftpd.auth.admin``, as ``ftpd user add`` does) and
times, in-process, with the server's own ``ConfigAuthenticator``:

- ``query``: the store's lookup alone, cache off (``users_cache_seconds = 0``): what the store
  adds to every login whose account is not cached;
- ``first login``: lookup plus the scrypt verification (the default ``ln=14``): a login with a
  password not seen before by this process;
- ``repeat login``: the same name and password again within ``users_cache_seconds``: answered on
  the control channel's fast path without a task, a query or a hash.

Figures are medians over ``-n`` runs; on a machine shared with other work they are only a guide.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ftpd.auth import ConfigAuthenticator  # noqa: E402
from ftpd.auth.admin import NewUser, open_target  # noqa: E402
from ftpd.auth.hashing import hash_password  # noqa: E402
from ftpd.config import Config  # noqa: E402


def median_us(samples: list[float]) -> float:
    return statistics.median(samples) * 1e6


async def measure(config: Config, runs: int) -> tuple[float, float, float]:
    auth = ConfigAuthenticator.from_config(config)
    store = auth.store
    assert store is not None
    query, first, repeat = [], [], []
    for _ in range(runs):
        store.forget()
        t0 = time.perf_counter()
        assert await store.lookup("alice") is not None
        query.append(time.perf_counter() - t0)
    for _ in range(max(5, runs // 20)):  # each one hashes for ~50 ms
        store.forget()
        auth._verified.clear()
        t0 = time.perf_counter()
        assert await auth.lookup("alice", "wonderland") is not None
        first.append(time.perf_counter() - t0)
    fast = ConfigAuthenticator.from_config(
        Config(**{**_as_dict(config), "users_cache_seconds": 60})
    )
    assert await fast.lookup("alice", "wonderland") is not None
    for _ in range(runs):
        t0 = time.perf_counter()
        assert fast.lookup_cached("alice", "wonderland") is not None
        repeat.append(time.perf_counter() - t0)
    await auth.close()
    await fast.close()
    return median_us(query), median_us(first), median_us(repeat)


def _as_dict(config: Config) -> dict[str, object]:
    from dataclasses import asdict

    return asdict(config)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pg-url", default="", help="an empty PostgreSQL database (optional)")
    parser.add_argument("-n", type=int, default=200, help="runs per figure (default 200)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ftpd-login-cost-"))
    home = tmp / "alice"
    home.mkdir()
    stores = {
        "file": Config(users_file=str(tmp / "users.toml"), users_cache_seconds=0),
        "sqlite": Config(users_db=f"sqlite:///{tmp / 'users.db'}", users_cache_seconds=0),
    }
    if args.pg_url:
        stores["postgres"] = Config(users_db=args.pg_url, users_cache_seconds=0)
    encoded = hash_password("wonderland")
    print(
        f"{'store':<10} {'query':>12} {'first login':>14} {'repeat login':>14}   (medians, n={args.n})"
    )
    for name, config in stores.items():
        open_target(config.users_file, config.users_db).add(
            NewUser("alice", encoded, str(home), "elradfmwMT")
        )
        query, first, repeat = asyncio.run(measure(config, args.n))
        print(f"{name:<10} {query:>9.0f} us {first / 1000:>11.1f} ms {repeat:>11.1f} us")
    print(f"(cpu count {os.cpu_count()}, load average {os.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
